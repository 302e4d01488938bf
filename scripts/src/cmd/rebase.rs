//! `patchq rebase`: move the queue to another base.
//!
//! `--onto <base>` takes another Debian version (`debian:<version>`), an
//! upstream `rustc-*-src.tar.xz`, or a rust-lang/rust checkout
//! (`<path>` for its HEAD, `<path>@<rev>`). The new base becomes a root
//! commit in the work tree's repository, the overlay goes on top, and the
//! patches follow one by one, in the object store first:
//!
//! - a patch whose change the new base already contains (it applies in
//!   reverse) is "already upstream": listed, and dropped only with
//!   `--drop-merged`; without it the rebase stops before changing anything;
//! - a patch applies exactly, or else with a 3-way merge against the blobs
//!   it was made from (they are in the same repository);
//! - a patch that conflicts stops the rebase: the work tree moves to the
//!   new base with the patches before it, the conflicting patch is applied
//!   with conflict markers, and patchq lists the conflicted files. Resolve,
//!   `git add`, then `patchq rebase --continue`; or `patchq rebase --abort`
//!   to get the exact previous state back.
//!
//! What `--continue` and `--abort` need is in `.git/patchq/rebase.toml`.
//! After the last patch, `patchq refresh` writes the moved patches and the
//! new base into `patches/`; until then `apply` refuses, so that the old
//! patch files cannot undo the rebase.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::base::BaseSource;
use crate::exit::{Code, Exit};
use crate::patch::PatchFile;
use crate::queue::{Queue, QueuedPatch};
use crate::stack;
use crate::ui;
use crate::worktree::{Applied, State, WorkTree, base_message, patchq_ident, rebase_state_path, short};

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["onto", "continue_", "abort"])))]
pub struct Args {
    /// The new base: `debian:<version>`, a rustc-<version>-src.tar.xz, a rust-lang/rust checkout, or `<checkout>@<rev>`.
    #[arg(long, value_name = "BASE")]
    pub onto: Option<String>,
    /// Go on after resolving a conflict (edit, `git add`, then this).
    #[arg(long = "continue")]
    pub continue_: bool,
    /// Stop the rebase and restore the work tree exactly as it was before it.
    #[arg(long, conflicts_with_all = ["onto", "continue_", "drop_merged"])]
    pub abort: bool,
    /// Drop the patches whose change the new base already contains.
    #[arg(long)]
    pub drop_merged: bool,
}

/// A rebase under way, saved between `--onto` and `--continue`/`--abort`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Plan {
    /// The tree's state before the rebase: what `--abort` restores.
    old: State,
    /// The state being built on the new base; `patches` grows.
    new: State,
    /// The patches not yet on the new base, in queue order (name, file hash).
    todo: Vec<Pending>,
    /// The patch whose conflicts are being resolved in the work tree.
    conflicted: Option<Pending>,
    /// Dropped as already upstream.
    dropped: Vec<String>,
    /// Applied only with a 3-way merge, or resolved by hand.
    merged: Vec<String>,
    resolved: Vec<String>,
    /// Resolved to no change and dropped with `--drop-merged`.
    #[serde(default)]
    emptied: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Pending {
    name: String,
    hash: String,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let _lock = ctx.lock()?;
    let mut tree = WorkTree::open(&ctx.tree)?
        .with_context(|| format!("{} does not exist: there is no queue to rebase", ctx.tree.display()))?;
    if args.abort {
        return abort(ctx, &mut tree);
    }
    if args.continue_ {
        return resume(ctx, &mut tree, args.drop_merged);
    }
    let onto = args.onto.as_deref().expect("clap requires one action");
    start(ctx, &mut tree, onto, args.drop_merged)
}

fn start(ctx: &Ctx, tree: &mut WorkTree, onto: &str, drop_merged: bool) -> Result<()> {
    tree.ensure_clean()?;
    let queue = ctx.queue()?;
    let overlay = ctx.overlay()?;
    let in_sync =
        tree.state.overlay_hash.as_deref() == Some(overlay.hash.as_str()) && tree.state.has_patches_of(&queue);
    if !in_sync {
        bail!("{} is not up to date with patches/: run `patchq apply` first, then rebase", tree.path.display());
    }
    let cfg = &ctx.loaded.config.base;
    let source = BaseSource::parse_spec(onto)?;
    let id = source.id(cfg, &ctx.cache)?;
    if id == tree.state.base {
        bail!("the queue is already on {id}");
    }

    let phase = ui::phase(format!("importing the new base {id}"));
    let extracted = source.extract(cfg, &ctx.cache, &tree.path)?;
    let record = source.record(cfg, &id, extracted.path())?;
    let date = ctx.base_date();
    let base_commit = tree.git.import_dir(extracted.path(), &base_message(&record, &id), &patchq_ident(date))?;
    drop(extracted);
    phase.done(format!("Rust {}, base commit {}", record.version, short(&base_commit)));

    let overlay_commit = tree
        .overlay_commit_on(&base_commit, &overlay, date)
        .context("the overlay does not fit the new base: adjust src-overlay/ or [overlay] remove first")?;
    let plan = Plan {
        old: tree.state.clone(),
        new: State {
            base: id,
            base_commit,
            record: Some(record),
            rebased_from: None,
            overlay_hash: Some(overlay.hash.clone()),
            overlay_commit: Some(overlay_commit),
            patches: Vec::new(),
        },
        todo: queue.patches.iter().map(|p| Pending { name: p.name.clone(), hash: p.hash.clone() }).collect(),
        conflicted: None,
        dropped: Vec::new(),
        merged: Vec::new(),
        resolved: Vec::new(),
        emptied: Vec::new(),
    };
    advance(tree, plan, &queue, drop_merged, true)
}

/// Puts the pending patches on the new base, in the object store, as far
/// as they go; then moves the work tree, and either finishes or stops on a
/// conflict with markers in the files.
fn advance(tree: &mut WorkTree, mut plan: Plan, queue: &Queue, drop_merged: bool, first: bool) -> Result<()> {
    let mut items = Vec::new();
    for (index, pending) in plan.todo.iter().enumerate() {
        items.push(stack::Item { index, patch: queued(queue, pending)?, skip_if_contained: true });
    }
    let builder = stack::Builder { fit: stack::Fit::ExactOrMerge, ..tree.builder() };
    let chain = builder.build(plan.new.head(), items)?;
    let (mut applied, mut upstream, mut merged) = (Vec::new(), Vec::new(), Vec::new());
    for link in &chain.links {
        match link {
            stack::Link::Committed { index, commit, merged: was_merged } => {
                let pending = &plan.todo[*index];
                if *was_merged {
                    merged.push(pending.name.clone());
                }
                applied.push(Applied {
                    name: pending.name.clone(),
                    hash: pending.hash.clone(),
                    commit: commit.clone(),
                });
            }
            stack::Link::AlreadyIn { index } => upstream.push(plan.todo[*index].name.clone()),
        }
    }
    let conflict = chain.failure.map(|(index, _)| plan.todo[index].clone());

    if !upstream.is_empty() && !drop_merged {
        let again =
            if first { "`patchq rebase --onto … --drop-merged`" } else { "`patchq rebase --continue --drop-merged`" };
        let state = if first {
            "nothing was changed".to_owned()
        } else {
            format!("the work tree stays at {}", short(plan.new.head()))
        };
        return Err(Exit::new(
            Code::NeedsConfirmation,
            format!(
                "already upstream (the new base contains their change):\n  {}\n{state}; to drop them \
                 from the queue, run {again}; or `patchq rebase --abort`",
                upstream.join("\n  ")
            ),
        )
        .into());
    }

    // Commit to the result: save the plan first, so that an interruption
    // from here on can still be aborted.
    let done = applied.len() + upstream.len();
    plan.todo.retain(|p| !applied.iter().any(|a| a.name == p.name) && !upstream.contains(&p.name));
    plan.new.patches.extend(applied);
    plan.dropped.extend(upstream.iter().cloned());
    plan.merged.extend(merged);
    for name in &upstream {
        ui::note(format!("{name}: already upstream, dropped"));
    }
    let Some(conflict) = conflict else {
        return finish(tree, plan);
    };
    plan.todo.retain(|p| *p != conflict);
    plan.conflicted = Some(conflict.clone());
    save(tree, &plan)?;
    tree.move_to("rebase", plan.new.head(), None, false)?;
    stop_on_conflict(tree, plan, queue, drop_merged, done)
}

/// Applies the conflicting patch in the files with a 3-way merge, leaving
/// markers, and stops with the list of conflicted files (exit 3). The tree
/// is at the plan's head and the plan is saved.
fn stop_on_conflict(tree: &mut WorkTree, plan: Plan, queue: &Queue, drop_merged: bool, done: usize) -> Result<()> {
    let conflict = plan.conflicted.clone().expect("a conflict to stop on");
    let patch = queued(queue, &conflict)?;
    let complaint = tree.git.apply_3way_in_place(&patch.path)?;
    let Some(complaint) = complaint else {
        // Clean in the files after all (git's in-place merge can do more).
        return resume_with(tree, plan, queue, drop_merged);
    };
    let conflicted = tree.git.unmerged_files()?;
    let position = queue.series.position(&conflict.name).map_or(0, |i| i + 1);
    let mut msg = format!(
        "patch {position}/{} `{}` conflicts with the new base ({done} before it moved).\n",
        queue.patches.len(),
        conflict.name
    );
    if conflicted.is_empty() {
        msg.push_str(&format!(
            "git could not merge it ({}); make its change by hand in {}, then `git add` the files",
            complaint.trim().replace('\n', "; "),
            tree.path.display()
        ));
    } else {
        msg.push_str(&format!(
            "conflicted files (markers in {}):\n  {}\nresolve them and `git add` them",
            tree.path.display(),
            conflicted.join("\n  ")
        ));
    }
    msg.push_str(", then `patchq rebase --continue`; or `patchq rebase --abort` to go back");
    Err(Exit::new(Code::PatchDoesNotApply, msg).into())
}

/// `--continue`: commit the resolved patch, then go on.
fn resume(ctx: &Ctx, tree: &mut WorkTree, drop_merged: bool) -> Result<()> {
    let plan = load(tree)?;
    let queue = ctx.queue()?;
    resume_with(tree, plan, &queue, drop_merged)
}

fn resume_with(tree: &mut WorkTree, mut plan: Plan, queue: &Queue, drop_merged: bool) -> Result<()> {
    if tree.git.head()? != plan.new.head() {
        bail!(
            "{} is not where the rebase left it ({}): move it back (`git reset --keep {}`) or abort",
            tree.path.display(),
            short(plan.new.head()),
            short(plan.new.head())
        );
    }
    if let Some(pending) = plan.conflicted.clone() {
        let unmerged = tree.git.unmerged_files()?;
        if !unmerged.is_empty() {
            bail!(
                "still conflicted:\n  {}\nresolve them, `git add` them, then `patchq rebase --continue`",
                unmerged.join("\n  ")
            );
        }
        let unstaged = tree.git.unstaged_files()?;
        if !unstaged.is_empty() {
            bail!(
                "changes not staged:\n  {}\n`git add` what belongs to the patch (or `git checkout` what does \
                 not), then `patchq rebase --continue`",
                unstaged.join("\n  ")
            );
        }
        let patch = queued(queue, &pending)?;
        let tree_id = tree.git.write_index_tree()?;
        let parent = plan.new.head().to_owned();
        if tree_id == tree.git.tree_of(&parent)? {
            if !drop_merged {
                // Nothing of the patch is in the files: they were reset, or
                // the rebase was interrupted before it wrote the conflict.
                // Dropping the patch silently would lose it; put the
                // conflict back instead.
                ui::note(format!(
                    "{}: the work tree holds none of its change (reset, or interrupted before the merge); \
                     applying it again",
                    pending.name
                ));
                let done = plan.new.patches.len() + plan.dropped.len() + plan.emptied.len();
                return stop_on_conflict(tree, plan, queue, drop_merged, done);
            }
            ui::note(format!("{}: resolved to no change; dropped (--drop-merged)", pending.name));
            plan.emptied.push(pending.name.clone());
        } else {
            let markers = crate::patch::conflict_marker_files(&tree.git.diff_between(&parent, &tree_id)?);
            if !markers.is_empty() {
                return Err(Exit::new(
                    Code::PatchDoesNotApply,
                    format!(
                        "conflict markers are still in (staged) files:\n  {}\nresolve them, `git add` them, \
                         then `patchq rebase --continue`; or `patchq rebase --abort`",
                        markers.join("\n  ")
                    ),
                )
                .into());
            }
            let commit = tree.builder().commit(&tree_id, &parent, patch)?;
            // The index and the files already hold the commit's tree.
            tree.git.reset_soft(&commit)?;
            plan.new.patches.push(Applied { name: pending.name.clone(), hash: pending.hash.clone(), commit });
            plan.resolved.push(pending.name.clone());
        }
        plan.conflicted = None;
        save(tree, &plan)?;
    }
    advance(tree, plan, queue, drop_merged, false)
}

/// The last patch is on the new base: the tree's state becomes the plan's.
fn finish(tree: &mut WorkTree, plan: Plan) -> Result<()> {
    let mut state = plan.new;
    state.rebased_from = Some(plan.old.base.clone());
    let moved = state.patches.len();
    let version = state.record.as_ref().map_or("?".to_owned(), |r| r.version.clone());
    let base = state.base.clone();
    let head = state.head().to_owned();
    tree.move_to("rebase", &head, Some(state), true)?;
    let mut summary = format!("rebased {moved} patch(es) onto Rust {version} ({base})");
    for (what, names) in [
        ("3-way merged", &plan.merged),
        ("resolved by hand", &plan.resolved),
        ("dropped as already upstream", &plan.dropped),
        ("resolved to no change, dropped", &plan.emptied),
    ] {
        if !names.is_empty() {
            summary.push_str(&format!("\n  {what}: {}", names.join(", ")));
        }
    }
    ui::out(summary);
    ui::out(
        "next: `patchq refresh` writes the moved patches and the new base into patches/; \
         point [base] in patchq.toml at the new base so that fresh machines build it",
    );
    Ok(())
}

/// `--abort`: back to the exact state before `--onto` for everything the
/// rebase touched (the files that differ between the old and the new
/// commits, and those of the conflicting patch); edits the user made
/// meanwhile to other tracked files stay.
fn abort(ctx: &Ctx, tree: &mut WorkTree) -> Result<()> {
    if tree.recovered.as_deref() == Some("rebase --abort") && !rebase_state_path(&tree.path).is_file() {
        // Opening the tree completed the abort a kill interrupted.
        ui::out(format!(
            "rebase aborted: {} is back at {} on {}",
            tree.path.display(),
            short(tree.state.head()),
            tree.state.base
        ));
        return Ok(());
    }
    let plan = load(tree)?;
    let head = plan.old.head().to_owned();
    let mut touched: BTreeSet<String> = tree.git.changed_paths(&head, "HEAD")?.into_iter().collect();
    if let Some(conflicted) = &plan.conflicted {
        let path = ctx.loaded.patches_dir().join(&conflicted.name);
        match fs_err::read_to_string(&path).map_err(anyhow::Error::from).and_then(|t| PatchFile::parse(&t)) {
            Ok(patch) => touched.extend(patch.touched_paths().map(str::to_owned)),
            Err(err) => {
                ui::warn(format!(
                    "cannot tell which files the conflicting patch touched ({err:#}): every edit in {} is undone",
                    tree.path.display()
                ));
                touched.extend(tree.git.changed_since_head()?);
            }
        }
    }
    let kept = tree.reset_to("rebase --abort", &head, touched, plan.old, true)?;
    ui::out(format!("rebase aborted: {} is back at {} on {}", tree.path.display(), short(&head), tree.state.base));
    if !kept.is_empty() {
        ui::out(format!("kept your uncommitted edits to files the rebase did not touch: {}", kept.join(", ")));
    }
    Ok(())
}

fn queued<'q>(queue: &'q Queue, pending: &Pending) -> Result<&'q QueuedPatch> {
    let patch = queue.patches.iter().find(|p| p.name == pending.name);
    match patch {
        Some(p) if p.hash == pending.hash => Ok(p),
        Some(_) => bail!(
            "patches/{} changed during the rebase: put it back as it was (`git checkout patches/{}`), \
             or `patchq rebase --abort`",
            pending.name,
            pending.name
        ),
        None => bail!("patches/{} went away during the rebase: restore it, or `patchq rebase --abort`", pending.name),
    }
}

fn load(tree: &WorkTree) -> Result<Plan> {
    let path = rebase_state_path(&tree.path);
    if !path.is_file() {
        bail!("no rebase is under way in {}", tree.path.display());
    }
    let text = fs_err::read_to_string(&path)?;
    toml::from_str(&text).with_context(|| format!("{}: unreadable rebase state", path.display()))
}

fn save(tree: &WorkTree, plan: &Plan) -> Result<()> {
    let path = rebase_state_path(&tree.path);
    let text = toml::to_string(plan).context("serializing the rebase state")?;
    let tmp = path.with_extension("toml.tmp");
    fs_err::write(&tmp, text)?;
    fs_err::rename(&tmp, &path)?;
    Ok(())
}
