//! Directories patchq makes for the length of one step (unpacking a base,
//! building a work tree before it moves into place). A [`ScratchDir`]
//! removes its directory when dropped, so an error or a panic leaves
//! nothing behind that would block the next run; only [`ScratchDir::keep`]
//! lets the directory outlive the guard.

use std::path::{Path, PathBuf};

use anyhow::Result;

pub struct ScratchDir {
    path: PathBuf,
    armed: bool,
}

impl ScratchDir {
    /// An empty directory at `path`. Whatever is there is left over from an
    /// interrupted run (patchq's own names): it goes first.
    pub fn fresh(path: PathBuf) -> Result<ScratchDir> {
        if path.symlink_metadata().is_ok() {
            fs_err::remove_dir_all(&path)?;
        }
        fs_err::create_dir_all(&path)?;
        Ok(ScratchDir { path, armed: true })
    }

    /// Takes charge of an existing directory.
    pub fn adopt(path: PathBuf) -> ScratchDir {
        ScratchDir { path, armed: true }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the directory to `dest` and lets it live on there.
    pub fn keep_as(mut self, dest: &Path) -> Result<()> {
        fs_err::rename(&self.path, dest)?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.armed && self.path.exists() {
            // Best effort: a failure here must not hide the error that got us here.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
