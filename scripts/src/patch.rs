//! One patch of the queue: a `git format-patch` mbox whose message ends in
//! the fork's trailers.
//!
//! Pure code. [`PatchFile::parse`] reads what `check`, `status` and `test`
//! need (subject, message, trailers, touched paths, hunk headers) without
//! git; applying and committing goes through `git.rs`, which lets git itself
//! decode the mail.
//!
//! The trailers (docs/PATCHES.md gives their meaning and rules):
//!
//! ```text
//! Topic: codegen
//! Upstream: rust-lang/rust#137271      (or `none` for fork-only patches)
//! Pr-title: cg_llvm: …                 (the PR's first patch; required if the PR has several)
//! Fixes: rust-lang/rust#137217         (optional, repeatable)
//! Tracking: rust-lang/rust#135467      (optional, repeatable)
//! Status: not-forwarded | open | merged-in 1.87 | closed | fork-only
//! Depends-on: other-patch.patch        (optional, repeatable)
//! ```

use std::fmt;

use anyhow::{Result, bail};

/// The files of a unified diff (`diff --git` sections) whose added lines
/// hold conflict markers (`<<<<<<< `, `>>>>>>> `), in diff order. Staging
/// a file with `git add` ends git's own notion of a conflict, so this is
/// what tells a resolved file from one that still carries the markers.
pub fn conflict_marker_files(diff: &str) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in diff.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            current = rest.split_once(" b/").map(|(_, b)| b.to_owned());
            continue;
        }
        let Some(added) = line.strip_prefix('+') else { continue };
        if added.starts_with("++ ") {
            continue;
        }
        let is_marker = ["<<<<<<<", ">>>>>>>"]
            .iter()
            .any(|m| added.strip_prefix(m).is_some_and(|rest| rest.is_empty() || rest.starts_with(' ')));
        if let (true, Some(file)) = (is_marker, &current)
            && !files.contains(file)
        {
            files.push(file.clone());
        }
    }
    files
}

/// A parsed patch file.
#[derive(Debug, Clone)]
pub struct PatchFile {
    pub subject: String,
    /// The commit message after the subject line (trailers included).
    pub body: String,
    /// Every file the diff touches, in diff order, with what happens to it.
    pub files: Vec<FileChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: String,
    /// Set for renames: the path before the patch.
    pub old_path: Option<String>,
    pub kind: ChangeKind,
    /// The `@@ … @@` header lines of the file's hunks.
    pub hunks: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Deleted,
    Modified,
}

impl PatchFile {
    pub fn parse(text: &str) -> Result<PatchFile> {
        if text.contains("\r\n") {
            bail!(
                "the file has CRLF (Windows) line endings; `git format-patch` files use LF: convert it \
                 (`sed -i 's/\\r$//' FILE`), and check patches/ out with `core.autocrlf=false`"
            );
        }
        let (headers, rest) = match text.split_once("\n\n") {
            Some(split) => split,
            None => bail!("no mail header: this is not a `git format-patch` file"),
        };
        let subject = mail_subject(headers)
            .ok_or_else(|| anyhow::anyhow!("no `Subject:` header: not a `git format-patch` file"))?;
        if !headers.lines().any(|l| l.starts_with("From: ")) {
            bail!("no `From:` header (the patch author): not a `git format-patch` file");
        }
        // The message ends at the `---` line that opens the diffstat, or at
        // the first diff if there is no stat.
        let mut body_lines = Vec::new();
        let mut lines = rest.lines().peekable();
        while let Some(line) = lines.peek() {
            if *line == "---" || line.starts_with("diff --git ") {
                break;
            }
            body_lines.push(*line);
            lines.next();
        }
        let body = body_lines.join("\n").trim().to_owned();
        let mut stat_files = None;
        while let Some(line) = lines.peek() {
            if line.starts_with("diff --git ") {
                break;
            }
            if let Some((count, _)) = line.trim_start().split_once(" file")
                && line.contains(" changed")
            {
                stat_files = count.parse::<usize>().ok();
            }
            lines.next();
        }
        let files = parse_diff(lines)?;
        if files.is_empty() {
            bail!("the patch changes no file (no `diff --git` section)");
        }
        if let Some(expected) = stat_files.filter(|n| *n != files.len()) {
            bail!(
                "the diffstat says {expected} file(s) changed, but the patch has {} `diff --git` section(s): \
                 it was cut short or edited by hand; write it again from the commit (`patchq refresh`)",
                files.len()
            );
        }
        Ok(PatchFile { subject, body, files })
    }

    pub fn meta(&self) -> Result<PatchMeta> {
        PatchMeta::from_message(&self.body)
    }

    /// Every path the patch reads or writes (both sides of a rename).
    pub fn touched_paths(&self) -> impl Iterator<Item = &str> {
        self.files.iter().flat_map(|f| std::iter::once(f.path.as_str()).chain(f.old_path.as_deref()))
    }
}

/// The patch as `patchq diff` compares versions of it: subject, author,
/// message and diff, without what changes when nothing does (commit id,
/// date, diffstat, blob ids, hunk line numbers), like `git range-diff`.
pub fn normalized(text: &str) -> String {
    let (headers, rest) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut out = String::new();
    if let Some(subject) = mail_subject(headers) {
        out.push_str(&format!("Subject: {subject}\n"));
    }
    if let Some(author) = headers.lines().find_map(|l| l.strip_prefix("From: ")) {
        out.push_str(&format!("Author: {author}\n"));
    }
    out.push('\n');
    let mut in_stat = false;
    let mut in_diff = false;
    for line in rest.lines() {
        if line.starts_with("diff --git ") {
            in_diff = true;
            in_stat = false;
        } else if !in_diff && line == "---" {
            in_stat = true;
            continue;
        }
        if in_stat || (in_diff && line.starts_with("index ")) {
            continue;
        }
        if in_diff && line == "-- " {
            break; // git's version signature
        }
        match line.strip_prefix("@@ ").and_then(|l| l.split_once(" @@")) {
            Some((_, context)) if in_diff => out.push_str(&format!("@@{context}\n")),
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The `Subject:` header with `[PATCH …]` removed and folded lines joined.
fn mail_subject(headers: &str) -> Option<String> {
    let mut lines = headers.lines();
    let first = lines.find(|l| l.starts_with("Subject: "))?;
    let mut subject = first["Subject: ".len()..].to_owned();
    for cont in lines.take_while(|l| l.starts_with(' ') || l.starts_with('\t')) {
        subject.push(' ');
        subject.push_str(cont.trim());
    }
    let subject = subject.trim();
    let subject = match subject.strip_prefix("[PATCH") {
        Some(rest) => rest.split_once(']').map_or(rest, |(_, s)| s).trim(),
        None => subject,
    };
    Some(subject.to_owned())
}

fn parse_diff<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<FileChange>> {
    let mut files: Vec<FileChange> = Vec::new();
    // Lines the current hunk still owes, old side and new side.
    let mut owed = (0u32, 0u32);
    for line in lines {
        if owed != (0, 0) {
            match line.chars().next() {
                Some('\\') => continue,
                Some('-') => owed.0 = owed.0.saturating_sub(1),
                Some('+') => owed.1 = owed.1.saturating_sub(1),
                Some(' ') | None => owed = (owed.0.saturating_sub(1), owed.1.saturating_sub(1)),
                _ => bail!(
                    "{}: the hunk `{}` ends early: the file was cut short or edited by hand",
                    files.last().map_or("?", |f| f.path.as_str()),
                    files.last().and_then(|f| f.hunks.last()).map_or("?", String::as_str)
                ),
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("diff --git ") {
            // `a/X b/X`; paths with spaces are rare in rust-lang/rust and a
            // rename line below corrects `old_path` when present.
            let path = rest.rsplit_once(" b/").map_or(rest, |(_, b)| b).to_owned();
            files.push(FileChange { path, old_path: None, kind: ChangeKind::Modified, hunks: vec![] });
            continue;
        }
        let Some(file) = files.last_mut() else { continue };
        if line.starts_with("new file mode ") {
            file.kind = ChangeKind::Added;
        } else if line.starts_with("deleted file mode ") {
            file.kind = ChangeKind::Deleted;
        } else if let Some(old) = line.strip_prefix("rename from ") {
            file.old_path = Some(old.to_owned());
        } else if line.starts_with("@@ ") {
            owed = hunk_lengths(line).unwrap_or((0, 0));
            file.hunks.push(line.to_owned());
        }
    }
    if owed != (0, 0) {
        let file = files.last().expect("a hunk belongs to a file");
        bail!(
            "{}: the hunk `{}` ends early: the file was cut short or edited by hand",
            file.path,
            file.hunks.last().map_or("?", String::as_str)
        );
    }
    Ok(files)
}

/// The old and new line counts of a hunk header (`@@ -a,b +c,d @@`; a
/// missing count is 1).
fn hunk_lengths(header: &str) -> Option<(u32, u32)> {
    let mut ranges = header.strip_prefix("@@ -")?.split(' ');
    let count = |range: &str| -> Option<u32> {
        match range.split_once(',') {
            Some((_, n)) => n.parse().ok(),
            None => Some(1),
        }
    };
    let old = count(ranges.next()?)?;
    let new = count(ranges.next()?.strip_prefix('+')?)?;
    Some((old, new))
}

pub fn hunk_old_start(header: &str) -> Option<u32> {
    let old = header.strip_prefix("@@ -")?.split([',', ' ']).next()?;
    old.parse().ok()
}

/// The fork's per-patch metadata, read from the message trailers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchMeta {
    pub topic: String,
    pub upstream: Option<IssueRef>,
    /// The title of the upstream pull request, which [`pr_title_problems`]
    /// allows only on its first patch.
    pub pr_title: Option<String>,
    pub fixes: Vec<IssueRef>,
    pub tracking: Vec<IssueRef>,
    pub status: Status,
    pub depends_on: Vec<String>,
}

/// `owner/repo#number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRef {
    pub repo: String,
    pub number: u32,
}

impl IssueRef {
    pub fn parse(text: &str) -> Result<IssueRef> {
        let text = text.trim();
        let parsed = text.split_once('#').and_then(|(repo, num)| {
            let repo_ok = repo.split('/').count() == 2 && !repo.starts_with('/') && !repo.ends_with('/');
            Some(IssueRef { repo: repo.to_owned(), number: num.parse().ok().filter(|_| repo_ok)? })
        });
        match parsed {
            Some(r) => Ok(r),
            None => bail!("`{text}` is not an issue reference like `rust-lang/rust#12345`"),
        }
    }
}

impl fmt::Display for IssueRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.repo, self.number)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    NotForwarded,
    Open,
    MergedIn(String),
    Closed,
    ForkOnly,
}

impl Status {
    pub const CHOICES: &str = "not-forwarded, open, merged-in <version>, closed, fork-only";

    pub fn parse(text: &str) -> Result<Status> {
        let text = text.trim();
        Ok(match text {
            "not-forwarded" => Status::NotForwarded,
            "open" => Status::Open,
            "closed" => Status::Closed,
            "fork-only" => Status::ForkOnly,
            _ => match text.strip_prefix("merged-in ") {
                Some(version)
                    if !version.is_empty()
                        && version.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) =>
                {
                    Status::MergedIn(version.to_owned())
                }
                _ => bail!("`Status: {text}` is not one of: {}", Status::CHOICES),
            },
        })
    }

    /// The state without its version, for totals.
    pub fn kind(&self) -> &'static str {
        match self {
            Status::NotForwarded => "not-forwarded",
            Status::Open => "open",
            Status::MergedIn(_) => "merged",
            Status::Closed => "closed",
            Status::ForkOnly => "fork-only",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::MergedIn(v) => write!(f, "merged-in {v}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// Trailers git and rust-lang use that may stand beside the fork's own.
const OTHER_TRAILERS: [&str; 8] =
    ["Signed-off-by", "Co-authored-by", "Reviewed-by", "Acked-by", "Tested-by", "Reported-by", "Suggested-by", "Cc"];

impl PatchMeta {
    /// Reads the trailer block: the last paragraph of the message.
    pub fn from_message(message: &str) -> Result<PatchMeta> {
        let paragraph = message.trim_end().rsplit("\n\n").next().unwrap_or("");
        let mut topic = None;
        let mut upstream = None;
        let mut pr_title = None;
        let mut status = None;
        let mut fixes = Vec::new();
        let mut tracking = Vec::new();
        let mut depends_on = Vec::new();
        let mut previous_key = None;
        for line in paragraph.lines() {
            // git would read an indented line as the previous trailer's
            // continuation; the fork's trailers are one line each.
            if let (Some(key), true) = (previous_key, line.starts_with([' ', '\t'])) {
                bail!("trailer `{key}:` goes on over a second line (`{}`): each trailer is one line", line.trim());
            }
            // `Key:` with nothing after it is a trailer too, with an empty value.
            let split = line.split_once(": ").or_else(|| Some((line.strip_suffix(':')?, "")));
            let Some((key, value)) = split.filter(|(key, _)| !key.is_empty() && !key.contains(' ')) else {
                bail!(
                    "the message does not end in a trailer block (`Key: value` lines): \
                     `{line}` in its last paragraph is not a trailer"
                );
            };
            previous_key = Some(key);
            let value = value.trim();
            match key {
                "Topic" => {
                    if value.is_empty() || !value.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                        bail!("`Topic: {value}` must be a lowercase word like `codegen` or `llvm-ffi`");
                    }
                    set_once(&mut topic, key, value.to_owned())?;
                }
                "Upstream" => {
                    let parsed = if value == "none" { None } else { Some(IssueRef::parse(value)?) };
                    set_once(&mut upstream, key, parsed)?;
                }
                "Pr-title" => {
                    if value.is_empty() {
                        bail!("`Pr-title:` is empty: it names the upstream pull request");
                    }
                    set_once(&mut pr_title, key, value.to_owned())?;
                }
                "Status" => set_once(&mut status, key, Status::parse(value)?)?,
                "Fixes" => fixes.extend(list(value).map(IssueRef::parse).collect::<Result<Vec<_>>>()?),
                "Tracking" => tracking.extend(list(value).map(IssueRef::parse).collect::<Result<Vec<_>>>()?),
                "Depends-on" => {
                    for name in list(value) {
                        if let Err(why) = crate::series::check_patch_name(name) {
                            bail!("`Depends-on: {name}`: {name} {why}");
                        }
                        depends_on.push(name.to_owned());
                    }
                }
                other if OTHER_TRAILERS.contains(&other) => {}
                other => bail!("unknown trailer `{other}:` (the fork's are {})", FORK_TRAILERS.join(", ")),
            }
        }
        let missing = |key: &str| anyhow::anyhow!("missing trailer `{key}:` (see docs/PATCHES.md)");
        let topic = topic.ok_or_else(|| missing("Topic"))?;
        let upstream = upstream.ok_or_else(|| missing("Upstream"))?;
        let status = status.ok_or_else(|| missing("Status"))?;
        match (&upstream, &status) {
            (None, s) if *s != Status::ForkOnly => {
                bail!("`Upstream: none` goes with `Status: fork-only`, not `Status: {s}`")
            }
            (Some(pr), Status::ForkOnly) => {
                bail!("`Status: fork-only` but `Upstream: {pr}`: a fork-only patch has `Upstream: none`")
            }
            _ => {}
        }
        if upstream.is_none() && pr_title.is_some() {
            bail!("`Pr-title:` on a fork-only patch (`Upstream: none`): there is no pull request to name");
        }
        Ok(PatchMeta { topic, upstream, pr_title, fixes, tracking, status, depends_on })
    }
}

/// The rules of `Pr-title:` that span patches: a pull request (the patches
/// with the same `Upstream:`) is named on its first patch in series order
/// and on no other, and must be named when it has more than one patch, as
/// no single patch's subject says what all of them do.
/// `patches`: name and trailers of each patch, in series order.
pub fn pr_title_problems(patches: &[(&str, &PatchMeta)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut prs: Vec<(&IssueRef, Vec<(&str, &PatchMeta)>)> = Vec::new();
    for &(name, meta) in patches {
        let Some(upstream) = &meta.upstream else { continue };
        match prs.iter_mut().find(|(pr, _)| *pr == upstream) {
            Some((_, members)) => members.push((name, meta)),
            None => prs.push((upstream, vec![(name, meta)])),
        }
    }
    for (upstream, members) in &prs {
        let (first, first_meta) = members[0];
        for (name, _) in members[1..].iter().filter(|(_, meta)| meta.pr_title.is_some()) {
            problems.push(format!(
                "{name}: `Pr-title:` belongs on the first patch of {upstream}, {first}, not on a later one"
            ));
        }
        if members.len() > 1 && first_meta.pr_title.is_none() {
            let names: Vec<&str> = members.iter().map(|(name, _)| *name).collect();
            problems.push(format!(
                "{first}: first of the {} patches of {upstream} ({}): it needs a `Pr-title:` trailer \
                 naming the pull request, which no one patch's subject does",
                members.len(),
                names.join(", ")
            ));
        }
    }
    problems
}

/// The trailer keys that belong to the fork, not to upstream.
pub const FORK_TRAILERS: [&str; 7] = ["Topic", "Upstream", "Pr-title", "Fixes", "Tracking", "Status", "Depends-on"];

/// A commit message as upstream should see it: the fork's trailers
/// removed, other trailers (`Co-authored-by:` …) kept.
pub fn strip_fork_trailers(message: &str) -> String {
    let message = message.trim_end();
    let (prose, last) = match message.rsplit_once("\n\n") {
        Some(split) => split,
        None => return format!("{message}\n"),
    };
    let is_trailer = |l: &str| l.split_once(": ").is_some_and(|(k, _)| !k.is_empty() && !k.contains(' '));
    if !last.lines().all(is_trailer) {
        return format!("{message}\n");
    }
    let kept: Vec<&str> = last
        .lines()
        .filter(|l| !FORK_TRAILERS.iter().any(|k| l.split_once(": ").is_some_and(|(key, _)| key == *k)))
        .collect();
    if kept.is_empty() { format!("{prose}\n") } else { format!("{prose}\n\n{}\n", kept.join("\n")) }
}

/// What a pull-request description takes from a patch message body: the
/// prose (trailers removed), and its `r? …` / `cc …` lines, which go last.
pub fn description_parts(body: &str) -> (String, Vec<String>) {
    let stripped = strip_fork_trailers(&format!("subject\n\n{body}"));
    let prose = stripped.split_once("\n\n").map_or("", |(_, rest)| rest);
    let mut pings = Vec::new();
    let mut kept = Vec::new();
    for line in prose.lines() {
        if line.starts_with("r? ") || line.starts_with("cc @") || line.starts_with("cc rust-lang/") {
            pings.push(line.trim().to_owned());
        } else {
            kept.push(line);
        }
    }
    let text = kept.join("\n");
    // Collapse the blank lines a removed ping may leave behind.
    let mut out = String::new();
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(para);
    }
    (out, pings)
}

fn set_once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<()> {
    if slot.replace(value).is_some() {
        bail!("trailer `{key}:` appears twice");
    }
    Ok(())
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SAMPLE: &str = "\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: A U Thor <author@example.com>
Date: Mon, 17 Feb 2025 10:00:00 +0100
Subject: [PATCH] codegen: emit `getelementptr inbounds nuw` for
 `pointer::add`

Why it matters.

Topic: codegen
Upstream: rust-lang/rust#137271
Fixes: rust-lang/rust#137217
Status: merged-in 1.87
---
 compiler/x.rs        | 2 +-
 tests/codegen/new.rs | 1 +
 2 files changed, 2 insertions(+), 1 deletion(-)

diff --git a/compiler/x.rs b/compiler/x.rs
index 111111111111..222222222222 100644
--- a/compiler/x.rs
+++ b/compiler/x.rs
@@ -10,7 +10,7 @@ fn f() {
-old
+new
 ctx 1
 ctx 2
 ctx 3
 ctx 4
 ctx 5
 ctx 6
diff --git a/tests/codegen/new.rs b/tests/codegen/new.rs
new file mode 100644
index 000000000000..333333333333
--- /dev/null
+++ b/tests/codegen/new.rs
@@ -0,0 +1 @@
+// test
";

    #[test]
    fn parses_subject_body_files_and_trailers() {
        let p = PatchFile::parse(SAMPLE).unwrap();
        assert_eq!(p.subject, "codegen: emit `getelementptr inbounds nuw` for `pointer::add`");
        assert!(p.body.starts_with("Why it matters."));
        assert_eq!(p.files.len(), 2);
        assert_eq!(p.files[0].kind, ChangeKind::Modified);
        assert_eq!(p.files[0].hunks, ["@@ -10,7 +10,7 @@ fn f() {"]);
        assert_eq!(p.files[1].path, "tests/codegen/new.rs");
        assert_eq!(p.files[1].kind, ChangeKind::Added);
        let meta = p.meta().unwrap();
        assert_eq!(meta.topic, "codegen");
        assert_eq!(meta.upstream.unwrap().to_string(), "rust-lang/rust#137271");
        assert_eq!(meta.fixes[0].number, 137217);
        assert_eq!(meta.status, Status::MergedIn("1.87".into()));
    }

    #[test]
    fn hunk_start_lines() {
        assert_eq!(hunk_old_start("@@ -120,7 +121,8 @@ fn f()"), Some(120));
        assert_eq!(hunk_old_start("@@ -5 +5 @@"), Some(5));
        assert_eq!(hunk_old_start("garbage"), None);
    }

    fn meta_err(trailers: &str) -> String {
        PatchMeta::from_message(&format!("Subject line\n\nBody.\n\n{trailers}")).unwrap_err().to_string()
    }

    #[test]
    fn trailer_errors_say_what_is_wrong() {
        assert_eq!(meta_err("Upstream: none\nStatus: fork-only"), "missing trailer `Topic:` (see docs/PATCHES.md)");
        assert!(meta_err("Topic: x\nUpstream: 12345\nStatus: open").contains("`12345` is not an issue reference"));
        assert!(meta_err("Topic: x\nUpstream: none\nStatus: open").contains("goes with `Status: fork-only`"));
        assert!(
            meta_err("Topic: x\nUpstream: a/b#1\nStatus: fork-only").contains("a fork-only patch has `Upstream: none`")
        );
        assert!(meta_err("Topic: x\nUpstream: a/b#1\nStatus: merged").contains("is not one of"));
        assert!(meta_err("Topic: x\nTopci: y\nUpstream: a/b#1\nStatus: open").contains("unknown trailer `Topci:`"));
        assert!(meta_err("Topic: x\nTopic: y\nUpstream: a/b#1\nStatus: open").contains("appears twice"));
        assert!(meta_err("Just prose at the end.").contains("does not end in a trailer block"));
    }

    fn meta(trailers: &str) -> PatchMeta {
        PatchMeta::from_message(&format!("Subject line\n\nBody.\n\n{trailers}")).unwrap()
    }

    #[test]
    fn pr_title_is_one_non_empty_line_on_a_patch_with_a_pr() {
        let pr = "Topic: x\nUpstream: a/b#1\nStatus: open";
        assert_eq!(
            meta(&format!("{pr}\nPr-title: cg_llvm: all of it")).pr_title.as_deref(),
            Some("cg_llvm: all of it")
        );
        assert_eq!(meta(pr).pr_title, None);
        assert!(meta_err(&format!("{pr}\nPr-title:")).contains("`Pr-title:` is empty"));
        assert!(meta_err(&format!("{pr}\nPr-title:   ")).contains("`Pr-title:` is empty"));
        assert!(meta_err(&format!("{pr}\nPr-title: a\nPr-title: b")).contains("`Pr-title:` appears twice"));
        assert_eq!(
            meta_err(&format!("{pr}\nPr-title: cg_llvm: a title\n  that goes on")),
            "trailer `Pr-title:` goes on over a second line (`that goes on`): each trailer is one line"
        );
        assert!(
            meta_err("Topic: x\nUpstream: none\nStatus: fork-only\nPr-title: t").contains("on a fork-only patch"),
            "a fork-only patch has no pull request to name"
        );
    }

    #[test]
    fn pr_title_names_a_pr_of_several_patches_on_its_first() {
        let pr = |n: u32, title: Option<&str>| {
            let title = title.map_or(String::new(), |t| format!("\nPr-title: {t}"));
            meta(&format!("Topic: x\nUpstream: a/b#{n}\nStatus: open{title}"))
        };
        let fork_only = meta("Topic: x\nUpstream: none\nStatus: fork-only");
        let (one, one_titled, two, two_titled) = (pr(1, None), pr(1, Some("t")), pr(2, None), pr(2, Some("t")));

        // Single-patch PRs may have a title or not; fork-only patches have no PR.
        assert!(pr_title_problems(&[("a", &one), ("b", &two_titled), ("c", &fork_only)]).is_empty());
        // Several patches, named on the first (other PRs in between): fine.
        assert!(pr_title_problems(&[("a", &one_titled), ("b", &two), ("c", &one), ("d", &one)]).is_empty());

        assert_eq!(
            pr_title_problems(&[("a", &one), ("b", &two), ("c", &one)]),
            ["a: first of the 2 patches of a/b#1 (a, c): it needs a `Pr-title:` trailer naming the pull \
              request, which no one patch's subject does"]
        );
        assert_eq!(
            pr_title_problems(&[("a", &one_titled), ("b", &one_titled)]),
            ["b: `Pr-title:` belongs on the first patch of a/b#1, a, not on a later one"]
        );
        let problems = pr_title_problems(&[("a", &one), ("b", &one_titled)]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("b: `Pr-title:` belongs on the first patch")
                && problems[1].starts_with("a: first of")
        );
    }

    #[test]
    fn upstream_messages_lose_only_the_forks_trailers() {
        let msg = "subject\n\nWhy.\n\nr? @nikic\n\nTopic: codegen\nUpstream: a/b#1\nPr-title: t\nCo-authored-by: X <x@y>\nStatus: open\n";
        assert_eq!(strip_fork_trailers(msg), "subject\n\nWhy.\n\nr? @nikic\n\nCo-authored-by: X <x@y>\n");
        assert_eq!(strip_fork_trailers("subject\n\nWhy.\n\nTopic: x\nStatus: open"), "subject\n\nWhy.\n");
        assert_eq!(strip_fork_trailers("subject\n\nJust prose: here."), "subject\n\nJust prose: here.\n");
        let (prose, pings) =
            description_parts("Why.\n\nr? @nikic\ncc @workingjubilee\n\nMore.\n\nTopic: x\nStatus: open");
        assert_eq!(prose, "Why.\n\nMore.");
        assert_eq!(pings, ["r? @nikic", "cc @workingjubilee"]);
    }

    #[test]
    fn normalized_patches_drop_ids_stats_and_line_numbers() {
        let moved = SAMPLE.replace("@@ -10,7 +10,7 @@", "@@ -12,7 +12,7 @@").replace("111111111111", "999999999999");
        assert_eq!(normalized(SAMPLE), normalized(&moved));
        let text = normalized(SAMPLE);
        assert!(
            text.starts_with(
                "Subject: codegen: emit `getelementptr inbounds nuw` for `pointer::add`\nAuthor: A U Thor"
            ),
            "{text}"
        );
        assert!(text.contains("\n@@ fn f() {\n-old\n+new\n"), "{text}");
        assert!(!text.contains("files changed") && !text.contains("index "), "{text}");
        assert_ne!(normalized(SAMPLE), normalized(&SAMPLE.replace("+new", "+newer")));
    }

    #[test]
    fn conflict_markers_in_added_lines_are_found() {
        let diff = "diff --git a/x.rs b/x.rs\n--- a/x.rs\n+++ b/x.rs\n@@ -1 +1,5 @@\n\
                    +<<<<<<< ours\n+a\n+=======\n+b\n+>>>>>>> theirs\n\
                    diff --git a/y.rs b/y.rs\n--- a/y.rs\n+++ b/y.rs\n@@ -1 +1 @@\n-<<<<<<< old\n+fine\n";
        assert_eq!(conflict_marker_files(diff), ["x.rs"]);
        assert!(conflict_marker_files("diff --git a/z b/z\n+====== not one\n+<<<<<<<<< eight\n").is_empty());
    }

    #[test]
    fn a_patch_cut_short_is_named() {
        let two = SAMPLE.replace(
            " 2 files changed, 2 insertions(+), 1 deletion(-)",
            " 3 files changed, 3 insertions(+), 1 deletion(-)",
        );
        let err = PatchFile::parse(&two).unwrap_err().to_string();
        assert!(err.contains("the diffstat says 3 file(s) changed, but the patch has 2"), "{err}");
        let cut = &SAMPLE[..SAMPLE.find(" ctx 4").unwrap()];
        let err = PatchFile::parse(cut).unwrap_err().to_string();
        assert!(err.contains("the hunk `@@ -10,7 +10,7 @@ fn f() {` ends early"), "{err}");
    }

    #[test]
    fn not_a_patch_is_named() {
        assert!(PatchFile::parse("hello\n").unwrap_err().to_string().contains("not a `git format-patch` file"));
    }
}
