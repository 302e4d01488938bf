//! The only module that runs git.
//!
//! Every call runs with the user's global and system git configuration
//! hidden (`GIT_CONFIG_GLOBAL=/dev/null`, `GIT_CONFIG_NOSYSTEM=1`) and in
//! the C locale, so that commit ids, generated patch files and the messages
//! patchq parses do not depend on who runs it. Commits are made with
//! explicit identities and dates for the same reason.
//!
//! Building commits happens in a private index (`GIT_INDEX_FILE`) with
//! plumbing commands, so that a new chain of commits can be prepared
//! without touching the files in the work tree; only [`Git::reset_keep`]
//! moves the files, and it writes only those whose content changes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::process::Cmd;

/// A repository (work tree or bare) that patchq drives.
#[derive(Clone)]
pub struct Git {
    dir: PathBuf,
}

/// Who made a commit, and when (a date git understands, kept verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub email: String,
    pub date: String,
}

/// What `git mailinfo` reads out of a patch mail.
#[derive(Debug, Clone)]
pub struct MailInfo {
    pub author: Ident,
    /// The full commit message: subject, blank line, body.
    pub message: String,
}

/// The private index commits are built in (`.git/patchq/index.scratch`).
/// It removes itself, and git's lock file beside it, when dropped, so that
/// neither outlives the step that made it, on errors included.
struct ScratchIndex {
    path: PathBuf,
}

impl ScratchIndex {
    fn remove(&self) {
        for path in [self.path.clone(), self.path.with_extension("scratch.lock")] {
            // Absent is the normal case; anything else shows on next use.
            let _ = std::fs::remove_file(path);
        }
    }
}

impl std::ops::Deref for ScratchIndex {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

/// Patches put on trees in the private index, without touching the work
/// tree's files or index. Reading a tree of rustc's 70k files into the
/// index costs three times what applying a patch and writing the tree do,
/// so the index keeps the last tree it made: building a chain (each patch
/// on the tree the one before made) reads a tree in once, not once per
/// patch. Nothing else may use the private index while this lives.
pub struct PatchIndex<'g> {
    git: &'g Git,
    index: ScratchIndex,
    /// The tree the index holds exactly, when known.
    holds: Option<String>,
}

impl PatchIndex<'_> {
    /// Applies a patch file to the tree of `parent`, with no fuzz (git
    /// apply's default: every context line must match); the resulting tree.
    pub fn apply(&mut self, parent: &str, patch: &Path) -> Result<Result<String, ApplyFailure>> {
        self.run(parent, patch, &[])
    }

    /// Like [`PatchIndex::apply`], but falls back to a 3-way merge with the
    /// blobs the patch names when its context does not match exactly. A
    /// merge that conflicts is a failure.
    pub fn apply_3way(&mut self, parent: &str, patch: &Path) -> Result<Result<String, ApplyFailure>> {
        self.run(parent, patch, &["--3way"])
    }

    /// [`PatchIndex::apply`], falling back to [`PatchIndex::apply_3way`]:
    /// the tree and whether it took a 3-way merge.
    pub fn apply_or_merge(&mut self, parent: &str, patch: &Path) -> Result<Result<(String, bool), ApplyFailure>> {
        if let Ok(tree) = self.apply(parent, patch)? {
            return Ok(Ok((tree, false)));
        }
        Ok(self.apply_3way(parent, patch)?.map(|tree| (tree, true)))
    }

    /// Whether the tree of `commit` already contains the patch's change:
    /// the patch applies in reverse, exactly. Only git's "does not apply"
    /// (status 1) means no: anything else that failed (git killed, a
    /// corrupt patch) is an error, not a reason to apply or drop the patch.
    pub fn contains(&mut self, commit: &str, patch: &Path) -> Result<bool> {
        match self.run(commit, patch, &["--check", "--reverse"])? {
            Ok(_) => Ok(true),
            Err(failure) if failure.status == Some(1) => Ok(false),
            // 128: git could not use the patch at all.
            Err(failure) => bail!("`git apply --check --reverse {}`: {}", patch.display(), failure.stderr.trim()),
        }
    }

    /// `git apply --cached <flags>` on the tree of `parent`; the resulting
    /// tree (unless `--check`), or why it failed.
    fn run(&mut self, parent: &str, patch: &Path, flags: &[&str]) -> Result<Result<String, ApplyFailure>> {
        let git = self.git;
        let tree = git.tree_of(parent)?;
        if self.holds.as_ref() != Some(&tree) {
            self.holds = None;
            git.with_index(&self.index, &["read-tree", &tree]).read()?;
            self.holds = Some(tree);
        }
        let patch = patch.canonicalize().with_context(|| format!("reading {}", patch.display()))?;
        let patch_arg = patch.to_string_lossy();
        let args: Vec<&str> = ["apply", "--cached", "--whitespace=nowarn"]
            .into_iter()
            .chain(flags.iter().copied())
            .chain([&*patch_arg])
            .collect();
        let out = git.with_index(&self.index, &args).output()?;
        if !out.status.success() && !flags.contains(&"--check") {
            // `--check` writes nothing; a failed apply should not either,
            // but a 3-way one leaves its conflicts: read the tree in again.
            self.holds = None;
        }
        // 1: does not apply; 128: git could not use the patch (corrupt,
        // unreadable): both are the patch's, in git's words.
        if !yes_or_no(&out, &args, &[1, 128])? {
            let status = out.status.code();
            return Ok(Err(ApplyFailure { location: failed_location(&out.stderr), stderr: out.stderr, status }));
        }
        if flags.contains(&"--check") {
            return Ok(Ok(String::new()));
        }
        // Until write-tree has said what the index holds, it is unknown.
        self.holds = None;
        let tree = git.with_index(&self.index, &["write-tree"]).read()?.trim().to_owned();
        self.holds = Some(tree.clone());
        Ok(Ok(tree))
    }
}

impl Drop for ScratchIndex {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Why a patch did not apply.
#[derive(Debug, Clone)]
pub struct ApplyFailure {
    /// The file and line of the first hunk git rejected, when it said.
    pub location: Option<(String, u32)>,
    /// git's own words.
    pub stderr: String,
    /// git's exit status: 1 when the patch does not apply.
    pub status: Option<i32>,
}

pub fn init(dir: &Path) -> Result<Git> {
    fs_err::create_dir_all(dir)?;
    let git = Git { dir: dir.to_owned() };
    git.run(["init", "--quiet", "--initial-branch=main"])?;
    // The work tree is big and derived: background gc would only add pauses.
    git.run(["config", "gc.auto", "0"])?;
    git.run(["config", "core.autocrlf", "false"])?;
    Ok(git)
}

impl Git {
    pub fn open(dir: &Path) -> Git {
        Git { dir: dir.to_owned() }
    }

    /// The git directory (`.git`), where patchq keeps its state.
    pub fn git_dir(&self) -> PathBuf {
        self.dir.join(".git")
    }

    pub fn is_repo(dir: &Path) -> bool {
        dir.join(".git").is_dir()
    }

    fn cmd<I, S>(&self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Cmd::new("git")
            .dir(&self.dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("LC_ALL", "C")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .args(args)
    }

    fn run<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd(args).read()
    }

    fn with_index(&self, index: &Path, args: &[&str]) -> Cmd {
        self.cmd(args).env("GIT_INDEX_FILE", index)
    }

    /// Resolves a revision to a full commit id, or `None` if it does not exist.
    pub fn rev_parse(&self, rev: &str) -> Result<Option<String>> {
        let args = ["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")];
        let out = self.cmd(args).output()?;
        Ok(yes_or_no(&out, &args, &[1])?.then(|| out.stdout.trim().to_owned()))
    }

    pub fn head(&self) -> Result<String> {
        self.rev_parse("HEAD")?.context("the work tree has no commit yet")
    }

    pub fn tree_of(&self, commit: &str) -> Result<String> {
        Ok(self.run(["rev-parse", &format!("{commit}^{{tree}}")])?.trim().to_owned())
    }

    /// Files with uncommitted changes, and untracked files git does not
    /// ignore, as `git status --porcelain` names them.
    pub fn dirty_files(&self) -> Result<Vec<String>> {
        let out = self.run(["status", "--porcelain=v1", "--untracked-files=all"])?;
        Ok(out.lines().map(|l| l.get(3..).unwrap_or(l).to_owned()).collect())
    }

    /// Stages everything in the work tree and records it as a root commit
    /// on `main`; returns the commit id.
    pub fn commit_all_as_root(&self, message: &str, who: &Ident) -> Result<String> {
        self.run(["add", "--all"])?;
        let tree = self.run(["write-tree"])?.trim().to_owned();
        let commit = self.commit_tree(&tree, None, message, who, who)?;
        self.run(["update-ref", "refs/heads/main", &commit])?;
        Ok(commit)
    }

    pub fn commit_tree(
        &self,
        tree: &str,
        parent: Option<&str>,
        message: &str,
        author: &Ident,
        committer: &Ident,
    ) -> Result<String> {
        let mut args = vec!["commit-tree".to_owned(), tree.to_owned()];
        if let Some(parent) = parent {
            args.extend(["-p".to_owned(), parent.to_owned()]);
        }
        let out = self
            .cmd(args)
            .env("GIT_AUTHOR_NAME", &author.name)
            .env("GIT_AUTHOR_EMAIL", &author.email)
            .env("GIT_AUTHOR_DATE", &author.date)
            .env("GIT_COMMITTER_NAME", &committer.name)
            .env("GIT_COMMITTER_EMAIL", &committer.email)
            .env("GIT_COMMITTER_DATE", &committer.date)
            .stdin(message.as_bytes().to_vec())
            .read()?;
        Ok(out.trim().to_owned())
    }

    /// The tree of `parent` with `files` written (path, content, executable)
    /// and `removals` deleted, built in a private index.
    pub fn tree_with_files(
        &self,
        parent: &str,
        files: &[(String, Vec<u8>, bool)],
        removals: &[String],
    ) -> Result<String> {
        let index = self.scratch_index()?;
        self.with_index(&index, &["read-tree", parent]).read()?;
        for (path, content, executable) in files {
            let blob = self.cmd(["hash-object", "-w", "--stdin"]).stdin(content.clone()).read()?;
            let mode = if *executable { "100755" } else { "100644" };
            let info = format!("{mode},{},{path}", blob.trim());
            self.with_index(&index, &["update-index", "--add", "--cacheinfo", &info]).read()?;
        }
        for path in removals {
            let listed = self.with_index(&index, &["ls-files", "--", path]).read()?;
            if listed.trim().is_empty() {
                bail!("the overlay removes `{path}`, but the base has no such file");
            }
            self.with_index(&index, &["update-index", "--force-remove", "--", path]).read()?;
        }
        let tree = self.with_index(&index, &["write-tree"]).read()?;
        Ok(tree.trim().to_owned())
    }

    /// A private index for putting patches on trees (see [`PatchIndex`]).
    pub fn patch_index(&self) -> Result<PatchIndex<'_>> {
        Ok(PatchIndex { git: self, index: self.scratch_index()?, holds: None })
    }

    /// Applies a patch to the index and the files with a 3-way merge,
    /// leaving conflict markers and unmerged entries where it conflicts.
    /// Returns git's complaint when it did not apply cleanly.
    pub fn apply_3way_in_place(&self, patch: &Path) -> Result<Option<String>> {
        let patch = patch.canonicalize().with_context(|| format!("reading {}", patch.display()))?;
        let out = self.cmd(["apply", "--3way", "--whitespace=nowarn"]).arg(&patch).output()?;
        // 1: conflicts; 128: git could not use the patch.
        Ok((!yes_or_no(&out, &["apply", "--3way"], &[1, 128])?).then_some(out.stderr))
    }

    /// Paths with unmerged (conflicted) index entries.
    pub fn unmerged_files(&self) -> Result<Vec<String>> {
        let out = self.run(["diff", "--name-only", "--diff-filter=U"])?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    /// The unified diff between two commits or trees, without context.
    pub fn diff_between(&self, from: &str, to: &str) -> Result<String> {
        self.run(["diff", "--no-color", "--no-ext-diff", "--no-renames", "-U0", from, to])
    }

    /// Tracked files whose content in the work tree differs from the index.
    pub fn unstaged_files(&self) -> Result<Vec<String>> {
        let out = self.run(["diff", "--name-only"])?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    /// Tracked paths whose index or work-tree content differs from HEAD.
    pub fn changed_since_head(&self) -> Result<Vec<String>> {
        let out = self.run(["diff", "--no-renames", "--name-only", "-z", "HEAD"])?;
        Ok(out.split('\0').filter(|p| !p.is_empty()).map(str::to_owned).collect())
    }

    /// The branches checked out in this repository's work trees, the main
    /// one and every linked one (`refs/heads/…`).
    pub fn checked_out_branches(&self) -> Result<Vec<String>> {
        let out = self.run(["worktree", "list", "--porcelain"])?;
        Ok(out.lines().filter_map(|l| l.strip_prefix("branch ")).map(str::to_owned).collect())
    }

    /// The paths of this repository's work trees, the main one first.
    pub fn worktree_paths(&self) -> Result<Vec<PathBuf>> {
        let out = self.run(["worktree", "list", "--porcelain"])?;
        Ok(out.lines().filter_map(|l| l.strip_prefix("worktree ")).map(PathBuf::from).collect())
    }

    /// Forgets linked work trees whose directories are gone.
    pub fn worktree_prune(&self) -> Result<()> {
        self.run(["worktree", "prune"])?;
        Ok(())
    }

    /// Adds a linked work tree at `dir`, detached at `commit`.
    pub fn worktree_add_detached(&self, dir: &Path, commit: &str) -> Result<()> {
        self.cmd(["worktree", "add", "--detach", "--quiet"]).arg(dir).arg(commit).read()?;
        Ok(())
    }

    /// Moves this work tree to `commit`, detached (a check tree, no one's work).
    pub fn checkout_detached(&self, commit: &str) -> Result<()> {
        self.run(["checkout", "--quiet", "--detach", commit])?;
        Ok(())
    }

    /// Whether the directory is in a git repository (at any depth).
    pub fn is_in_repo(&self) -> Result<bool> {
        let args = ["rev-parse", "--git-dir"];
        yes_or_no(&self.cmd(args).output()?, &args, &[128])
    }

    /// Writes `commit`'s tree as a tar archive to `out`.
    pub fn archive(&self, commit: &str, out: &Path) -> Result<()> {
        self.cmd(["archive", "--format=tar", "-o"]).arg(out).arg(commit).read()?;
        Ok(())
    }

    /// Whether `dir` is itself a git repository (a work tree's top or a
    /// bare one), not a directory inside one.
    pub fn is_repo_root(dir: &Path) -> bool {
        dir.join(".git").exists() || (dir.join("HEAD").is_file() && dir.join("objects").is_dir())
    }

    /// Moves `main` to `commit`, leaving the index and the files as they are.
    pub fn reset_soft(&self, commit: &str) -> Result<()> {
        self.run(["reset", "--quiet", "--soft", commit])?;
        Ok(())
    }

    /// Writes the real index as a tree.
    pub fn write_index_tree(&self) -> Result<String> {
        Ok(self.run(["write-tree"])?.trim().to_owned())
    }

    /// Records every file under `dir` (an unpacked source tree, not a git
    /// checkout) as a root commit of this repository, in a private index:
    /// neither this repository's files nor `dir` change.
    pub fn import_dir(&self, dir: &Path, message: &str, who: &Ident) -> Result<String> {
        let index = self.scratch_index()?;
        let git_dir = self.run(["rev-parse", "--absolute-git-dir"])?;
        self.cmd(["--git-dir", git_dir.trim()])
            .arg("--work-tree")
            .arg(dir)
            .args(["add", "--all", "."])
            .dir(dir)
            .env("GIT_INDEX_FILE", &*index)
            .read()?;
        let tree = self.with_index(&index, &["write-tree"]).read()?;
        drop(index);
        self.commit_tree(tree.trim(), None, message, who, who)
    }

    /// Moves `main`, the index and the files to `commit`, discarding what
    /// differs. Only for states patchq made itself (an aborted rebase).
    pub fn reset_hard(&self, commit: &str) -> Result<()> {
        self.run(["reset", "--quiet", "--hard", commit])?;
        Ok(())
    }

    /// A file's content at a revision, or `None` if it has no such file.
    pub fn show_file(&self, rev: &str, path: &str) -> Result<Option<String>> {
        let args = ["show", &format!("{rev}:{path}")];
        let out = self.cmd(args).output()?;
        // 128: no such file (or revision) there.
        Ok(yes_or_no(&out, &args, &[128])?.then_some(out.stdout))
    }

    fn scratch_index(&self) -> Result<ScratchIndex> {
        let git_dir = self.run(["rev-parse", "--absolute-git-dir"])?;
        let dir = Path::new(git_dir.trim()).join("patchq");
        fs_err::create_dir_all(&dir)?;
        let index = ScratchIndex { path: dir.join("index.scratch") };
        // Only patchq uses this index, and only while it holds the work
        // tree's lock: what is there now (the index, or git's lock on it)
        // was left by a patchq that was killed.
        index.remove();
        Ok(index)
    }

    /// Reads author, date and message out of a patch mail.
    pub fn mailinfo(&self, patch: &Path) -> Result<MailInfo> {
        let scratch = tempfile::tempdir().context("creating a temporary directory")?;
        let (msg, diff) = (scratch.path().join("msg"), scratch.path().join("diff"));
        let mail = fs_err::read(patch)?;
        // -b: strip only `[PATCH…]` from the subject, keep other brackets.
        let out = self
            .cmd(["mailinfo", "-b", "-u"])
            .arg(&msg)
            .arg(&diff)
            .stdin(mail)
            .read()
            .with_context(|| format!("reading the mail headers of {}", patch.display()))?;
        let field =
            |key: &str| out.lines().find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned())).unwrap_or_default();
        let (name, email, date, subject) = (field("Author:"), field("Email:"), field("Date:"), field("Subject:"));
        if name.is_empty() || email.is_empty() || date.is_empty() {
            bail!("{}: the patch has no complete `From:`/`Date:` header (author and date)", patch.display());
        }
        let body = fs_err::read_to_string(&msg)?;
        let body = body.trim();
        let message = if body.is_empty() { format!("{subject}\n") } else { format!("{subject}\n\n{body}\n") };
        Ok(MailInfo { author: Ident { name, email, date }, message })
    }

    /// Moves `main` and the files to `commit`. git rewrites only the files
    /// that differ between the current and the new commit, so unchanged
    /// files keep their modification times; it refuses rather than lose a
    /// local change.
    pub fn reset_keep(&self, commit: &str) -> Result<()> {
        self.run(["reset", "--quiet", "--keep", commit])?;
        Ok(())
    }

    pub fn update_ref(&self, name: &str, commit: &str) -> Result<()> {
        self.run(["update-ref", name, commit])?;
        Ok(())
    }

    /// Paths that differ between two commits.
    pub fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>> {
        let out = self.run(["diff", "--no-renames", "--name-only", from, to])?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    /// Commits after `from` up to `to`, oldest first, first parents only.
    pub fn commits_between(&self, from: &str, to: &str) -> Result<Vec<String>> {
        let out = self.run(["rev-list", "--reverse", "--first-parent", &format!("{from}..{to}")])?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    pub fn is_ancestor(&self, ancestor: &str, of: &str) -> Result<bool> {
        let args = ["merge-base", "--is-ancestor", ancestor, of];
        yes_or_no(&self.cmd(args).output()?, &args, &[1])
    }

    pub fn message_of(&self, commit: &str) -> Result<String> {
        self.run(["log", "-1", "--format=%B", commit])
    }

    pub fn parent_count(&self, commit: &str) -> Result<usize> {
        let out = self.run(["log", "-1", "--format=%P", commit])?;
        Ok(out.split_whitespace().count())
    }

    /// The commit as a patch mail, in the one stable format the fork keeps
    /// in `patches/`: no commit id, no signature, no numbering, full
    /// 12-digit blob abbreviations, default diff settings.
    pub fn format_patch(&self, commit: &str) -> Result<String> {
        self.run([
            "-c",
            "core.abbrev=12",
            "format-patch",
            "--stdout",
            "--zero-commit",
            "--no-signature",
            "--no-numbered",
            "--no-thread",
            "--subject-prefix=PATCH",
            "--stat=80",
            "--no-color",
            "--no-renames",
            "-1",
            commit,
        ])
    }
}

/// A git command whose status is an answer: success is yes, a status in
/// `no` is no. Anything else (git killed by a signal, or interrupted while
/// patchq was not, as when SIGINT is ignored in a background job) is an
/// error: taken for a no, it would make patchq apply, drop or recreate
/// what it should not.
fn yes_or_no(out: &crate::process::Output, args: &[&str], no: &[i32]) -> Result<bool> {
    match out.status.code() {
        Some(0) => Ok(true),
        Some(code) if no.contains(&code) => Ok(false),
        _ => bail!("`git {}` failed ({}): {}", args.join(" "), out.status, out.stderr.trim()),
    }
}

/// A unified diff of two texts, as git shows it, without the file header;
/// empty when they are equal.
pub fn diff_texts(old: &str, new: &str) -> Result<String> {
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let (a, b) = (scratch.path().join("old"), scratch.path().join("new"));
    fs_err::write(&a, old)?;
    fs_err::write(&b, new)?;
    let out =
        Git::open(scratch.path()).cmd(["diff", "--no-index", "--no-color", "--unified=3"]).arg(&a).arg(&b).output()?;
    // `diff --no-index` exits with 1 when the files differ.
    if !matches!(out.status.code(), Some(0 | 1)) {
        bail!("git diff --no-index: {}", out.stderr.trim());
    }
    let body = out.stdout.split_once("\n@@").map_or(String::new(), |(_, rest)| format!("@@{rest}"));
    Ok(body)
}

/// git apply says `error: patch failed: <file>:<line>` for the first hunk
/// it cannot place.
fn failed_location(stderr: &str) -> Option<(String, u32)> {
    stderr.lines().find_map(|line| {
        let rest = line.strip_prefix("error: patch failed: ")?;
        let (file, line) = rest.rsplit_once(':')?;
        Some((file.to_owned(), line.trim().parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn failed_hunk_location_is_read_from_git_apply() {
        let stderr = "error: patch failed: compiler/x.rs:120\nerror: compiler/x.rs: patch does not apply\n";
        assert_eq!(super::failed_location(stderr), Some(("compiler/x.rs".to_owned(), 120)));
        assert_eq!(super::failed_location("error: compiler/y.rs: does not exist in index\n"), None);
    }

    /// The patch index keeps the last tree it made, and reads another in
    /// whenever a patch goes on any other tree, or after a failure.
    #[test]
    fn patch_index_reads_a_tree_in_only_when_it_does_not_hold_it() {
        let tmp = tempfile::tempdir().unwrap();
        let git = super::init(&tmp.path().join("repo")).unwrap();
        let who = super::Ident { name: "t".into(), email: "t@t".into(), date: "1700000000 +0000".into() };
        let files =
            [("a.txt".to_owned(), b"one\ntwo\nthree\n".to_vec(), false), ("b.txt".to_owned(), b"x\n".to_vec(), false)];
        // git's empty tree, which every repository has.
        let root = git.commit_tree("4b825dc642cb6eb9a060e54bf8d69288fbee4904", None, "empty", &who, &who).unwrap();
        let base_tree = git.tree_with_files(&root, &files, &[]).unwrap();
        let base = git.commit_tree(&base_tree, Some(&root), "base", &who, &who).unwrap();
        // A change of the first line, the rest of the file as context.
        let patch = |name: &str, file: &str, old: &str, new: &str, rest: &str| {
            let path = tmp.path().join(name);
            let n = 1 + rest.lines().count();
            let text = format!(
                "diff --git a/{file} b/{file}\n--- a/{file}\n+++ b/{file}\n@@ -1,{n} +1,{n} @@\n-{old}\n+{new}\n{rest}"
            );
            fs_err::write(&path, text).unwrap();
            path
        };
        let (p1, p2) = (patch("p1", "a.txt", "one", "ONE", " two\n three\n"), patch("p2", "b.txt", "x", "X", ""));
        let file = |tree: &str, path: &str| git.show_file(tree, path).unwrap().unwrap();

        let mut index = git.patch_index().unwrap();
        let t1 = index.apply(&base, &p1).unwrap().unwrap();
        let c1 = git.commit_tree(&t1, Some(&base), "p1", &who, &who).unwrap();
        // On the tree it holds: both changes.
        let t2 = index.apply(&c1, &p2).unwrap().unwrap();
        assert_eq!((file(&t2, "a.txt").as_str(), file(&t2, "b.txt").as_str()), ("ONE\ntwo\nthree\n", "X\n"));
        // On another tree: that tree, not the one held.
        let t3 = index.apply(&base, &p2).unwrap().unwrap();
        assert_eq!((file(&t3, "a.txt").as_str(), file(&t3, "b.txt").as_str()), ("one\ntwo\nthree\n", "X\n"));
        // A failure, then the same chain again: the same trees.
        assert!(index.apply(&c1, &p1).unwrap().is_err(), "p1 is in c1 already");
        assert!(index.contains(&c1, &p1).unwrap());
        assert!(!index.contains(&base, &p1).unwrap());
        assert_eq!(index.apply(&c1, &p2).unwrap().unwrap(), t2);
        assert_eq!(index.apply(&base, &p1).unwrap().unwrap(), t1);
    }
}
