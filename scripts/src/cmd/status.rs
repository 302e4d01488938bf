//! `patchq status`: the series as a table (topic, upstream PR, state, and
//! whether the work tree has each patch), totals by upstream state, and
//! whether the work tree is up to date.

use std::collections::BTreeMap;

use anyhow::Result;

use super::Ctx;
use crate::ui;
use crate::worktree::{WorkTree, short};

pub fn run(ctx: &Ctx) -> Result<()> {
    let queue = ctx.queue()?;
    let tree = WorkTree::open_as_is(&ctx.tree)?;
    let header = |key| queue.series.header_value(key).unwrap_or("(not recorded)");
    ui::out(format!("base: Rust {} ({}), {}", header("base-version"), header("base-commit"), header("base-source")));
    let applied = tree.as_ref().map_or(&[][..], |t| &t.state.patches[..]);

    let mut rows =
        vec![["#".to_owned(), "patch".into(), "topic".into(), "upstream".into(), "status".into(), "work tree".into()]];
    let mut totals: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut in_sync = true;
    for (i, patch) in queue.patches.iter().enumerate() {
        let (topic, upstream, status) = match patch.file.meta() {
            Ok(meta) => {
                *totals.entry(meta.status.kind()).or_default() += 1;
                let upstream = meta.upstream.map_or("none".to_owned(), |u| u.to_string());
                (meta.topic, upstream, meta.status.to_string())
            }
            Err(_) => {
                *totals.entry("invalid").or_default() += 1;
                ("?".into(), "?".into(), "invalid trailers (patchq check)".into())
            }
        };
        let here = match applied.get(i) {
            Some(a) if a.name == patch.name && a.hash == patch.hash => "applied",
            Some(a) if a.name == patch.name => "changed",
            _ => "not applied",
        };
        in_sync &= here == "applied";
        rows.push([(i + 1).to_string(), patch.name.clone(), topic, upstream, status, here.to_owned()]);
    }
    print_table(&rows);
    let totals: Vec<String> = totals.iter().map(|(k, n)| format!("{n} {k}")).collect();
    ui::out(format!(
        "totals: {} patches: {}",
        queue.patches.len(),
        if totals.is_empty() { "none".into() } else { totals.join(", ") }
    ));

    let line = match &tree {
        None => format!("work tree {}: not created yet (`patchq apply` or `patchq build`)", ctx.tree.display()),
        Some(tree) => {
            let head = tree.git.head()?;
            let dirty = tree.git.dirty_files()?.len();
            if crate::worktree::journal_path(&tree.path).is_file() {
                format!(
                    "work tree {}: a patchq run was interrupted while moving it; the next command \
                     (`patchq apply`) completes that step",
                    tree.path.display()
                )
            } else if crate::worktree::rebase_state_path(&tree.path).is_file() {
                format!(
                    "work tree {}: a `patchq rebase` is in progress: resolve the conflict, `git add`, then \
                     `patchq rebase --continue`; or `patchq rebase --abort`",
                    tree.path.display()
                )
            } else if let Some(from) = &tree.state.rebased_from {
                format!(
                    "work tree {}: rebased from {from}; `patchq refresh` writes the moved patches into patches/",
                    tree.path.display()
                )
            } else if head != tree.state.head() {
                format!("work tree {}: has commits not in patches/ (`patchq refresh` saves them)", tree.path.display())
            } else if !in_sync || applied.len() != queue.patches.len() {
                format!("work tree {}: behind the queue (`patchq apply` updates it)", tree.path.display())
            } else if dirty > 0 {
                format!(
                    "work tree {}: up to date at {}, with {dirty} uncommitted file(s)",
                    tree.path.display(),
                    short(&head)
                )
            } else {
                format!("work tree {}: up to date with the queue at {}", tree.path.display(), short(&head))
            }
        }
    };
    ui::out(line);
    Ok(())
}

fn print_table(rows: &[[String; 6]]) {
    let widths: Vec<usize> = (0..6).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        ui::out(cells.join("  ").trim_end());
    }
}
