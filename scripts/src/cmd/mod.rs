//! One module per subcommand; each exposes `run`. What they share: the
//! loaded configuration and the steps that bring a work tree into being.

pub mod apply;
pub mod build;
pub mod check;
pub mod diff;
pub mod export;
pub mod rebase;
pub mod refresh;
pub mod status;
pub mod test;

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::base::BaseSource;
use crate::config::{self, Loaded};
use crate::queue::{Overlay, Queue};
use crate::series::{BaseRecord, Series};
use crate::ui;
use crate::worktree::{Lock, WorkTree};

/// What every command starts from.
pub struct Ctx {
    pub loaded: Loaded,
    pub tree: PathBuf,
    pub cache: PathBuf,
    /// Refuse instead of waiting when another patchq holds the work tree.
    pub no_wait: bool,
}

impl Ctx {
    pub fn new(work_tree: Option<PathBuf>, no_wait: bool) -> Result<Ctx> {
        let cwd = std::env::current_dir()?;
        let loaded = Loaded::discover(&cwd)?;
        let tree = match work_tree {
            Some(path) => cwd.join(path),
            None => loaded.work_tree(),
        };
        Ok(Ctx { loaded, tree, cache: config::cache_dir()?, no_wait })
    }

    pub fn lock(&self) -> Result<Lock> {
        Lock::acquire(&self.tree, !self.no_wait)
    }

    pub fn queue(&self) -> Result<Queue> {
        Queue::load(&self.loaded.patches_dir())
    }

    pub fn overlay(&self) -> Result<Overlay> {
        Overlay::load(&self.loaded)
    }

    pub fn base_date(&self) -> &str {
        &self.loaded.config.base.date
    }

    /// Opens the work tree, creating it from `source` (or the Debian
    /// package by default) when it does not exist; says which it did. An
    /// existing tree made from another base is an error rather than
    /// silently replaced.
    /// A new tree must be made from the base the series header records
    /// (version, and checksum for the same kind of archive) unless
    /// `allow_other_base` says another one is meant.
    pub fn open_or_create_tree(
        &self,
        source: Option<BaseSource>,
        allow_other_base: bool,
    ) -> Result<(WorkTree, Created)> {
        let cfg = &self.loaded.config.base;
        let explicit = source.is_some();
        let source = source.unwrap_or(BaseSource::Debian);
        if let Some(tree) = WorkTree::open(&self.tree)? {
            if explicit {
                let id = source.id(cfg, &self.cache)?;
                if id != tree.state.base {
                    bail!(
                        "{} was made from another base ({}); to switch to {id}, move the tree away \
                         (uncommitted work included) and run again",
                        self.tree.display(),
                        tree.state.base
                    );
                }
            }
            return Ok((tree, Created::No));
        }
        let phase = ui::phase(format!("creating the work tree {}", self.tree.display()));
        let id = source.id(cfg, &self.cache)?;
        let extracted = source.extract(cfg, &self.cache, &self.tree)?;
        let record = source.record(cfg, &id, extracted.path())?;
        if !allow_other_base && let Some(recorded) = self.series_base() {
            check_base(&recorded, &record)?;
        }
        let tree = WorkTree::create(&self.tree, &id, record, extracted, self.base_date())?;
        phase.done(format!("base commit {}", crate::worktree::short(&tree.state.base_commit)));
        Ok((tree, Created::Yes))
    }
}

impl Ctx {
    /// The base `patches/series` records, if it records one (and parses).
    fn series_base(&self) -> Option<BaseRecord> {
        let text = fs_err::read_to_string(self.loaded.patches_dir().join(crate::queue::SERIES_FILE)).ok()?;
        Series::parse(&text).ok()?.base()
    }
}

/// Whether `actual` is the base the series header records: the same
/// version, and the same checksum when both are archives of the same kind.
fn check_base(recorded: &BaseRecord, actual: &BaseRecord) -> Result<()> {
    let kind = |source: &str| source.split_whitespace().next().unwrap_or_default().to_owned();
    let mismatch = if recorded.version != actual.version {
        Some(format!("Rust {}, but patches/series records {}", actual.version, recorded.version))
    } else if let (Some(want), Some(have)) = (&recorded.sha256, &actual.sha256)
        && kind(&recorded.source) == kind(&actual.source)
        && want != have
    {
        Some(format!("sha256 {have}, but patches/series records {want} for Rust {}", recorded.version))
    } else {
        None
    };
    match mismatch {
        Some(what) => bail!(
            "the base given is {what}: the queue was made for that base. pass the recorded base, \
             or --allow-other-base if you mean to build the queue on this one (`patchq rebase --onto` moves it)"
        ),
        None => Ok(()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Yes,
    No,
}

/// `--base-tarball` / `--base-git`, shared by the commands that can create
/// the work tree.
#[derive(clap::Args, Debug, Default)]
pub struct BaseArgs {
    /// Use an upstream `rustc-<version>-src.tar.xz` instead of Debian's source package.
    #[arg(long, value_name = "PATH", conflicts_with = "base_git")]
    pub base_tarball: Option<PathBuf>,
    /// Use a rust-lang/rust checkout (its HEAD, the release tag) instead of Debian's source package.
    #[arg(long, value_name = "PATH")]
    pub base_git: Option<PathBuf>,
    /// Accept a base other than the one patches/series records (version, checksum).
    #[arg(long)]
    pub allow_other_base: bool,
}

impl BaseArgs {
    pub fn source(&self) -> Result<Option<BaseSource>> {
        let abs = |p: &PathBuf| -> Result<PathBuf> {
            if !p.exists() {
                bail!("{} does not exist", p.display());
            }
            Ok(fs_err::canonicalize(p)?)
        };
        Ok(match (&self.base_tarball, &self.base_git) {
            (Some(tarball), _) => Some(BaseSource::Tarball(abs(tarball)?)),
            (_, Some(checkout)) => Some(BaseSource::Git { path: abs(checkout)?, rev: "HEAD".to_owned() }),
            _ => None,
        })
    }
}
