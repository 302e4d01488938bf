//! `patchq refresh`: write `patches/` from the work tree's commits after a
//! developer edited them (amend, `rebase -i`, new commits).
//!
//! Every commit after the overlay becomes one patch file, in the stable
//! format of `Git::format_patch`, and the series lists them in commit
//! order. A commit keeps the file name of the patch it came from: by commit
//! id when unchanged, else by subject; a new commit gets a name from its
//! `Topic:` and subject. `--check` writes nothing and fails if `patches/`
//! differs from what it would write.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::Ctx;
use crate::exit::{Code, Exit};
use crate::patch::PatchMeta;
use crate::queue::{self, Queue, sha256_hex};
use crate::series::{self, BaseRecord};
use crate::ui;
use crate::worktree::{Applied, FileWrite, State, WorkTree, rebase_state_path, short};

/// One patch file as refresh would write it.
struct Generated {
    name: String,
    commit: String,
    content: String,
}

pub fn run(ctx: &Ctx, check: bool, force: bool) -> Result<()> {
    let _lock = ctx.lock()?;
    let Some(mut tree) = WorkTree::open(&ctx.tree)? else {
        bail!("{} does not exist: there is nothing to refresh from (`patchq apply` creates it)", ctx.tree.display());
    };
    if rebase_state_path(&tree.path).is_file() {
        bail!(
            "{} is in the middle of `patchq rebase`: finish it (`patchq rebase --continue`) or \
             abort it before refreshing",
            tree.path.display()
        );
    }
    let dirty = tree.git.dirty_files()?;
    if !dirty.is_empty() {
        ui::warn(format!(
            "{} uncommitted file(s) in {} are not part of any commit and are left out",
            dirty.len(),
            tree.path.display()
        ));
    }
    let old = Queue::load(&ctx.loaded.patches_dir())?;
    let generated = generate(&tree, &old)?;
    let unheld = not_in_tree(&tree.state, &old, &generated);
    if !unheld.is_empty() && !check && !force {
        return Err(Exit::new(
            Code::PatchesAheadOfTree,
            format!(
                "patches/ holds what the work tree {} does not; refresh would overwrite or delete it:\n  {}\n\
                 apply first (`patchq apply` brings them into the work tree), or, to replace them with \
                 the work tree's commits, `patchq refresh --force`",
                tree.path.display(),
                unheld.join("\n  ")
            ),
        )
        .into());
    }
    let mut series = old.series.clone();
    if series.header.is_empty() {
        series.header.push("# patchq series: one patch file per line, in the order they apply.".to_owned());
    }
    series.patches = generated.iter().map(|g| g.name.clone()).collect();
    series.set_base(&base_record(ctx, &tree));
    let series_text = series.render();

    let dir = ctx.loaded.patches_dir();
    let series_path = dir.join(queue::SERIES_FILE);
    let mut stale = Vec::new();
    if fs_err::read_to_string(&series_path)? != series_text {
        stale.push(queue::SERIES_FILE.to_owned());
    }
    for g in &generated {
        if fs_err::read_to_string(dir.join(&g.name)).ok().as_deref() != Some(g.content.as_str()) {
            stale.push(g.name.clone());
        }
    }
    let removed: Vec<&str> =
        old.series.patches.iter().filter(|p| !series.patches.contains(p)).map(String::as_str).collect();
    stale.extend(removed.iter().map(|r| format!("{r} (no longer a commit)")));

    if check {
        if stale.is_empty() {
            ui::out(format!("patches/ is up to date with {} ({} patches)", tree.path.display(), generated.len()));
            return Ok(());
        }
        bail!(
            "patches/ is out of date with the commits in {}:\n  {}\nrun `patchq refresh` to rewrite it",
            tree.path.display(),
            stale.join("\n  ")
        );
    }
    // The tree will match patches/ exactly: record it, so the next apply
    // keeps every commit.
    let mut state = tree.state.clone();
    state.patches = generated
        .iter()
        .map(|g| Applied { name: g.name.clone(), hash: sha256_hex(g.content.as_bytes()), commit: g.commit.clone() })
        .collect();
    let rebased_from = state.rebased_from.take();
    // One journaled step: new content first, the series next, removals
    // last, then the state; a run killed anywhere in it is completed by
    // the next command that opens the tree.
    let mut files: Vec<FileWrite> =
        generated.into_iter().map(|g| FileWrite { path: dir.join(&g.name), content: Some(g.content) }).collect();
    files.push(FileWrite { path: series_path, content: Some(series_text) });
    files.extend(removed.iter().map(|name| FileWrite { path: dir.join(name), content: None }));
    tree.write_files("refresh", files, state)?;
    if let Some(from) = rebased_from {
        ui::note(format!("the queue's move from {from} is now in patches/"));
    }
    if stale.is_empty() {
        ui::out("patches/ was already up to date");
    } else {
        ui::out(format!("rewrote {}", stale.join(", ")));
    }
    Ok(())
}

/// The patch files of the queue whose content the work tree does not hold:
/// listed but never applied (an `apply` that stopped, a `git pull` that
/// brought new patches), or changed since patchq last wrote or applied
/// them (edited by hand). After a rebase, the patches it dropped are
/// meant to go. A file that already is what the commits make (a refresh
/// interrupted after writing it) loses nothing.
fn not_in_tree(state: &State, queue: &Queue, generated: &[Generated]) -> Vec<String> {
    let mut out = Vec::new();
    for patch in &queue.patches {
        if generated.iter().any(|g| g.name == patch.name && sha256_hex(g.content.as_bytes()) == patch.hash) {
            continue;
        }
        match state.patches.iter().find(|a| a.name == patch.name) {
            Some(applied) if applied.hash != patch.hash => {
                out.push(format!("{}: edited since patchq last wrote or applied it", patch.name));
            }
            None if state.rebased_from.is_none() => {
                out.push(format!("{}: not applied to the work tree yet", patch.name));
            }
            _ => {}
        }
    }
    out
}

fn generate(tree: &WorkTree, old: &Queue) -> Result<Vec<Generated>> {
    let Some(overlay) = tree.state.overlay_commit.clone() else {
        bail!("{} has no overlay commit yet: run `patchq apply` first", tree.path.display());
    };
    let head = tree.git.head()?;
    if !tree.git.is_ancestor(&overlay, &head)? {
        bail!(
            "the overlay commit {} is not an ancestor of HEAD {}: patches must sit on top of it \
             (rebase your commits onto {})",
            short(&overlay),
            short(&head),
            short(&overlay)
        );
    }
    let by_commit: BTreeMap<&str, &str> =
        tree.state.patches.iter().map(|a| (a.commit.as_str(), a.name.as_str())).collect();
    let by_subject: BTreeMap<&str, &str> =
        old.patches.iter().map(|p| (p.file.subject.as_str(), p.name.as_str())).collect();

    let mut out: Vec<Generated> = Vec::new();
    for commit in tree.git.commits_between(&overlay, &head)? {
        if tree.git.parent_count(&commit)? != 1 {
            bail!("commit {} is a merge: the queue is linear, rebase it away", short(&commit));
        }
        let message = tree.git.message_of(&commit)?;
        let subject = message.lines().next().unwrap_or_default().to_owned();
        let body = message.split_once("\n\n").map_or("", |(_, b)| b);
        let meta = PatchMeta::from_message(body).map_err(|err| {
            anyhow::anyhow!(
                "commit {} `{subject}`: {err}\nadd the trailers with `git commit --amend` \
                 (or `git rebase -i`), then refresh again",
                short(&commit)
            )
        })?;
        let name = match by_commit.get(commit.as_str()).or_else(|| by_subject.get(subject.as_str())) {
            Some(name) => name.to_string(),
            None => series::patch_name_for(&meta.topic, &subject),
        };
        if out.iter().any(|g| g.name == name) {
            bail!(
                "two commits map to the patch file `{name}` (commit {} `{subject}`): give one of \
                 them a different subject",
                short(&commit)
            );
        }
        let content = tree.git.format_patch(&commit)?;
        let markers = crate::patch::conflict_marker_files(&content);
        if !markers.is_empty() {
            bail!(
                "commit {} `{subject}` adds conflict markers:\n  {}\nresolve them and amend the commit \
                 (`git commit --amend`, or `git rebase -i`), then refresh again",
                short(&commit),
                markers.join("\n  ")
            );
        }
        out.push(Generated { name, commit, content });
    }
    Ok(out)
}

/// The base the work tree's queue applies to, as the series header records it.
pub fn base_record(ctx: &Ctx, tree: &WorkTree) -> BaseRecord {
    if let Some(record) = &tree.state.record {
        return record.clone();
    }
    // A tree made before patchq recorded its base: the pinned one.
    let cfg = &ctx.loaded.config.base;
    let (source, sha256) = crate::base::split_id(&tree.state.base);
    BaseRecord { version: cfg.version.clone(), commit: Some(cfg.commit.clone()), source, sha256 }
}
