//! The queue as it stands in the fork's repository: `patches/series`, the
//! patch files it names, and the overlay under `src-overlay/`.
//!
//! This module reads those files and checks that they agree with each other
//! (every patch listed once, every listed patch present). What a patch says
//! is parsed by the pure `patch` module; applying happens in `worktree`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::config::Loaded;
use crate::patch::PatchFile;
use crate::series::Series;

pub const SERIES_FILE: &str = "series";

/// One patch file of the queue.
pub struct QueuedPatch {
    pub name: String,
    pub path: PathBuf,
    /// sha256 of the file's bytes: what the work tree's state compares.
    pub hash: String,
    pub file: PatchFile,
}

pub struct Queue {
    pub series: Series,
    pub patches: Vec<QueuedPatch>,
}

impl Queue {
    /// Loads the series and every patch it lists. A patch file that is not
    /// listed, or a listed one that is missing or unreadable, is an error.
    pub fn load(patches_dir: &Path) -> Result<Queue> {
        let series_path = patches_dir.join(SERIES_FILE);
        let text = fs_err::read_to_string(&series_path)
            .with_context(|| format!("the queue needs {}", series_path.display()))?;
        let series = Series::parse(&text).with_context(|| format!("{}", series_path.display()))?;

        let on_disk: BTreeSet<String> = fs_err::read_dir(patches_dir)?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".patch"))
            .collect();
        let listed: BTreeSet<String> = series.patches.iter().cloned().collect();
        if let Some(missing) = listed.difference(&on_disk).next() {
            bail!(
                "{}: lists `{missing}`, but {} does not exist (add the file, or remove the line)",
                series_path.display(),
                patches_dir.join(missing).display()
            );
        }
        if let Some(unlisted) = on_disk.difference(&listed).next() {
            bail!(
                "{} is not listed in {}: add it to the series where it applies, or delete it",
                patches_dir.join(unlisted).display(),
                series_path.display()
            );
        }

        let mut patches = Vec::new();
        for name in &series.patches {
            let path = patches_dir.join(name);
            let bytes = fs_err::read(&path)?;
            let text = String::from_utf8(bytes.clone()).with_context(|| format!("{} is not UTF-8", path.display()))?;
            let file = PatchFile::parse(&text).with_context(|| format!("{}", path.display()))?;
            patches.push(QueuedPatch { name: name.clone(), path, hash: sha256_hex(&bytes), file });
        }
        Ok(Queue { series, patches })
    }

    /// A short fingerprint of the whole queue, for the toolchain description.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for p in &self.patches {
            hasher.update(p.name.as_bytes());
            hasher.update(p.hash.as_bytes());
        }
        hex(&hasher.finalize())[..12].to_owned()
    }
}

/// The overlay: files laid over the base, and base files it deletes.
pub struct Overlay {
    /// (path relative to the tree, content, executable), sorted by path.
    pub files: Vec<(String, Vec<u8>, bool)>,
    pub removals: Vec<String>,
    pub hash: String,
}

impl Overlay {
    pub fn load(loaded: &Loaded) -> Result<Overlay> {
        let root = loaded.overlay_dir();
        let mut files = Vec::new();
        if root.is_dir() {
            collect_files(&root, &root, &mut files)?;
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let removals = loaded.config.overlay.remove.clone();
        let mut hasher = Sha256::new();
        for (path, content, exec) in &files {
            hasher.update(format!("file {path} {exec} {}\n", content.len()).as_bytes());
            hasher.update(content);
        }
        for path in &removals {
            hasher.update(format!("remove {path}\n").as_bytes());
        }
        Ok(Overlay { files, removals, hash: hex(&hasher.finalize()) })
    }

    /// Every path the overlay layer owns: what it writes and what it deletes.
    pub fn owned_paths(&self) -> BTreeSet<&str> {
        self.files.iter().map(|f| f.0.as_str()).chain(self.removals.iter().map(String::as_str)).collect()
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>, bool)>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = fs_err::symlink_metadata(&path)?;
        if meta.is_dir() {
            collect_files(root, &path, out)?;
        } else if meta.is_file() {
            let rel = path.strip_prefix(root).expect("walked below root").to_string_lossy().into_owned();
            let exec = meta.permissions().mode() & 0o111 != 0;
            out.push((rel, fs_err::read(&path)?, exec));
        } else {
            bail!("{}: the overlay holds only regular files and directories", path.display());
        }
    }
    Ok(())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
