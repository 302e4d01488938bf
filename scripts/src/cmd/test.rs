//! `patchq test`: run compiletest with the stage1 compiler on what the
//! queue can affect: every test file the patches add or change, the whole
//! `tests/codegen` suite, and each `tests/ui` directory the patches touch.
//! One x.py invocation per suite, so one failing suite does not hide the
//! others; a summary with counts per suite and the failing tests' names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Result, bail};

use super::Ctx;
use crate::base::HOST;
use crate::config::AlsoRun;
use crate::patch::ChangeKind;
use crate::queue::Queue;
use crate::ui;
use crate::worktree::WorkTree;
use crate::xpy::{self, SuiteResult, XPy};

/// Suites run whole, whatever the patches touch.
const ALWAYS: [&str; 1] = ["tests/codegen"];

pub fn run(ctx: &Ctx) -> Result<()> {
    let _lock = ctx.lock()?;
    let queue = ctx.queue()?;
    let Some(tree) = WorkTree::open(&ctx.tree)? else {
        bail!("{} does not exist: run `patchq build` first", ctx.tree.display());
    };
    if !tree.state.has_patches_of(&queue) {
        bail!("{} does not match patches/: run `patchq build` (or `patchq apply`) first", tree.path.display());
    }

    let mut plan = test_plan(&queue);
    let also = &ctx.loaded.config.test.also;
    if let Some(missing) = also.iter().find(|a| !tree.path.join(&a.path).exists()) {
        bail!("[test] also: {} does not exist in {} ({})", missing.path, tree.path.display(), missing.reason);
    }
    add_also(&mut plan, also)?;
    let known = &ctx.loaded.config.test.known_failures;
    let xpy = XPy::new(&tree.path);
    let mut results: Vec<SuiteResult> = Vec::new();
    let mut broken = Vec::new();
    for (suite, paths) in &plan {
        // --force-rerun: compiletest otherwise skips tests whose stamp is
        // fresh and counts them as ignored, so a rerun would report nothing.
        // --target: the suites are the host's; without it x.py would run them
        // for every target of config.toml's build.target ([toolchain]
        // targets), including no_std ones such as nvptx64 that have no std.
        let mut args: Vec<String> =
            ["test", "--stage", "1", "--force-rerun", "--target", HOST].into_iter().map(String::from).collect();
        args.extend(paths.iter().cloned());
        for k in known.iter().filter(|k| k.path.starts_with(&format!("tests/{suite}/"))) {
            ui::note(format!("skipping {} (known failure here: {})", k.path, k.reason));
            args.extend(["--skip".into(), k.path.clone()]);
        }
        // run-make builds rustdoc for every test unless told that none runs it.
        let xpy = if suite == "run-make" && !paths.iter().any(|p| runs_rustdoc(&tree.path.join(p))) {
            xpy.with_env(RUN_MAKE_WITHOUT_RUSTDOC, "1")
        } else {
            xpy.clone()
        };
        let phase = ui::phase(format!("tests/{suite}: {}", xpy.describe(&args)));
        let log = tree.path.join("build").join(format!("patchq-test-{suite}.log"));
        let (status, output) = xpy.run_captured(&args, &log)?;
        let parsed = xpy::parse_test_output(&output)?;
        if !status.success() && parsed.iter().all(|r| r.failed == 0) {
            broken.push(format!("tests/{suite}: x.py failed before reporting results (log: {})", log.display()));
        }
        let (passed, failed): (u32, u32) = parsed.iter().fold((0, 0), |(p, f), r| (p + r.passed, f + r.failed));
        phase.done(format!("{passed} passed, {failed} failed"));
        results.extend(parsed);
    }

    // Every x.py run starts by emptying the stage1 sysroot and puts back
    // only the libraries it builds: the host's, here. The toolchain's other
    // targets go back in (nothing is compiled).
    let toolchain = &ctx.loaded.config.toolchain;
    if !toolchain.targets.is_empty() {
        let xpy = super::build::library_xpy(&tree.path, toolchain);
        let phase = ui::phase(format!("the libraries of {} back into stage1", toolchain.targets.join(", ")));
        xpy.run(&["build", "--stage", "1", "library"])?;
        phase.done("done");
    }

    ui::out("\nsummary of patchq test (stage1):");
    for r in &results {
        ui::out(format!("  {:<10} {:>6} passed {:>4} failed {:>5} ignored", r.suite, r.passed, r.failed, r.ignored));
        for f in &r.failures {
            ui::out(format!("      FAILED {f}"));
        }
    }
    for b in &broken {
        ui::out(format!("  BROKEN {b}"));
    }
    let passed: u32 = results.iter().map(|r| r.passed).sum();
    let failed: u32 = results.iter().map(|r| r.failed).sum();
    let ignored: u32 = results.iter().map(|r| r.ignored).sum();
    ui::out(format!("summary: {passed} passed, {failed} failed, {ignored} skipped"));
    if failed > 0 || !broken.is_empty() {
        bail!(
            "patchq test: {failed} test(s) failed{}",
            if broken.is_empty() { "" } else { ", and a suite did not run" }
        );
    }
    Ok(())
}

/// Read by the overlay's bootstrap (`src/bootstrap/src/core/build_steps/test.rs`):
/// run-make without building rustdoc.
const RUN_MAKE_WITHOUT_RUSTDOC: &str = "PATCHQ_RUN_MAKE_WITHOUT_RUSTDOC";

/// Whether a test (a file, or a run-make directory) may run rustdoc: any of
/// its files names it. Errs on the side of building rustdoc.
fn runs_rustdoc(path: &Path) -> bool {
    if path.is_dir() {
        let Ok(entries) = fs_err::read_dir(path) else { return true };
        entries.flatten().any(|e| runs_rustdoc(&e.path()))
    } else {
        std::fs::read(path).map_or(true, |bytes| bytes.windows(7).any(|w| w.eq_ignore_ascii_case(b"rustdoc")))
    }
}

/// Adds `[test] also` to the plan, unless a whole suite already covers it.
fn add_also(plan: &mut BTreeMap<String, BTreeSet<String>>, also: &[AlsoRun]) -> Result<()> {
    for a in also {
        let Some(suite) = a.path.strip_prefix("tests/").and_then(|p| p.split('/').next()).filter(|s| !s.is_empty())
        else {
            bail!("[test] also: `{}` is not under tests/<suite>/", a.path);
        };
        let entry = plan.entry(suite.to_owned()).or_default();
        if !entry.contains(&format!("tests/{suite}")) {
            entry.insert(a.path.clone());
        }
    }
    Ok(())
}

/// Which paths to hand x.py, per suite (`codegen`, `ui`, `run-make`, …).
pub fn test_plan(queue: &Queue) -> BTreeMap<String, BTreeSet<String>> {
    let mut plan: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for root in ALWAYS {
        plan.entry(root.trim_start_matches("tests/").to_owned()).or_default().insert(root.to_owned());
    }
    for change in queue.patches.iter().flat_map(|p| &p.file.files) {
        if change.kind == ChangeKind::Deleted {
            continue;
        }
        let parts: Vec<&str> = change.path.split('/').collect();
        let ["tests", suite, rest @ ..] = parts.as_slice() else { continue };
        if rest.is_empty() {
            continue;
        }
        let root = format!("tests/{suite}");
        let target = match *suite {
            // run-make tests are directories.
            "run-make" => format!("{root}/{}", rest[0]),
            // ui: the whole directory, the way upstream reviewers run it.
            "ui" => {
                let dir: Vec<&str> = rest[..rest.len() - 1].iter().copied().take_while(|c| *c != "auxiliary").collect();
                match (dir.is_empty(), change.path.ends_with(".rs")) {
                    (false, _) => format!("{root}/{}", dir.join("/")),
                    (true, true) => change.path.clone(),
                    // A top-level `.stderr` goes with its `.rs`, listed on its own.
                    (true, false) => continue,
                }
            }
            // Elsewhere the test file itself (auxiliary files: their directory).
            _ => match rest.iter().position(|c| *c == "auxiliary") {
                Some(i) => format!("{root}/{}", rest[..i].join("/")),
                None if change.path.ends_with(".rs") => change.path.clone(),
                None => continue,
            },
        };
        let entry = plan.entry(suite.to_string()).or_default();
        if !entry.contains(&root) {
            entry.insert(target);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn also_runs_join_the_plan_unless_their_suite_runs_whole() {
        let mut plan = BTreeMap::from([("codegen".to_owned(), BTreeSet::from(["tests/codegen".to_owned()]))]);
        let also = |path: &str| AlsoRun { path: path.to_owned(), reason: "why".to_owned() };
        add_also(&mut plan, &[also("tests/run-make/lto-smoke"), also("tests/codegen/lto.rs")]).unwrap();
        assert_eq!(plan["run-make"], BTreeSet::from(["tests/run-make/lto-smoke".to_owned()]));
        assert_eq!(plan["codegen"], BTreeSet::from(["tests/codegen".to_owned()]), "tests/codegen runs whole");
        let err = add_also(&mut plan, &[also("compiler/x.rs")]).unwrap_err().to_string();
        assert!(err.contains("is not under tests/<suite>/"), "{err}");
    }

    #[test]
    fn a_run_make_test_runs_rustdoc_when_one_of_its_files_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let test = dir.path().join("autodiff-glue");
        fs_err::create_dir_all(test.join("aux")).unwrap();
        fs_err::write(test.join("rmake.rs"), "fn main() { rustc().input(\"lib.rs\").run(); }").unwrap();
        fs_err::write(test.join("aux").join("lib.rs"), "pub fn f() {}").unwrap();
        assert!(!runs_rustdoc(&test));
        fs_err::write(test.join("aux").join("doc.rs"), "fn main() { Rustdoc::new().run(); }").unwrap();
        assert!(runs_rustdoc(&test), "a file in a subdirectory names rustdoc");
        assert!(runs_rustdoc(&dir.path().join("missing")), "unreadable: assume it does");
    }
}
