//! patchq: keeps the patch-series fork of rustc alive.
//!
//! This file only parses the command line and dispatches; each subcommand
//! lives in `cmd/`. See ARCHITECTURE.md for the flow and the invariants.

mod base;
mod checkset;
mod cmd;
mod config;
mod exit;
mod git;
mod host;
mod patch;
mod process;
mod queue;
mod scratch;
mod series;
mod stack;
mod targets;
mod toolchain;
mod ui;
mod worktree;
mod xpy;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Keeps the patch-series fork of rustc: base → overlay → queue → stage1 → tests")]
struct Cli {
    /// The work tree to use instead of [work-tree] path (also: PATCHQ_WORK_TREE).
    #[arg(long, global = true, value_name = "PATH")]
    work_tree: Option<PathBuf>,
    /// Fail at once if another patchq is working on the same tree, instead of waiting.
    #[arg(long, global = true)]
    no_wait: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The main job: host packages, base, work tree + queue, stage1, rustup link, smoke test.
    Build(cmd::build::Args),
    /// Bring the work tree up to date with base + overlay + series (incrementally).
    Apply(cmd::BaseArgs),
    /// Write patches/ from the work tree's commits.
    Refresh {
        /// Write nothing; fail if patches/ is out of date.
        #[arg(long)]
        check: bool,
        /// Overwrite patch files that are not applied yet or were edited by hand (exit 7 without).
        #[arg(long, conflicts_with = "check")]
        force: bool,
    },
    /// Check the queue without building it (series, trailers, clean application).
    Check {
        /// Also run `x.py check` of the compiler on every prefix of the queue.
        #[arg(long)]
        build_each: bool,
    },
    /// Run compiletest on the stage1 compiler: the patches' tests, tests/codegen, touched tests/ui dirs.
    Test,
    /// Show the series: topic, upstream PR, state, and whether the work tree has it.
    Status,
    /// Make a git branch and a description per upstream PR from topics or patches.
    Export(cmd::export::Args),
    /// Compare the series with an earlier version of it (a tag or commit of this repository), patch by patch.
    Diff {
        /// The earlier version: a tag, branch or commit of the fork's repository.
        #[arg(value_name = "REV")]
        rev: String,
    },
    /// Move the queue to another base (3-way, with --continue / --abort on conflicts).
    Rebase(cmd::rebase::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = cmd::Ctx::new(cli.work_tree, cli.no_wait).and_then(|ctx| match &cli.command {
        Command::Build(args) => cmd::build::run(&ctx, args),
        Command::Apply(base) => cmd::apply::run(&ctx, base),
        Command::Refresh { check, force } => cmd::refresh::run(&ctx, *check, *force),
        Command::Check { build_each } => cmd::check::run(&ctx, *build_each),
        Command::Test => cmd::test::run(&ctx),
        Command::Status => cmd::status::run(&ctx),
        Command::Export(args) => cmd::export::run(&ctx, args),
        Command::Diff { rev } => cmd::diff::run(&ctx, rev),
        Command::Rebase(args) => cmd::rebase::run(&ctx, args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            ui::error(&err);
            match err.downcast_ref::<exit::Exit>() {
                Some(exit) => ExitCode::from(exit.code as u8),
                None => ExitCode::FAILURE,
            }
        }
    }
}
