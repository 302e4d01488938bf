//! `patchq build`: the main job, from nothing to a linked stage1 toolchain.
//!
//! host packages → base (cached download) → work tree and queue → stage0 →
//! config.toml → `x.py build --stage 1 library` (the host and `[toolchain]
//! targets`) → `rustup toolchain link` → a cargo for the toolchain → smoke
//! tests (the host, and a kernel linked by llvm-bitcode-linker for nvptx64).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::{BaseArgs, Ctx};
use crate::base::Stage0;
use crate::config::ToolchainConfig;
use crate::process::Cmd;
use crate::worktree::{self, Lock};
use crate::xpy::{self, XPy};
use crate::{host, targets, toolchain, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub base: BaseArgs,
    /// A checkout of EnzymeAD/Enzyme: sets `llvm.enzyme = true` and places it
    /// at src/tools/enzyme so bootstrap builds libEnzyme against LLVM 19.
    #[arg(long, value_name = "PATH")]
    pub enzyme: Option<PathBuf>,
    /// Stop after the stage1 build: no `rustup toolchain link`, no smoke test.
    #[arg(long)]
    pub no_link: bool,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let _lock = ctx.lock()?;
    let cfg = &ctx.loaded.config;

    host::ensure_phase(&[])?;

    let (mut tree, _) = ctx.open_or_create_tree(args.base.source()?, args.base.allow_other_base)?;
    super::apply::sync(ctx, &mut tree)?;
    let queue = ctx.queue()?;

    let phase = ui::phase("stage0");
    Stage0::read(&tree.path)?.install(&cfg.base, &ctx.cache, &tree.path)?;
    phase.done("verified against src/stage0");

    let enzyme = args.enzyme.clone().or_else(|| cfg.enzyme.path.clone());
    if let Some(enzyme) = &enzyme {
        let phase = ui::phase("Enzyme sources");
        place_enzyme(&tree.path, enzyme)?;
        phase.done(format!("{} at {ENZYME_DIR}", enzyme.display()));
    }
    let n = queue.patches.len();
    let description = format!(
        "patchq fork of Rust {} + {n} patch{}, queue {}",
        cfg.base.version,
        if n == 1 { "" } else { "es" },
        queue.fingerprint()
    );
    let extra_targets = &cfg.toolchain.targets;
    targets::check_known(&tree.path, extra_targets)?;
    let phase = ui::phase("config.toml");
    let settings = xpy::Settings {
        description: &description,
        enzyme: enzyme.is_some(),
        targets: extra_targets,
        incremental: false,
        ccache: false,
    };
    let changed = xpy::write_config(&ctx.loaded.config_template(), &tree.path, &settings)?;
    phase.done(if changed { "written" } else { "unchanged" });

    seed_bootstrap_build(&tree.path)?;
    let xpy = library_xpy(&tree.path, &cfg.toolchain);
    let phase = ui::phase("x.py build --stage 1 library");
    if !cfg.toolchain.target_cpu.is_empty() {
        ui::note(xpy.describe(&["build".into(), "--stage".into(), "1".into(), "library".into()]));
    }
    xpy.run(&["build", "--stage", "1", "library"])?;
    let stage1 = toolchain::stage1_dir(&tree.path);
    targets::check_sysroot(&stage1, extra_targets)?;
    let also = if extra_targets.is_empty() { String::new() } else { format!(", with {}", extra_targets.join(", ")) };
    phase.done(format!("stage1 in {}{also}", stage1.display()));

    if args.no_link {
        return Ok(());
    }
    let name = &cfg.toolchain.name;
    let phase = ui::phase(format!("rustup toolchain link {name}"));
    toolchain::link(name, &tree.path)?;
    let cargo = toolchain::provide_cargo(&tree.path)?;
    phase.done(format!("linked; cargo is the stage0 {cargo}"));

    let phase = ui::phase("smoke test");
    let version = toolchain::smoke_test(name, &description)?;
    phase.done(version);
    for target in extra_targets.iter().filter(|t| targets::uses_llvm_bitcode_linker(t)) {
        let phase = ui::phase(format!("smoke test {target}"));
        let entry = toolchain::smoke_test_bitcode_linker(name, target)?;
        phase.done(format!("a cdylib linked by llvm-bitcode-linker has {entry}"));
    }
    Ok(())
}

/// x.py for building the toolchain's libraries: each target of
/// `[toolchain.target-cpu]` gets `-Ctarget-cpu` through bootstrap's
/// per-target rustflags variable (config.toml has no such setting in 1.85).
/// The same variable is what running x.py by hand needs (README).
pub fn library_xpy(tree: &Path, toolchain: &ToolchainConfig) -> XPy {
    toolchain.target_cpu.iter().fold(XPy::new(tree), |xpy, (target, cpu)| {
        let (key, value) = targets::cpu_rustflags(target, cpu);
        xpy.with_env(key, value)
    })
}

/// Gives a work tree without `build/bootstrap` the check tree's (made by
/// `check --build-each` or `export --check`, which CI runs first): x.py
/// builds bootstrap with cargo there, and the crates.io dependencies are
/// the same in both trees, so cargo compiles only bootstrap and
/// build_helper again, whose paths differ (measured: 12 s instead of 27 s
/// here). Their incremental state is left out; it would not be used.
/// Skipped while x.py runs in the check tree. Copied under a temporary name
/// and renamed, so an interrupted copy is never taken for bootstrap's
/// build: the next run removes it and copies again.
fn seed_bootstrap_build(tree: &Path) -> Result<()> {
    let build = tree.join("build");
    let to = build.join("bootstrap");
    let from = worktree::beside(tree, "check").join("build").join("bootstrap");
    if to.exists() || !from.join("debug").is_dir() {
        return Ok(());
    }
    let phase = ui::phase(format!("bootstrap's build directory from {}", from.display()));
    let Some(_check_lock) = Lock::try_acquire_check(tree)? else {
        phase.done("skipped: x.py is running in the check tree");
        return Ok(());
    };
    let partial = build.join("bootstrap.patchq-partial");
    if partial.exists() {
        fs_err::remove_dir_all(&partial)?;
    }
    fs_err::create_dir_all(partial.join("debug"))?;
    let copy = |path: &Path, into: &Path| Cmd::new("cp").arg("-a").arg(path).arg(into).read().map(drop);
    for entry in fs_err::read_dir(&from)? {
        let path = entry?.path();
        if path.file_name() != Some("debug".as_ref()) {
            copy(&path, &partial)?;
        }
    }
    for entry in fs_err::read_dir(from.join("debug"))? {
        let path = entry?.path();
        if path.file_name() != Some("incremental".as_ref()) {
            copy(&path, &partial.join("debug"))?;
        }
    }
    fs_err::rename(&partial, &to)?;
    phase.done("copied");
    Ok(())
}

/// Where bootstrap's Enzyme step looks for the sources (the submodule's path).
const ENZYME_DIR: &str = "src/tools/enzyme";

/// Makes `src/tools/enzyme` in the work tree point at an Enzyme checkout, so
/// bootstrap builds libEnzyme from it (`llvm.enzyme = true`). The tree's own
/// directory is only replaced while empty (Debian's tarball ships it empty),
/// and the link is excluded from git, so `patchq` never sees it as an edit.
fn place_enzyme(tree: &Path, enzyme: &Path) -> Result<()> {
    let enzyme = fs_err::canonicalize(enzyme).map_err(|err| anyhow::anyhow!("--enzyme {}: {err}", enzyme.display()))?;
    if !enzyme.join("enzyme/CMakeLists.txt").is_file() {
        bail!(
            "--enzyme {}: not an Enzyme checkout (no enzyme/CMakeLists.txt); clone \
             https://github.com/EnzymeAD/Enzyme and pass its root",
            enzyme.display()
        );
    }
    let dir = tree.join(ENZYME_DIR);
    match fs_err::symlink_metadata(&dir) {
        Ok(meta) if meta.file_type().is_symlink() => fs_err::remove_file(&dir)?,
        Ok(meta) if meta.is_dir() && fs_err::read_dir(&dir)?.next().is_none() => fs_err::remove_dir(&dir)?,
        Ok(_) => {
            bail!("{} exists and is not empty: move it away to build with --enzyme {}", dir.display(), enzyme.display())
        }
        Err(_) => {}
    }
    std::os::unix::fs::symlink(&enzyme, &dir)
        .map_err(|err| anyhow::anyhow!("linking {} to {}: {err}", dir.display(), enzyme.display()))?;
    let exclude = tree.join(".git/info/exclude");
    let excluded = fs_err::read_to_string(&exclude).unwrap_or_default();
    let line = format!("/{ENZYME_DIR}");
    if !excluded.lines().any(|l| l == line) {
        fs_err::create_dir_all(exclude.parent().expect("a parent"))?;
        // Never glue the line onto a last line that has no newline.
        let separator = if excluded.is_empty() || excluded.ends_with('\n') { "" } else { "\n" };
        fs_err::write(&exclude, format!("{excluded}{separator}{line}\n"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_build_is_taken_from_the_check_tree_only_into_a_tree_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("rust");
        let from = dir.path().join(".rust.patchq-check/build/bootstrap");
        for file in ["CACHEDIR.TAG", "debug/deps/libserde-1.rlib", "debug/bootstrap", "debug/incremental/bootstrap-1/s"]
        {
            fs_err::create_dir_all(from.join(file).parent().unwrap()).unwrap();
            fs_err::write(from.join(file), file).unwrap();
        }
        fs_err::create_dir_all(&tree).unwrap();
        // Held by x.py in the check tree: nothing is copied.
        let held = Lock::acquire_check(&tree, false).unwrap();
        seed_bootstrap_build(&tree).unwrap();
        assert!(!tree.join("build/bootstrap").exists());
        drop(held);
        // A copy an interrupted run left is not taken for the build.
        fs_err::create_dir_all(tree.join("build/bootstrap.patchq-partial/debug/deps")).unwrap();
        fs_err::write(tree.join("build/bootstrap.patchq-partial/debug/deps/half"), "").unwrap();
        seed_bootstrap_build(&tree).unwrap();
        let to = tree.join("build/bootstrap");
        assert_eq!(
            fs_err::read_to_string(to.join("debug/deps/libserde-1.rlib")).unwrap(),
            "debug/deps/libserde-1.rlib"
        );
        assert!(to.join("CACHEDIR.TAG").is_file() && to.join("debug/bootstrap").is_file());
        assert!(!to.join("debug/incremental").exists(), "bootstrap's own incremental state is not copied");
        assert!(!to.join("debug/deps/half").exists() && !tree.join("build/bootstrap.patchq-partial").exists());
        // The tree's own build is never replaced.
        fs_err::write(to.join("debug/bootstrap"), "the tree's own").unwrap();
        seed_bootstrap_build(&tree).unwrap();
        assert_eq!(fs_err::read_to_string(to.join("debug/bootstrap")).unwrap(), "the tree's own");
    }

    #[test]
    fn enzyme_checkout_is_linked_into_the_tree_and_excluded_from_git() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("rust");
        fs_err::create_dir_all(tree.join("src/tools/enzyme")).unwrap();
        fs_err::create_dir_all(tree.join(".git/info")).unwrap();
        fs_err::write(tree.join(".git/info/exclude"), "/scratch").unwrap();
        let enzyme = dir.path().join("Enzyme");
        fs_err::create_dir_all(enzyme.join("enzyme")).unwrap();

        let err = place_enzyme(&tree, &enzyme).unwrap_err().to_string();
        assert!(err.contains("not an Enzyme checkout (no enzyme/CMakeLists.txt)"), "{err}");
        assert!(tree.join("src/tools/enzyme").is_dir(), "left alone");

        fs_err::write(enzyme.join("enzyme/CMakeLists.txt"), "project(Enzyme)\n").unwrap();
        place_enzyme(&tree, &enzyme).unwrap();
        assert!(tree.join("src/tools/enzyme/enzyme/CMakeLists.txt").is_file());
        // Again (a second build): the link is replaced, the exclude line not repeated.
        place_enzyme(&tree, &enzyme).unwrap();
        let exclude = fs_err::read_to_string(tree.join(".git/info/exclude")).unwrap();
        assert_eq!(exclude, "/scratch\n/src/tools/enzyme\n");
    }

    #[test]
    fn a_non_empty_enzyme_directory_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("rust");
        fs_err::create_dir_all(tree.join("src/tools/enzyme")).unwrap();
        fs_err::write(tree.join("src/tools/enzyme/notes.txt"), "mine").unwrap();
        let enzyme = dir.path().join("Enzyme");
        fs_err::create_dir_all(enzyme.join("enzyme")).unwrap();
        fs_err::write(enzyme.join("enzyme/CMakeLists.txt"), "").unwrap();

        let err = place_enzyme(&tree, &enzyme).unwrap_err().to_string();
        assert!(err.contains("exists and is not empty: move it away"), "{err}");
        assert_eq!(fs_err::read_to_string(tree.join("src/tools/enzyme/notes.txt")).unwrap(), "mine");
    }
}
