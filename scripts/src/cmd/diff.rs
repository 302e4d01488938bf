//! `patchq diff <rev>`: what changed in the series since an earlier
//! version of it (a tag or commit of the fork's repository), patch by
//! patch, the way `git range-diff` shows it.
//!
//! Versions are compared as patch files, not as commits on a base: each
//! patch is normalized (no commit id, date, diffstat, blob ids or hunk line
//! numbers) and the two normalized texts are diffed. So a series whose base
//! moved still shows only what its patches changed. Patches are matched by
//! file name (names are stable), then by subject.

use anyhow::{Context, Result, bail};

use super::Ctx;
use crate::git::{self, Git};
use crate::patch::normalized;
use crate::queue::SERIES_FILE;
use crate::series::Series;
use crate::ui;

/// A version of the series: (name, normalized text, subject) per patch.
struct Version {
    series: Series,
    patches: Vec<(String, String, String)>,
}

pub fn run(ctx: &Ctx, rev: &str) -> Result<()> {
    let repo = Git::open(&ctx.loaded.root);
    if !repo.is_in_repo()? {
        bail!("{} is not a git repository: `patchq diff` compares with versions of it", ctx.loaded.root.display());
    }
    let commit =
        repo.rev_parse(rev)?.with_context(|| format!("`{rev}` is not a commit or tag of the fork's repository"))?;
    let old = old_version(&repo, &commit, rev)?;
    let queue = ctx.queue()?;
    let mut patches = Vec::new();
    for p in &queue.patches {
        patches.push((p.name.clone(), normalized(&fs_err::read_to_string(&p.path)?), p.file.subject.clone()));
    }
    let new = Version { series: queue.series.clone(), patches };
    ui::out(render(&old, &new, rev)?);
    Ok(())
}

fn old_version(repo: &Git, commit: &str, rev: &str) -> Result<Version> {
    // `rev:./path` is relative to the directory git runs in: the fork's root.
    let text = repo
        .show_file(commit, &format!("./patches/{SERIES_FILE}"))?
        .with_context(|| format!("`{rev}` has no patches/{SERIES_FILE}"))?;
    let series = Series::parse(&text).with_context(|| format!("patches/{SERIES_FILE} at `{rev}`"))?;
    let mut patches = Vec::new();
    for name in &series.patches {
        let text = repo
            .show_file(commit, &format!("./patches/{name}"))?
            .with_context(|| format!("`{rev}`: the series lists {name}, but patches/{name} is missing there"))?;
        let subject = crate::patch::PatchFile::parse(&text).map(|p| p.subject).unwrap_or_default();
        patches.push((name.clone(), normalized(&text), subject));
    }
    Ok(Version { series, patches })
}

/// The report: the base line, then one line per patch in the new order
/// (`=` same, `!` changed with the diff of the patch indented, `>` new),
/// then the patches that are gone (`<`), then totals.
fn render(old: &Version, new: &Version, rev: &str) -> Result<String> {
    let mut out = Vec::new();
    let describe = |s: &Series| match s.base() {
        Some(b) => {
            format!("Rust {} ({})", b.version, b.commit.as_deref().map_or("commit unknown", |c| &c[..c.len().min(12)]))
        }
        None => "not recorded".to_owned(),
    };
    let (old_base, new_base) = (describe(&old.series), describe(&new.series));
    if old_base == new_base {
        out.push(format!("base: {new_base}, unchanged since {rev}"));
    } else {
        out.push(format!("base: {old_base} at {rev} → {new_base} now"));
    }

    let width = old.patches.len().max(new.patches.len()).to_string().len();
    let num = |i: Option<usize>| i.map_or_else(|| "-".repeat(width), |i| format!("{:>width$}", i + 1));
    let mut matched = vec![false; old.patches.len()];
    let (mut same, mut changed, mut added) = (0, 0, 0);
    for (j, (name, text, subject)) in new.patches.iter().enumerate() {
        let i = old
            .patches
            .iter()
            .position(|(n, _, _)| n == name)
            .or_else(|| old.patches.iter().enumerate().position(|(k, (_, _, s))| !matched[k] && s == subject));
        let Some(i) = i.filter(|&i| !matched[i]) else {
            added += 1;
            out.push(format!("{}: {} > {}: {name}", num(None), "-".repeat(name.len().min(20)), num(Some(j))));
            continue;
        };
        matched[i] = true;
        let (old_name, old_text, _) = &old.patches[i];
        if old_text == text {
            same += 1;
            out.push(format!("{}: {old_name} = {}: {name}", num(Some(i)), num(Some(j))));
        } else {
            changed += 1;
            out.push(format!("{}: {old_name} ! {}: {name}", num(Some(i)), num(Some(j))));
            for line in git::diff_texts(old_text, text)?.lines() {
                out.push(format!("    {line}"));
            }
        }
    }
    let mut dropped = 0;
    for (i, (name, _, _)) in old.patches.iter().enumerate().filter(|(i, _)| !matched[*i]) {
        dropped += 1;
        out.push(format!("{}: {name} < {}: {}", num(Some(i)), num(None), "-".repeat(name.len().min(20))));
    }
    out.push(format!("{same} unchanged, {changed} changed, {added} added, {dropped} dropped since {rev}"));
    Ok(out.join("\n"))
}
