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

/// A kernel that needs nothing from the fork's queue: `extern "ptx-kernel"`
/// is in the base. What it proves is the target's path through the
/// toolchain: `core` for the target in stage1, `llvm-bitcode-linker` beside
/// rustc, and the LLVM tools it runs.
const PTX_SMOKE_KERNEL: &str = "\
#![no_std]
#![feature(abi_ptx)]

#[no_mangle]
pub unsafe extern \"ptx-kernel\" fn patchq_smoke(out: *mut u32) {
    *out = 6 * 7;
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
";

/// Builds a `cdylib` kernel for `target` with `rustc +<name>`, linked by
/// `llvm-bitcode-linker` (`-C linker-flavor=llbc`: 1.85's nvptx64 default is
/// the external rust-ptx-linker), and returns the PTX entry it found.
pub fn smoke_test_bitcode_linker(name: &str, target: &str) -> Result<String> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    fs_err::write(dir.path().join("kernel.rs"), PTX_SMOKE_KERNEL)?;
    Cmd::new("rustc")
        .arg(format!("+{name}"))
        .args(["--target", target, "--crate-type=cdylib", "-O", "-Zunstable-options", "-Clinker-flavor=llbc"])
        .args(["kernel.rs", "-o", "kernel.ptx"])
        .dir(dir.path())
        .read()?;
    let ptx = fs_err::read_to_string(dir.path().join("kernel.ptx"))?;
    let entry = ".visible .entry patchq_smoke(";
    if !ptx.contains(entry) {
        bail!("`rustc +{name} --target {target}` wrote PTX without `{entry}`:\n{ptx}");
    }
    Ok(entry.trim_end_matches('(').to_owned())
}
