//! `patchq apply`: bring the work tree up to date with base + overlay +
//! series, re-applying only from the first patch that changed.

use anyhow::Result;

use super::{BaseArgs, Ctx};
use crate::ui;
use crate::worktree::{SyncReport, WorkTree};

pub fn run(ctx: &Ctx, base: &BaseArgs) -> Result<()> {
    let _lock = ctx.lock()?;
    let (mut tree, _) = ctx.open_or_create_tree(base.source()?, base.allow_other_base)?;
    sync(ctx, &mut tree)?;
    Ok(())
}

/// Applies the queue on disk to an open work tree, with a one-line summary.
pub fn sync(ctx: &Ctx, tree: &mut WorkTree) -> Result<SyncReport> {
    let queue = ctx.queue()?;
    let overlay = ctx.overlay()?;
    let phase = ui::phase(format!("applying {} patches to {}", queue.patches.len(), tree.path.display()));
    let report = tree.sync(&overlay, &queue, ctx.base_date())?;
    phase.done(format!("{} kept, {} applied, {} files rewritten", report.kept, report.applied, report.files_rewritten));
    Ok(report)
}
