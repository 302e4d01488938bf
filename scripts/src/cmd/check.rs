//! `patchq check`: is the queue sound, without building it?
//!
//! - the series lists every patch file once and nothing else;
//! - every patch carries valid trailers, and `Depends-on` names earlier patches;
//! - a pull request of several patches is named by a `Pr-title` on its first;
//! - every patch applies at its position on base + overlay, with no fuzz;
//! - no patch touches a file the overlay owns;
//! - the queue applies to the pristine base too (without the overlay), so
//!   it does not depend on the offline fix-ups.
//!
//! All of it runs in git's object store: the work tree's files are not
//! touched. `--build-each` then runs `x.py check` on every prefix of the
//! queue in a separate checkout, remembering the trees that passed. It
//! holds the work tree's lock only until the prefixes are known: the walk,
//! which takes minutes, holds the checkout's own lock, so that `build` (or
//! any other command on the work tree) can run beside it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{Created, Ctx};
use crate::git::Git;
use crate::patch::{PatchMeta, pr_title_problems};
use crate::queue::{Queue, sha256_hex};
use crate::stack;
use crate::worktree::{self, Lock, WorkTree, describe_failure, short};
use crate::xpy::{self, XPy};
use crate::{base::Stage0, checkset, host, ui};

pub fn run(ctx: &Ctx, build_each: bool) -> Result<()> {
    let lock = ctx.lock()?;
    let queue = ctx.queue()?;
    let overlay = ctx.overlay()?;
    let mut problems = Vec::new();

    let names: BTreeSet<&str> = queue.patches.iter().map(|p| p.name.as_str()).collect();
    let owned = overlay.owned_paths();
    let shared: BTreeSet<&str> = ctx.loaded.config.overlay.shared.iter().map(String::as_str).collect();
    let mut metas = Vec::new();
    for (i, patch) in queue.patches.iter().enumerate() {
        match patch.file.meta() {
            Ok(meta) => {
                for dep in &meta.depends_on {
                    match queue.series.position(dep) {
                        Some(j) if j < i => {}
                        Some(j) if j == i => {
                            problems.push(format!("{}: depends on itself (`Depends-on: {dep}`)", patch.name))
                        }
                        Some(_) => problems
                            .push(format!("{}: depends on `{dep}`, which comes later in the series", patch.name)),
                        None if !names.contains(dep.as_str()) => {
                            problems.push(format!("{}: depends on `{dep}`, which is not in the series", patch.name))
                        }
                        None => {}
                    }
                }
                metas.push((patch.name.as_str(), meta));
            }
            Err(err) => problems.push(format!("{}: {err}", patch.name)),
        }
        let markers = crate::patch::conflict_marker_files(&fs_err::read_to_string(&patch.path)?);
        if !markers.is_empty() {
            problems.push(format!("{}: adds conflict markers in {}", patch.name, markers.join(", ")));
        }
        for path in patch.file.touched_paths() {
            if owned.contains(path) && !shared.contains(&path) {
                problems.push(format!(
                    "{}: touches `{path}`, which the overlay owns (src-overlay/ or [overlay] remove); \
                     feature patches must apply to pristine upstream",
                    patch.name
                ));
            }
        }
    }
    let metas: Vec<(&str, &PatchMeta)> = metas.iter().map(|(name, meta)| (*name, meta)).collect();
    problems.extend(pr_title_problems(&metas));

    let (mut tree, created) = ctx.open_or_create_tree(None, false)?;
    if created == Created::Yes {
        // A tree made just now holds nobody's work: bring it to the queue,
        // so that `build` afterwards finds it in the state it expects.
        super::apply::sync(ctx, &mut tree)?;
    }
    let overlay_commit = tree.current_overlay_commit(&overlay, ctx.base_date())?;
    let phase = ui::phase(format!("applying {} patches on base + overlay (no fuzz)", queue.patches.len()));
    let prefixes = apply_all(&tree, &queue, &overlay_commit, &mut problems, "")?;
    phase.done(format!("{} of {} apply", prefixes.len(), queue.patches.len()));

    let phase = ui::phase("applying the queue to the pristine base (without the overlay)");
    let base = tree.state.base_commit.clone();
    let pristine = apply_all(&tree, &queue, &base, &mut problems, " on the pristine base")?;
    phase.done(format!("{} of {} apply", pristine.len(), queue.patches.len()));

    if !problems.is_empty() {
        bail!("the queue has {} problem(s):\n- {}", problems.len(), problems.join("\n- "));
    }
    ui::out(format!("check: {} patches ok", queue.patches.len()));

    if build_each {
        build_each_prefix(ctx, &tree, &queue, &prefixes, lock)?;
    }
    Ok(())
}

/// Commits every patch in turn on `start`; returns the commit after each
/// patch that applied. The first failure is recorded and ends the walk.
fn apply_all(
    tree: &WorkTree,
    queue: &Queue,
    start: &str,
    problems: &mut Vec<String>,
    where_: &str,
) -> Result<Vec<String>> {
    let chain = tree.builder().build(start, stack::items(&queue.patches, 0..queue.patches.len()))?;
    if let Some((i, failure)) = &chain.failure {
        let text = describe_failure(queue, *i, failure).replace('\n', "\n  ");
        problems.push(format!("{text}{where_}"));
    }
    Ok(chain.commits().map(|(_, c)| c.to_owned()).collect())
}

/// `x.py check` of the compiler on every prefix of the queue, in a separate git
/// worktree so that the main tree's files (and its build) are untouched.
/// The work tree's lock goes before the checkout is made: the prefixes are
/// commits already, and the walk touches only the checkout.
fn build_each_prefix(ctx: &Ctx, tree: &WorkTree, queue: &Queue, prefixes: &[String], lock: Lock) -> Result<()> {
    let first = prefixes.first().map_or(tree.state.head(), String::as_str);
    let mut checker = Checker::prepare(ctx, tree, first, Some(lock))?;
    for (i, commit) in prefixes.iter().enumerate() {
        let name = &queue.patches[i].name;
        let label = format!("prefix {}/{} (through {name})", i + 1, prefixes.len());
        checker
            .check(commit, &label)
            .with_context(|| format!("{label} does not build: the queue is broken at {name}"))?;
    }
    ui::out(format!("check --build-each: all {} prefixes build", prefixes.len()));
    Ok(())
}

/// Runs `x.py check` of the compiler (see `checkset`) on commits of the work tree's repository in
/// the checkout beside it (`.<tree>.patchq-check`), remembering the trees
/// that passed so that an unchanged tree is not checked twice.
pub struct Checker {
    /// Held while the checkout is in use (its files, and the record).
    _lock: Lock,
    dir: PathBuf,
    git: Git,
    config_hash: String,
    record: PathBuf,
    passed: BTreeSet<String>,
}

impl Checker {
    /// Makes (or reuses) the checkout, starting it at `first`, with stage0
    /// and a config.toml from the template. Given the work tree's lock, it
    /// lets it go as soon as nothing of the work tree is read any more:
    /// before the checkout, which writes 70k files, is made.
    pub fn prepare(ctx: &Ctx, tree: &WorkTree, first: &str, work_tree_lock: Option<Lock>) -> Result<Checker> {
        let lock = Lock::acquire_check(&tree.path, !ctx.no_wait)?;
        // x.py needs LLVM 19 and friends (and ccache, see below); on a new
        // machine this runs before `build` would install them.
        host::ensure_phase(&host::CHECK_PACKAGES)?;
        // stage0 comes from the main tree's cache (its src/stage0 says which).
        Stage0::read(&tree.path)?.install(&ctx.loaded.config.base, &ctx.cache, &tree.path)?;
        // The checkout lives beside the work tree, not inside it: cargo reads
        // `.cargo/config.toml` from every parent directory, and the work tree's
        // may be the base's (which points crates.io at `vendor/`).
        let check_dir = worktree::beside(&tree.path, "check");
        if let Some(work_tree_lock) = work_tree_lock {
            drop(work_tree_lock);
            ui::note(format!("the work tree is free for other commands; x.py check runs in {}", check_dir.display()));
        }
        let git = &tree.git;
        // Reuse the checkout (and its build) only while git still knows it as a
        // worktree of this repository; a work tree made anew orphans it.
        let registered = git.worktree_paths()?.contains(&check_dir);
        if !registered {
            if check_dir.exists() {
                // patchq's own scratch checkout: nothing in it is anyone's work.
                fs_err::remove_dir_all(&check_dir)?;
            }
            git.worktree_prune()?;
            git.worktree_add_detached(&check_dir, first)?;
        }
        // The checkout's build/cache is the main tree's; config.toml comes from the template.
        let cache_link = check_dir.join("build").join("cache");
        if !cache_link.exists() {
            fs_err::create_dir_all(check_dir.join("build"))?;
            std::os::unix::fs::symlink(tree.path.join("build").join("cache"), &cache_link)
                .with_context(|| format!("linking {}", cache_link.display()))?;
        }
        xpy::write_config(
            &ctx.loaded.config_template(),
            &check_dir,
            // `x.py check compiler` needs no library of another target. The
            // tree is checked one prefix after another: incremental keeps
            // what a patch did not change, and ccache the C++ files it did
            // not change.
            &xpy::Settings {
                description: "patchq check",
                enzyme: false,
                targets: &[],
                incremental: true,
                ccache: true,
            },
        )?;
        // A tree is remembered as passed under this config and this selection.
        let mut config = fs_err::read(check_dir.join("config.toml"))?;
        config.extend_from_slice(checkset::RULE.as_bytes());
        let config_hash = sha256_hex(&config);
        let record = git.git_dir().join("patchq").join("checked");
        let passed = fs_err::read_to_string(&record).unwrap_or_default().lines().map(str::to_owned).collect();
        Ok(Checker { _lock: lock, git: Git::open(&check_dir), dir: check_dir, config_hash, record, passed })
    }

    /// `x.py check` of the compiler (see `checkset`) on `commit`, unless its
    /// tree passed before.
    pub fn check(&mut self, commit: &str, label: &str) -> Result<()> {
        let key = format!("{} {}", self.git.tree_of(commit)?, &self.config_hash[..16]);
        if self.passed.contains(&key) {
            ui::note(format!("{label}: x.py check passed before on this exact tree {}; not re-run", short(&key)));
            return Ok(());
        }
        self.git.checkout_detached(commit)?;
        let args = checkset::xpy_args(&self.dir)?;
        let tested = match args.len() - 2 {
            1 => "1 crate".to_owned(),
            n => format!("{n} crates"),
        };
        let phase = ui::phase(format!("{label}: x.py check compiler (libraries; the tests of {tested})"));
        self.xpy().run(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        phase.done("builds");
        self.passed.insert(key);
        write_lines(&self.record, &self.passed)
    }

    /// x.py in the checkout. ccache keeps its cache in the checkout's build
    /// directory, unless the caller names one: it goes when the checkout
    /// goes, and a new checkout starts cold (as CI measures it).
    fn xpy(&self) -> XPy {
        let xpy = XPy::new(&self.dir);
        if std::env::var_os("CCACHE_DIR").is_some() {
            return xpy;
        }
        xpy.with_env("CCACHE_DIR", self.dir.join("build").join("ccache").to_string_lossy())
    }
}

fn write_lines(path: &Path, lines: &BTreeSet<String>) -> Result<()> {
    let mut text = lines.iter().cloned().collect::<Vec<_>>().join("\n");
    text.push('\n');
    fs_err::write(path, text)?;
    Ok(())
}
