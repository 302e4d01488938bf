//! The work tree: a rust checkout whose git history is the base, the
//! overlay, then one commit per patch of the series.
//!
//! patchq records which commit holds which layer in `.git/patchq/state.toml`
//! (base id, overlay hash, and each patch's name, file hash and commit).
//! Comparing that record with the queue on disk is what makes `apply`
//! incremental: the longest prefix that still matches is kept as it is, and
//! only the rest is rebuilt.
//!
//! Invariants:
//! - uncommitted edits, and commits that `patches/` does not know yet, are
//!   never overwritten: every operation that moves the tree checks first
//!   and refuses, naming what it would lose;
//! - new commits are built in a private index and only then is the tree
//!   moved, with `git reset --keep`, which writes exactly the files whose
//!   content differs: unchanged files keep their modification times, so
//!   cargo rebuilds only what a changed patch touches;
//! - a patch that does not apply leaves the tree on the last good commit.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::exit::{Code, Exit};
use crate::git::{self, ApplyFailure, Git, Ident};
use crate::patch::hunk_old_start;
use crate::queue::{Overlay, Queue};
use crate::scratch::ScratchDir;
use crate::series::BaseRecord;
use crate::stack;
use crate::ui;

/// Keeps the base commit reachable whatever happens to `main`.
pub const BASE_REF: &str = "refs/patchq/base";
/// Keeps the commit of the last patch patchq applied reachable.
pub const QUEUE_REF: &str = "refs/patchq/queue";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct State {
    /// Which base the tree was made from (see `base::BaseSource::id`).
    pub base: String,
    pub base_commit: String,
    /// What the series header records for the base; trees made before
    /// patchq recorded it fall back to `patchq.toml`'s `[base]`.
    #[serde(default)]
    pub record: Option<BaseRecord>,
    /// Set by `patchq rebase` until `patchq refresh` has written the moved
    /// commits into patches/: the base the queue came from.
    #[serde(default)]
    pub rebased_from: Option<String>,
    pub overlay_hash: Option<String>,
    pub overlay_commit: Option<String>,
    #[serde(default, rename = "patch")]
    pub patches: Vec<Applied>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Applied {
    pub name: String,
    /// sha256 of the patch file the commit was made from.
    pub hash: String,
    pub commit: String,
}

impl State {
    /// Whether the recorded patches are exactly the queue's (names and file hashes).
    pub fn has_patches_of(&self, queue: &Queue) -> bool {
        self.patches.len() == queue.patches.len()
            && self.patches.iter().zip(&queue.patches).all(|(a, p)| a.name == p.name && a.hash == p.hash)
    }

    /// The commit `main` should point at.
    pub fn head(&self) -> &str {
        match self.patches.last() {
            Some(p) => &p.commit,
            None => self.overlay_commit.as_deref().unwrap_or(&self.base_commit),
        }
    }
}

pub struct WorkTree {
    pub path: PathBuf,
    pub git: Git,
    pub state: State,
    /// The operation of the interrupted step [`WorkTree::open`] completed, if any.
    pub recovered: Option<String>,
}

/// What a sync did.
pub struct SyncReport {
    pub kept: usize,
    pub applied: usize,
    pub files_rewritten: usize,
}

/// The identity of the commits patchq itself makes (base and overlay), with
/// a fixed date so that their ids are the same on every machine.
pub fn patchq_ident(date: &str) -> Ident {
    Ident { name: "patchq".to_owned(), email: "patchq@localhost".to_owned(), date: date.to_owned() }
}

impl WorkTree {
    /// Opens an existing work tree, first completing a step a killed
    /// patchq left unfinished; `Ok(None)` if the path does not exist. Only
    /// under the lock.
    pub fn open(path: &Path) -> Result<Option<WorkTree>> {
        let Some(mut tree) = WorkTree::open_as_is(path)? else { return Ok(None) };
        tree.recover()?;
        Ok(Some(tree))
    }

    /// Opens a work tree without touching it, an unfinished step included
    /// (for `status`, which does not take the lock).
    pub fn open_as_is(path: &Path) -> Result<Option<WorkTree>> {
        if !path.exists() {
            return Ok(None);
        }
        let state_path = state_path(path);
        if !Git::is_repo(path) || !state_path.is_file() {
            bail!(
                "{} exists but is not a patchq work tree (no {}): move it away, or point \
                 [work-tree] path in patchq.toml elsewhere",
                path.display(),
                state_path.display()
            );
        }
        let text = fs_err::read_to_string(&state_path)?;
        let state = toml::from_str(&text).with_context(|| format!("{}: unreadable state", state_path.display()))?;
        Ok(Some(WorkTree { path: path.to_owned(), git: Git::open(path), state, recovered: None }))
    }

    /// Makes a new work tree from an extracted base: `git init` and one
    /// commit holding every file. All of it happens in the extracted
    /// directory, which moves to `path` only when the tree is complete: a
    /// failure leaves no half-made tree behind to block the next run.
    pub fn create(
        path: &Path,
        base_id: &str,
        record: BaseRecord,
        extracted: ScratchDir,
        date: &str,
    ) -> Result<WorkTree> {
        let building = extracted.path().to_owned();
        let git = git::init(&building)?;
        // What patchq itself writes into the tree (stage0 and the build under
        // build/, the rendered config.toml) is never a user's edit, whatever
        // commit the tree is on: the base has no .gitignore of its own.
        fs_err::write(git.git_dir().join("info").join("exclude"), "/build/\n/config.toml\n")?;
        let commit = git.commit_all_as_root(&base_message(&record, base_id), &patchq_ident(date))?;
        git.update_ref(BASE_REF, &commit)?;
        let state = State { base: base_id.to_owned(), base_commit: commit, record: Some(record), ..State::default() };
        let tree = WorkTree { path: building, git, state, recovered: None };
        tree.save_state()?;
        extracted.keep_as(path)?;
        Ok(WorkTree { path: path.to_owned(), git: Git::open(path), state: tree.state, recovered: None })
    }

    pub fn save_state(&self) -> Result<()> {
        let text = toml::to_string(&self.state).context("serializing the work-tree state")?;
        write_atomically(&state_path(&self.path), &text)
    }

    /// Moves the files, `main` and (with `state`) patchq's record to `to`
    /// as one journaled step: the journal is written before the work tree
    /// is touched and removed after the state is saved, so that a run
    /// killed in between is completed by the next one ([`WorkTree::recover`]).
    /// With `remove_rebase_plan`, the step also ends a rebase.
    pub fn move_to(&mut self, operation: &str, to: &str, state: Option<State>, remove_rebase_plan: bool) -> Result<()> {
        let journal = Journal {
            operation: operation.to_owned(),
            from: self.git.head()?,
            to: to.to_owned(),
            state,
            remove_rebase_plan,
            reset: None,
            kept: Vec::new(),
            files: Vec::new(),
        };
        let path = journal_path(&self.path);
        let text = toml::to_string(&journal).context("serializing the journal")?;
        write_atomically(&path, &text)?;
        if let Err(err) = self.git.reset_keep(to) {
            // `reset --keep` checks before it writes: nothing moved.
            fs_err::remove_file(&path)?;
            return Err(err);
        }
        self.complete(journal)
    }

    /// Resets the paths in `reset` to `to` whatever they hold, moves `main`
    /// there and records `state`, as one journaled step (see
    /// [`WorkTree::move_to`]). Uncommitted edits to other tracked files are
    /// first copied to `.git/patchq/set-aside/` and named in the journal,
    /// then written back after the reset: a run killed anywhere loses none
    /// of them, the next one writes them back ([`WorkTree::recover`]).
    /// Returns the paths whose edits were kept.
    pub fn reset_to(
        &mut self,
        operation: &str,
        to: &str,
        reset: BTreeSet<String>,
        state: State,
        remove_rebase_plan: bool,
    ) -> Result<Vec<String>> {
        let aside = set_aside_path(&self.path);
        if aside.exists() {
            // Left by a run killed before it wrote its journal: nothing moved.
            fs_err::remove_dir_all(&aside)?;
        }
        let mut kept = Vec::new();
        for path in self.git.changed_since_head()? {
            if reset.contains(&path) {
                continue;
            }
            let file = self.path.join(&path);
            let copy = if file.symlink_metadata().is_ok() {
                let name = kept.len().to_string();
                fs_err::create_dir_all(&aside)?;
                fs_err::write(aside.join(&name), fs_err::read(&file)?)?;
                Some(name)
            } else {
                None
            };
            kept.push(Kept { path, copy });
        }
        let journal = Journal {
            operation: operation.to_owned(),
            from: self.git.head()?,
            to: to.to_owned(),
            state: Some(state),
            remove_rebase_plan,
            reset: Some(reset.into_iter().collect()),
            kept,
            files: Vec::new(),
        };
        let text = toml::to_string(&journal).context("serializing the journal")?;
        write_atomically(&journal_path(&self.path), &text)?;
        self.git.reset_hard(to)?;
        self.write_back(&journal.kept)?;
        let kept = journal.kept.iter().map(|k| k.path.clone()).collect();
        self.complete(journal)?;
        Ok(kept)
    }

    /// Writes `files` in order (each its content, or removed) and records
    /// `state`, as one journaled step: the journal holds every content
    /// before the first file is touched, so that a run killed anywhere in
    /// between is completed by the next one, which writes them all again
    /// whatever it finds ([`WorkTree::recover`]). The work tree's files,
    /// `main` and patchq's refs stay where they are.
    pub fn write_files(&mut self, operation: &str, files: Vec<FileWrite>, state: State) -> Result<()> {
        let head = state.head().to_owned();
        let journal = Journal {
            operation: operation.to_owned(),
            from: head.clone(),
            to: head,
            state: Some(state),
            remove_rebase_plan: false,
            reset: None,
            kept: Vec::new(),
            files,
        };
        let text = toml::to_string(&journal).context("serializing the journal")?;
        write_atomically(&journal_path(&self.path), &text)?;
        write_all(&journal.files)?;
        self.complete(journal)
    }

    /// Writes the edits a journaled reset set aside back into the files.
    fn write_back(&self, kept: &[Kept]) -> Result<()> {
        let aside = set_aside_path(&self.path);
        for k in kept {
            let file = self.path.join(&k.path);
            match &k.copy {
                Some(copy) => {
                    if let Some(parent) = file.parent() {
                        fs_err::create_dir_all(parent)?;
                    }
                    fs_err::write(&file, fs_err::read(aside.join(copy))?)?;
                }
                None if file.symlink_metadata().is_ok() => fs_err::remove_file(&file)?,
                None => {}
            }
        }
        Ok(())
    }

    /// The end of a journaled step, once the files are at `journal.to`.
    fn complete(&mut self, journal: Journal) -> Result<()> {
        if let Some(state) = journal.state {
            if journal.files.is_empty() {
                self.git.update_ref(BASE_REF, &state.base_commit)?;
                self.git.update_ref(QUEUE_REF, state.head())?;
            }
            self.state = state;
            self.save_state()?;
        }
        let plan = rebase_state_path(&self.path);
        if journal.remove_rebase_plan && plan.exists() {
            fs_err::remove_file(plan)?;
        }
        let aside = set_aside_path(&self.path);
        if aside.exists() {
            fs_err::remove_dir_all(aside)?;
        }
        fs_err::remove_file(journal_path(&self.path))?;
        Ok(())
    }

    /// Completes a step that a killed patchq left unfinished (the journal
    /// is still there): the files may be anywhere between the step's start
    /// and its end, and git's index lock may be left. Only the paths that
    /// differ between the two commits are patchq's writes; they go to the
    /// end state, every other uncommitted edit stays. Says what it did.
    pub fn recover(&mut self) -> Result<()> {
        let path = journal_path(&self.path);
        if !path.is_file() {
            return Ok(());
        }
        let text = fs_err::read_to_string(&path)?;
        let journal: Journal =
            toml::from_str(&text).with_context(|| format!("{}: unreadable journal", path.display()))?;
        if !journal.files.is_empty() {
            // Only files outside the tree: whatever state the kill left
            // them in, writing them all again completes the step.
            write_all(&journal.files)?;
            let dir = common_dir(&journal.files);
            ui::note(format!(
                "completed an interrupted `{}`: wrote {} file(s) in {} again",
                journal.operation,
                journal.files.len(),
                dir.display()
            ));
            self.recovered = Some(journal.operation.clone());
            return self.complete(journal);
        }
        let head = self.git.head()?;
        if head != journal.from && head != journal.to {
            // Someone moved `main` since: completing the step would drop that.
            bail!(
                "an interrupted `{}` was moving {} from {} to {}, but it is at {} now: to complete \
                 that step, `git -C {} reset --keep {}` and run patchq again; to give it up, \
                 `rm {}` (`patchq apply` then rebuilds from the recorded state)",
                journal.operation,
                self.path.display(),
                short(&journal.from),
                short(&journal.to),
                short(&head),
                quoted(&self.path),
                short(&journal.from),
                quoted(&path)
            );
        }
        let index_lock = self.git.git_dir().join("index.lock");
        if index_lock.exists() {
            // Left by the git command the killed patchq was running.
            fs_err::remove_file(&index_lock)?;
        }
        match &journal.reset {
            None => {
                let touched = self.git.changed_paths(&journal.from, &journal.to)?.into_iter().collect();
                self.reset_hard_keeping_others(&journal.to, &touched)?;
            }
            Some(reset) => {
                // The set-aside edits are written back from their copies;
                // edits made since the kill to other files stay as they are.
                let mut touched: BTreeSet<String> = reset.iter().cloned().collect();
                touched.extend(journal.kept.iter().map(|k| k.path.clone()));
                self.reset_hard_keeping_others(&journal.to, &touched)?;
                self.write_back(&journal.kept)?;
            }
        }
        ui::note(format!(
            "completed an interrupted `{}`: {} moved from {} to {}",
            journal.operation,
            self.path.display(),
            short(&journal.from),
            short(&journal.to)
        ));
        if !journal.kept.is_empty() {
            let kept: Vec<&str> = journal.kept.iter().map(|k| k.path.as_str()).collect();
            ui::note(format!("kept your uncommitted edits to: {}", kept.join(", ")));
        }
        self.recovered = Some(journal.operation.clone());
        self.complete(journal)
    }

    /// `git reset --hard target` for the paths in `touched`; uncommitted
    /// edits to other tracked files are written back afterwards. Returns
    /// the paths whose edits were kept.
    pub fn reset_hard_keeping_others(&self, target: &str, touched: &BTreeSet<String>) -> Result<Vec<String>> {
        let mut kept = Vec::new();
        for path in self.git.changed_since_head()? {
            if touched.contains(&path) {
                continue;
            }
            let file = self.path.join(&path);
            let content = if file.symlink_metadata().is_ok() { Some(fs_err::read(&file)?) } else { None };
            kept.push((path, content));
        }
        self.git.reset_hard(target)?;
        for (path, content) in &kept {
            let file = self.path.join(path);
            match content {
                Some(bytes) => {
                    if let Some(parent) = file.parent() {
                        fs_err::create_dir_all(parent)?;
                    }
                    fs_err::write(&file, bytes)?;
                }
                None if file.exists() => fs_err::remove_file(&file)?,
                None => {}
            }
        }
        Ok(kept.into_iter().map(|(p, _)| p).collect())
    }

    /// Refuses while a rebase is under way or not yet written to patches/:
    /// applying the old patch files then would undo it.
    pub fn ensure_not_rebasing(&self) -> Result<()> {
        if rebase_state_path(&self.path).is_file() {
            return Err(Exit::new(
                Code::WorkTreeNotClean,
                format!(
                    "{} is in the middle of `patchq rebase`: finish it with `patchq rebase --continue`, \
                     or go back with `patchq rebase --abort`",
                    self.path.display()
                ),
            )
            .into());
        }
        if let Some(from) = &self.state.rebased_from {
            return Err(Exit::new(
                Code::WorkTreeNotClean,
                format!(
                    "{} was rebased (from {from}) and patches/ does not hold the moved commits yet: \
                     run `patchq refresh` first",
                    self.path.display()
                ),
            )
            .into());
        }
        Ok(())
    }

    /// Refuses when moving the tree could lose work: uncommitted edits, a
    /// `main` that is not where patchq left it, or a rebase not yet saved.
    pub fn ensure_clean(&self) -> Result<()> {
        self.ensure_not_rebasing()?;
        let index_lock = self.git.git_dir().join("index.lock");
        if index_lock.exists() {
            // git leaves it when it is killed (a Ctrl-C during patchq's own
            // `reset --keep` included); only the user can tell that no git
            // command of theirs is running.
            return Err(Exit::new(
                Code::WorkTreeNotClean,
                format!(
                    "{} exists: a git command is running in {}, or one was killed. if none is \
                     running, remove it (`rm {}`) and run patchq again",
                    index_lock.display(),
                    self.path.display(),
                    quoted(&index_lock)
                ),
            )
            .into());
        }
        let dirty = self.git.dirty_files()?;
        if !dirty.is_empty() {
            let shown: Vec<_> = dirty.iter().take(10).map(|f| format!("  {f}")).collect();
            let more = if dirty.len() > 10 { format!("\n  … and {} more", dirty.len() - 10) } else { String::new() };
            return Err(Exit::new(
                Code::WorkTreeNotClean,
                format!(
                    "{} has uncommitted edits; patchq will not overwrite them:\n{}{more}\n\
                     keep them by committing (then `patchq refresh` writes them into patches/), \
                     or set them aside with `git -C {} stash -u`",
                    self.path.display(),
                    shown.join("\n"),
                    quoted(&self.path)
                ),
            )
            .into());
        }
        let head = self.git.head()?;
        if head != self.state.head() {
            return Err(Exit::new(
                Code::WorkTreeNotClean,
                format!(
                    "{} is at commit {}, but patchq last left it at {}: its commits are not all in \
                     patches/ yet.\nsave them with `patchq refresh`, or drop them with \
                     `git -C {} reset --keep {}`",
                    self.path.display(),
                    short(&head),
                    short(self.state.head()),
                    quoted(&self.path),
                    short(self.state.head())
                ),
            )
            .into());
        }
        Ok(())
    }

    /// Builds the commits for `overlay` and `queue` on top of the base,
    /// keeping the longest prefix already in place, then moves the files.
    pub fn sync(&mut self, overlay: &Overlay, queue: &Queue, date: &str) -> Result<SyncReport> {
        self.ensure_clean()?;
        let old_head = self.state.head().to_owned();
        let (chain, failure) = self.build_chain(overlay, queue, date)?;
        let target = chain.head().to_owned();
        let kept = chain.patches.iter().zip(&self.state.patches).take_while(|(a, b)| a == b).count();
        let applied = chain.patches.len() - kept;
        let files_rewritten = self.git.changed_paths(&old_head, &target)?.len();
        self.move_to("apply", &target, Some(chain), false)?;
        match failure {
            Some(err) => Err(err),
            None => Ok(SyncReport { kept, applied, files_rewritten }),
        }
    }

    /// The state the tree should reach: existing commits where the layer is
    /// unchanged, new ones from the first change on. On a patch that does not
    /// apply, the chain stops before it and the error is returned beside it.
    fn build_chain(&self, overlay: &Overlay, queue: &Queue, date: &str) -> Result<(State, Option<anyhow::Error>)> {
        let old = &self.state;
        let mut chain = State { patches: Vec::new(), ..old.clone() };
        let overlay_unchanged = old.overlay_hash.as_deref() == Some(overlay.hash.as_str());
        let overlay_commit = match (&old.overlay_commit, overlay_unchanged) {
            (Some(commit), true) => commit.clone(),
            _ => self.overlay_commit_for(overlay, date)?,
        };
        chain.overlay_hash = Some(overlay.hash.clone());
        chain.overlay_commit = Some(overlay_commit.clone());

        // The longest prefix whose patches are the recorded ones stays.
        let kept = match overlay_unchanged {
            true => {
                queue.patches.iter().zip(&old.patches).take_while(|(p, a)| a.name == p.name && a.hash == p.hash).count()
            }
            false => 0,
        };
        chain.patches.extend(old.patches[..kept].iter().cloned());
        let built = self.builder().build(chain.head(), stack::items(&queue.patches, kept..queue.patches.len()))?;
        for (i, commit) in built.commits() {
            let patch = &queue.patches[i];
            chain.patches.push(Applied {
                name: patch.name.clone(),
                hash: patch.hash.clone(),
                commit: commit.to_owned(),
            });
        }
        let failure = built.failure.map(|(i, failure)| does_not_apply(&self.path, queue, i, &failure, chain.head()));
        Ok((chain, failure))
    }

    /// Commits the overlay on the tree's base (objects only; the files stay put).
    pub fn overlay_commit_for(&self, overlay: &Overlay, date: &str) -> Result<String> {
        self.overlay_commit_on(&self.state.base_commit, overlay, date)
    }

    /// The overlay commit for `overlay`: the recorded one while the overlay
    /// is unchanged, else a new one on the tree's base.
    pub fn current_overlay_commit(&self, overlay: &Overlay, date: &str) -> Result<String> {
        match &self.state.overlay_commit {
            Some(commit) if self.state.overlay_hash.as_deref() == Some(overlay.hash.as_str()) => Ok(commit.clone()),
            _ => self.overlay_commit_for(overlay, date),
        }
    }

    /// Commits the overlay on `base`.
    pub fn overlay_commit_on(&self, base: &str, overlay: &Overlay, date: &str) -> Result<String> {
        let tree = self.git.tree_with_files(base, &overlay.files, &overlay.removals)?;
        let mut message = String::from(
            "overlay: build fix-ups for the offline base\n\n\
             Files laid over the base before the patch series (src-overlay/ and\n\
             [overlay] remove in patchq.toml). Feature patches must not touch them.\n",
        );
        if !overlay.files.is_empty() || !overlay.removals.is_empty() {
            message.push('\n');
        }
        for (path, _, _) in &overlay.files {
            message.push_str(&format!("  write  {path}\n"));
        }
        for path in &overlay.removals {
            message.push_str(&format!("  remove {path}\n"));
        }
        self.git.commit_tree(&tree, Some(base), &message, &patchq_ident(date), &patchq_ident(date))
    }

    /// The fork's way of stacking patches: exact fit, the patch's message.
    pub fn builder(&self) -> stack::Builder<'_> {
        stack::Builder { git: &self.git, fit: stack::Fit::Exact, message: stack::Message::Patch }
    }
}

/// The message of a base commit.
pub fn base_message(record: &BaseRecord, id: &str) -> String {
    let title = match &record.commit {
        Some(commit) => format!("base: Rust {} ({})", record.version, &commit[..commit.len().min(9)]),
        None => format!("base: Rust {}", record.version),
    };
    format!("{title}\n\nThe pristine sources, without vendor/ (cargo reads crates.io).\nSource: {id}\n")
}

/// Why patch `index` of `queue` does not apply: which patch, which hunk,
/// and git's own words.
pub fn describe_failure(queue: &Queue, index: usize, failure: &ApplyFailure) -> String {
    let patch = &queue.patches[index];
    let mut msg = format!("patch {}/{} `{}` does not apply", index + 1, queue.patches.len(), patch.name);
    match &failure.location {
        Some((file, line)) => {
            let hunk = patch
                .file
                .files
                .iter()
                .filter(|f| &f.path == file || f.old_path.as_ref() == Some(file))
                .flat_map(|f| &f.hunks)
                .find(|h| hunk_old_start(h) == Some(*line));
            match hunk {
                Some(hunk) => msg.push_str(&format!(": hunk `{hunk}` in {file} fails\n")),
                None => msg.push_str(&format!(": the hunk at {file}:{line} fails\n")),
            }
        }
        None => msg.push('\n'),
    }
    msg.push_str(&format!("git apply: {}", failure.stderr.trim().replace('\n', "\n           ")));
    msg
}

/// The error for a patch that does not apply during a sync: the failure,
/// where the tree was left and how to go on.
fn does_not_apply(tree: &Path, queue: &Queue, index: usize, failure: &ApplyFailure, left_at: &str) -> anyhow::Error {
    let patch = &queue.patches[index];
    let mut msg = describe_failure(queue, index, failure);
    let previous = match index {
        0 => "the overlay".to_owned(),
        i => format!("`{}`", queue.patches[i - 1].name),
    };
    msg.push_str(&format!(
        "\nthe work tree {} is left on the last good patch ({previous}, commit {}).\n\
         to fix the patch: `git -C {} am -3 {}`, resolve, `git am --continue`, then `patchq refresh`",
        tree.display(),
        short(left_at),
        quoted(tree),
        quoted(&patch.path)
    ));
    Exit::new(Code::PatchDoesNotApply, msg).into()
}

/// patchq's own files beside the work tree: `<parent>/.<tree name>.patchq-<what>`
/// (the locks, the unpacking directory, the `--build-each` checkout).
pub fn beside(tree: &Path, what: &str) -> PathBuf {
    let name = tree.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "tree".into());
    tree.with_file_name(format!(".{name}.patchq-{what}"))
}

/// A path as it goes into a suggested shell command.
pub fn quoted(path: &Path) -> String {
    crate::process::shell_quote(path.as_os_str())
}

/// Writes `path` through a temporary file and a rename: a reader (or a run
/// after a kill) sees the old content or the new, never half of it.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    fs_err::create_dir_all(path.parent().expect("patchq's files have a parent"))?;
    let tmp = path.with_extension("toml.tmp");
    fs_err::write(&tmp, text)?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// One step that moves the work tree, written before the tree is touched
/// (`.git/patchq/journal.toml`) and removed when the step is complete.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Journal {
    /// The command under way, for the message.
    operation: String,
    /// The commit the tree was on before the step.
    from: String,
    /// The commit the step moves it to.
    to: String,
    /// The state recorded once the tree is at `to`; none leaves it.
    state: Option<State>,
    /// The step ends a rebase: its plan goes.
    #[serde(default)]
    remove_rebase_plan: bool,
    /// A reset rather than a `reset --keep`: the paths that go to `to`
    /// whatever they hold (none: those that differ between the commits).
    #[serde(default)]
    reset: Option<Vec<String>>,
    /// The uncommitted edits to other files a reset set aside.
    #[serde(default)]
    kept: Vec<Kept>,
    /// Files outside the tree the step writes, in order (`refresh`).
    #[serde(default)]
    files: Vec<FileWrite>,
}

/// A file outside the tree that a journaled step writes (`refresh`: in
/// patches/): its new content, or none to remove it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileWrite {
    pub path: PathBuf,
    #[serde(default)]
    pub content: Option<String>,
}

/// Writes `files` in order; a file to remove that is gone already is fine.
fn write_all(files: &[FileWrite]) -> Result<()> {
    for file in files {
        match &file.content {
            Some(content) => fs_err::write(&file.path, content)?,
            None => match fs_err::remove_file(&file.path) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            },
        }
    }
    Ok(())
}

/// The directory of the first file (all of a step's are in one), for messages.
fn common_dir(files: &[FileWrite]) -> PathBuf {
    files.first().and_then(|f| f.path.parent()).map(Path::to_owned).unwrap_or_default()
}

/// An uncommitted edit set aside during a journaled reset: the file, and
/// the name of its copy in `.git/patchq/set-aside/` (none: it was deleted).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Kept {
    path: String,
    #[serde(default)]
    copy: Option<String>,
}

/// Where a journaled reset keeps the edits it set aside.
fn set_aside_path(tree: &Path) -> PathBuf {
    tree.join(".git").join("patchq").join("set-aside")
}

/// Where the journal of an unfinished step is.
pub fn journal_path(tree: &Path) -> PathBuf {
    tree.join(".git").join("patchq").join("journal.toml")
}

pub fn state_path(tree: &Path) -> PathBuf {
    tree.join(".git").join("patchq").join("state.toml")
}

/// Where `patchq rebase` keeps what it needs to continue or abort.
pub fn rebase_state_path(tree: &Path) -> PathBuf {
    tree.join(".git").join("patchq").join("rebase.toml")
}

pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// Holds the work tree for one patchq run. The lock file sits beside the
/// tree (`.<name>.patchq-lock`) so that it exists before the tree does. It
/// is keyed by the tree's canonical path (which is where its git directory
/// is), so that every way of naming the tree (a symlink, `--work-tree
/// x/../rust`) takes the same lock.
pub struct Lock {
    _file: File,
}

/// The tree's path with symlinks and `..` resolved, whether the tree
/// exists yet or not.
fn canonical_tree(tree: &Path) -> Result<PathBuf> {
    if tree.exists() {
        return Ok(fs_err::canonicalize(tree)?);
    }
    let (Some(parent), Some(name)) = (tree.parent(), tree.file_name()) else {
        bail!("{} does not name a directory for the work tree", tree.display());
    };
    let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
    fs_err::create_dir_all(parent)?;
    Ok(fs_err::canonicalize(parent)?.join(name))
}

impl Lock {
    /// The work tree's lock, which every command that reads or moves the
    /// tree holds.
    pub fn acquire(tree: &Path, wait: bool) -> Result<Lock> {
        Lock::at(&beside(&canonical_tree(tree)?, "lock"), tree, wait)
    }

    /// The `--build-each` checkout's lock (`.<tree>.patchq-check-lock`):
    /// whoever runs x.py there holds it, and need not hold the work tree's
    /// while it does, so that `build` can go on beside a long check.
    pub fn acquire_check(tree: &Path, wait: bool) -> Result<Lock> {
        let canonical = canonical_tree(tree)?;
        Lock::at(&beside(&canonical, "check-lock"), &beside(&canonical, "check"), wait)
    }

    /// The check tree's lock if nobody holds it, without waiting: for
    /// reading the check tree's build from outside (`build`).
    pub fn try_acquire_check(tree: &Path) -> Result<Option<Lock>> {
        let path = beside(&canonical_tree(tree)?, "check-lock");
        let file = Lock::open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Lock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(err)) => {
                Err(anyhow::Error::new(err).context(format!("locking {}", path.display())))
            }
        }
    }

    fn open(path: &Path) -> Result<File> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs_err::create_dir_all(parent)?;
        }
        Ok(fs_err::OpenOptions::new().create(true).truncate(false).write(true).open(path)?.into_parts().0)
    }

    fn at(path: &Path, what: &Path, wait: bool) -> Result<Lock> {
        let file = Lock::open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) if wait => {
                ui::note(format!("waiting: another patchq is working on {} ({})", what.display(), path.display()));
                file.lock().with_context(|| format!("locking {}", path.display()))?;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Exit::new(
                    Code::Busy,
                    format!(
                        "another patchq is working on {} (lock {} is held); wait for it to finish, \
                         or run without --no-wait to queue behind it",
                        what.display(),
                        path.display()
                    ),
                )
                .into());
            }
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(anyhow::Error::new(err).context(format!("locking {}", path.display())));
            }
        }
        Ok(Lock { _file: file })
    }
}
