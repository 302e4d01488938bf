//! `patchq build`: the main job, from nothing to a linked stage1 toolchain.
//!
//! host packages → base (cached download) → work tree and queue → stage0 →
//! config.toml → `x.py build --stage 1 library` → `rustup toolchain link`
//! → a cargo for the toolchain → smoke test.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::{BaseArgs, Ctx};
use crate::base::Stage0;
use crate::xpy::{self, XPy};
use crate::{host, toolchain, ui};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub base: BaseArgs,
    /// A checkout of EnzymeAD/Enzyme: sets `llvm.enzyme = true` and places it
    /// at src/tools/enzyme so bootstrap builds libEnzyme against LLVM 19.
    #[arg(long, value_name = "PATH")]
    pub enzyme: Option<PathBuf>,
    /// Stop after the stage1 build: no `rustup toolchain link`, no smoke test.
    #[arg(long)]
    pub no_link: bool,
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<()> {
    let _lock = ctx.lock()?;
    let cfg = &ctx.loaded.config;

    host::ensure_phase()?;

    let (mut tree, _) = ctx.open_or_create_tree(args.base.source()?)?;
    super::apply::sync(ctx, &mut tree)?;
    let queue = ctx.queue()?;

    let phase = ui::phase("stage0");
    Stage0::read(&tree.path)?.install(&cfg.base, &ctx.cache, &tree.path)?;
    phase.done("verified against src/stage0");

    let enzyme = args.enzyme.clone().or_else(|| cfg.enzyme.path.clone());
    if let Some(enzyme) = &enzyme {
        bail!(
            "--enzyme {}: building with Enzyme needs the autodiff patches of the queue \
             (SERIES.md #7–#11), which are not in the series yet",
            enzyme.display()
        );
    }
    let n = queue.patches.len();
    let description = format!(
        "patchq fork of Rust {} + {n} patch{}, queue {}",
        cfg.base.version,
        if n == 1 { "" } else { "es" },
        queue.fingerprint()
    );
    let phase = ui::phase("config.toml");
    let changed = xpy::write_config(&ctx.loaded.config_template(), &tree.path, &description, false)?;
    phase.done(if changed { "written" } else { "unchanged" });

    let phase = ui::phase("x.py build --stage 1 library");
    XPy::new(&tree.path).run(&["build", "--stage", "1", "library"])?;
    phase.done(format!("stage1 in {}", toolchain::stage1_dir(&tree.path).display()));

    if args.no_link {
        return Ok(());
    }
    let name = &cfg.toolchain.name;
    let phase = ui::phase(format!("rustup toolchain link {name}"));
    toolchain::link(name, &tree.path)?;
    let cargo = toolchain::provide_cargo(&tree.path)?;
    phase.done(format!("linked; cargo is the stage0 {cargo}"));

    let phase = ui::phase("smoke test");
    let version = toolchain::smoke_test(name, &description)?;
    phase.done(version);
    Ok(())
}
