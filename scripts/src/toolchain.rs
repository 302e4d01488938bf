//! The built stage1 as a rustup toolchain: linking it, giving it a cargo,
//! and proving it works.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::base::HOST;
use crate::process::{Cmd, on_path};
use crate::ui;

pub fn stage1_dir(tree: &Path) -> PathBuf {
    tree.join("build").join("host").join("stage1")
}

/// `rustup toolchain link <name> <tree>/build/host/stage1`.
pub fn link(name: &str, tree: &Path) -> Result<()> {
    if !on_path("rustup") {
        bail!("rustup is not on PATH: it is needed to link the stage1 toolchain as `{name}`");
    }
    let stage1 = stage1_dir(tree);
    if !stage1.join("bin").join("rustc").is_file() {
        bail!("{} has no bin/rustc: build stage1 first (`patchq build`)", stage1.display());
    }
    Cmd::new("rustup").args(["toolchain", "link", name]).arg(&stage1).read()?;
    Ok(())
}

/// x.py builds no cargo for stage1; the stage0 cargo (the 1.84.0 that
/// bootstrap itself uses) is copied next to the stage1 rustc so that
/// `cargo +<name>` runs a cargo of the same era instead of rustup falling
/// back to another toolchain's. Returns its version line.
pub fn provide_cargo(tree: &Path) -> Result<String> {
    let stage0_cargo = tree.join("build").join(HOST).join("stage0").join("bin").join("cargo");
    if !stage0_cargo.is_file() {
        bail!("{} is missing: x.py should have unpacked stage0 there", stage0_cargo.display());
    }
    let dest = stage1_dir(tree).join("bin").join("cargo");
    let same = dest.is_file() && fs_err::read(&dest)? == fs_err::read(&stage0_cargo)?;
    if !same {
        fs_err::copy(&stage0_cargo, &dest)?;
    }
    Ok(Cmd::new(&dest).arg("-V").read()?.trim().to_owned())
}

/// Compiles and runs a program with `rustc +<name>`, and builds and runs a
/// small crate with `cargo +<name>`. Returns `rustc -vV`'s first line.
pub fn smoke_test(name: &str, expect_in_version: &str) -> Result<String> {
    let toolchain = format!("+{name}");
    let version = Cmd::new("rustc").args([toolchain.as_str(), "-vV"]).read()?;
    if !version.contains(expect_in_version) {
        bail!("`rustc {toolchain} -vV` does not mention `{expect_in_version}`:\n{version}");
    }
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let hello = dir.path().join("hello.rs");
    fs_err::write(&hello, "fn main() {\n    println!(\"hello from the fork: {}\", 6 * 7);\n}\n")?;
    Cmd::new("rustc").args([toolchain.as_str(), "-O", "hello.rs", "-o", "hello"]).dir(dir.path()).read()?;
    let out = Cmd::new(dir.path().join("hello")).read()?;
    if out.trim() != "hello from the fork: 42" {
        bail!("the program built by `rustc {toolchain}` printed {out:?}");
    }

    let krate = dir.path().join("smoke");
    fs_err::create_dir_all(krate.join("src"))?;
    fs_err::write(krate.join("Cargo.toml"), "[package]\nname = \"smoke\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")?;
    fs_err::write(krate.join("src").join("main.rs"), "fn main() {\n    println!(\"{}\", (1..=10).sum::<u32>());\n}\n")?;
    Cmd::new("cargo").args([toolchain.as_str(), "build", "--quiet", "--offline"]).dir(&krate).read()?;
    let out = Cmd::new(krate.join("target").join("debug").join("smoke")).read()?;
    if out.trim() != "55" {
        bail!("the crate built by `cargo {toolchain} build` printed {out:?}");
    }
    ui::note(format!("`rustc {toolchain}` and `cargo {toolchain} build` compiled and ran test programs"));
    Ok(version.lines().next().unwrap_or_default().to_owned())
}
