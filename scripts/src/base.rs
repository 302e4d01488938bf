//! Getting the pinned base and the stage0 toolchain, offline.
//!
//! The default source is Debian's `rustc-web` source package (it carries
//! upstream 1.85.0 and upstream's own stage0 tarballs), fetched once with
//! `apt-get source -d` into the cache directory and verified by sha256 on
//! every use. A user with an upstream `rustc-1.85.0-src.tar.xz` or a
//! rust-lang/rust checkout can use that instead.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::config::BaseConfig;
use crate::git::Git;
use crate::process::Cmd;
use crate::queue::hex;
use crate::ui;

/// The only host the fork is built and tested on.
pub const HOST: &str = "x86_64-unknown-linux-gnu";

/// Where the base sources come from.
#[derive(Debug, Clone)]
pub enum BaseSource {
    /// Debian's source package, named in `patchq.toml`.
    Debian,
    /// An upstream `rustc-<version>-src.tar.xz`.
    Tarball(PathBuf),
    /// A rust-lang/rust checkout; its `HEAD` is used.
    Git(PathBuf),
}

impl BaseSource {
    /// A stable name for the base, recorded in the work tree's state.
    pub fn id(&self, cfg: &BaseConfig) -> Result<String> {
        Ok(match self {
            BaseSource::Debian => format!("debian {} {} sha256:{}", cfg.debian_package, cfg.debian_version, cfg.orig_sha256),
            BaseSource::Tarball(path) => format!("tarball sha256:{}", sha256_file(path)?),
            BaseSource::Git(path) => {
                let head = Git::open(path).rev_parse("HEAD")?;
                let head = head.with_context(|| format!("{} has no commit to use as base", path.display()))?;
                format!("git {head}")
            }
        })
    }

    /// Unpacks the base (without `vendor/`) into a new directory beside
    /// `dest`, and returns that directory.
    pub fn extract(&self, cfg: &BaseConfig, cache: &Path, dest: &Path) -> Result<PathBuf> {
        let staging = staging_dir(dest)?;
        match self {
            BaseSource::Debian => {
                let orig = debian_file(cfg, cache, &cfg.orig_file(), &cfg.orig_sha256)?;
                untar(&orig, &staging)?;
            }
            BaseSource::Tarball(path) => untar(path, &staging)?,
            BaseSource::Git(path) => {
                let top = staging.join("checkout");
                fs_err::create_dir_all(&top)?;
                let archive = tempfile::NamedTempFile::new_in(&staging).context("creating a temporary file")?;
                Git::open(path).cmd(["archive", "--format=tar", "-o"]).arg(archive.path()).arg("HEAD").read()?;
                Cmd::new("tar").arg("-xf").arg(archive.path()).arg("-C").arg(&top).read()?;
            }
        }
        single_child(&staging)
    }
}

/// A fresh, empty directory beside `dest` to unpack into.
fn staging_dir(dest: &Path) -> Result<PathBuf> {
    let staging = crate::worktree::beside(dest, "extract");
    if staging.exists() {
        // Left over from an interrupted run: nothing in it is anyone's work.
        fs_err::remove_dir_all(&staging)?;
    }
    fs_err::create_dir_all(&staging)?;
    Ok(staging)
}

fn untar(tarball: &Path, into: &Path) -> Result<()> {
    let phase = ui::phase(format!("unpacking {}", tarball.display()));
    // `vendor/` is 326 MB that cargo never reads here: it uses crates.io.
    Cmd::new("tar")
        .arg("-xJf")
        .arg(tarball)
        .args(["--exclude=*-src/vendor", "-C"])
        .arg(into)
        .read()?;
    phase.done("done");
    Ok(())
}

/// The one directory a tarball unpacked into, moved next to the staging
/// directory so the staging directory can go.
fn single_child(staging: &Path) -> Result<PathBuf> {
    let children: Vec<_> = fs_err::read_dir(staging)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    let [top] = children.as_slice() else {
        bail!("the base unpacked into {} entries in {}, expected one top directory", children.len(), staging.display());
    };
    let out = staging.with_extension("tree");
    if out.exists() {
        fs_err::remove_dir_all(&out)?;
    }
    fs_err::rename(top, &out)?;
    fs_err::remove_dir_all(staging)?;
    Ok(out)
}

/// A file of the Debian source package from the cache, downloading the
/// package first if the cache lacks it. The checksum is verified every time.
pub fn debian_file(cfg: &BaseConfig, cache: &Path, name: &str, sha256: &str) -> Result<PathBuf> {
    let dir = cache.join("debian").join(&cfg.debian_version);
    let path = dir.join(name);
    if !path.is_file() {
        download_debian_source(cfg, &dir)?;
        if !path.is_file() {
            bail!("`apt-get source -d` did not produce {}", path.display());
        }
    }
    verify_sha256(&path, sha256)?;
    Ok(path)
}

fn download_debian_source(cfg: &BaseConfig, dir: &Path) -> Result<()> {
    let spec = format!("{}={}", cfg.debian_package, cfg.debian_version);
    let phase = ui::phase(format!("downloading the {spec} source package into {}", dir.display()));
    ensure_deb_src(cfg)?;
    fs_err::create_dir_all(dir)?;
    Cmd::new("apt-get").args(["source", "--download-only", "-q", &spec]).dir(dir).stream()?;
    phase.done("downloaded");
    Ok(())
}

const DEB_SRC_FILE: &str = "/etc/apt/sources.list.d/patchq-deb-src.sources";

/// `apt-get source` needs a `deb-src` entry for the suite; add one (as
/// root) when apt does not know the pinned version.
fn ensure_deb_src(cfg: &BaseConfig) -> Result<()> {
    if apt_knows_source(cfg)? {
        return Ok(());
    }
    let entry = format!(
        "Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: {}\nComponents: main\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
        cfg.debian_suite
    );
    if !crate::host::is_root() {
        bail!(
            "apt has no deb-src entry with {} {}: as root, write this to {DEB_SRC_FILE} and run \
             `apt-get update`:\n{entry}",
            cfg.debian_package,
            cfg.debian_version
        );
    }
    ui::note(format!("adding a deb-src entry for {} in {DEB_SRC_FILE}", cfg.debian_suite));
    fs_err::write(DEB_SRC_FILE, entry)?;
    Cmd::new("apt-get").args(["update", "-q"]).stream()?;
    if !apt_knows_source(cfg)? {
        bail!(
            "apt still does not list source package {} {} after adding {DEB_SRC_FILE}: \
             the suite `{}` may no longer carry this version",
            cfg.debian_package,
            cfg.debian_version,
            cfg.debian_suite
        );
    }
    Ok(())
}

fn apt_knows_source(cfg: &BaseConfig) -> Result<bool> {
    let out = Cmd::new("apt-cache").args(["showsrc", &cfg.debian_package]).output()?;
    Ok(out.stdout.lines().any(|l| l.trim() == format!("Version: {}", cfg.debian_version)))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub fn verify_sha256(path: &Path, expected: &str) -> Result<()> {
    let actual = sha256_file(path)?;
    if actual != expected {
        bail!(
            "{} has sha256 {actual}, expected {expected}: the file is corrupt or not the pinned one; \
             delete it and run again to download it anew",
            path.display()
        );
    }
    Ok(())
}

/// The stage0 toolchain x.py expects, read from the tree's `src/stage0`.
#[derive(Debug)]
pub struct Stage0 {
    pub date: String,
    /// (file name, sha256) of the host's rustc, rust-std and cargo tarballs.
    pub files: Vec<(String, String)>,
}

impl Stage0 {
    pub fn read(tree: &Path) -> Result<Stage0> {
        let path = tree.join("src").join("stage0");
        let text = fs_err::read_to_string(&path)?;
        Stage0::parse(&text).with_context(|| format!("{}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Stage0> {
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_owned))
                .with_context(|| format!("no `{key}=` line"))
        };
        let date = value("compiler_date")?;
        let version = value("compiler_version")?;
        let mut files = Vec::new();
        for component in ["rustc", "rust-std", "cargo"] {
            let name = format!("{component}-{version}-{HOST}.tar.xz");
            let key = format!("dist/{date}/{name}");
            files.push((name, value(&key)?));
        }
        Ok(Stage0 { date, files })
    }

    /// Puts the stage0 tarballs into `<tree>/build/cache/<date>/`, taking
    /// them from Debian's `orig-stage0` tarball when they are not there yet,
    /// and verifies them against `src/stage0`.
    pub fn install(&self, cfg: &BaseConfig, cache: &Path, tree: &Path) -> Result<()> {
        let dir = tree.join("build").join("cache").join(&self.date);
        let missing: Vec<&str> =
            self.files.iter().filter(|(name, _)| !dir.join(name).is_file()).map(|(n, _)| n.as_str()).collect();
        if !missing.is_empty() {
            let bundle = debian_file(cfg, cache, &cfg.stage0_file(), &cfg.stage0_sha256)?;
            let phase = ui::phase(format!("extracting stage0 ({} files) into {}", missing.len(), dir.display()));
            fs_err::create_dir_all(&dir)?;
            let members = missing.iter().map(|name| format!("{}/{name}", self.date));
            Cmd::new("tar")
                .arg("-xJf")
                .arg(&bundle)
                .arg("-C")
                .arg(tree.join("build").join("cache"))
                .args(members)
                .read()?;
            phase.done("done");
        }
        for (name, sha) in &self.files {
            verify_sha256(&dir.join(name), sha).context("stage0 does not match src/stage0")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage0_files_come_from_src_stage0() {
        let text = "compiler_date=2025-01-09\ncompiler_version=1.84.0\n\
            dist/2025-01-09/rustc-1.84.0-x86_64-unknown-linux-gnu.tar.xz=aa\n\
            dist/2025-01-09/rust-std-1.84.0-x86_64-unknown-linux-gnu.tar.xz=bb\n\
            dist/2025-01-09/cargo-1.84.0-x86_64-unknown-linux-gnu.tar.xz=cc\n";
        let s = Stage0::parse(text).unwrap();
        assert_eq!(s.date, "2025-01-09");
        assert_eq!(s.files[2], ("cargo-1.84.0-x86_64-unknown-linux-gnu.tar.xz".to_owned(), "cc".to_owned()));
        assert!(Stage0::parse("compiler_date=x\n").unwrap_err().to_string().contains("compiler_version"));
    }

    #[test]
    fn wrong_checksum_names_file_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orig.tar.xz");
        std::fs::write(&path, b"not the base").unwrap();
        let err = verify_sha256(&path, &"0".repeat(64)).unwrap_err().to_string();
        assert!(err.contains("orig.tar.xz has sha256"), "{err}");
        assert!(err.contains("delete it and run again"), "{err}");
    }
}
