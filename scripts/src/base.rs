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

use crate::config::{BaseConfig, DebianPkg};
use crate::git::Git;
use crate::process::Cmd;
use crate::queue::hex;
use crate::scratch::ScratchDir;
use crate::series::BaseRecord;
use crate::ui;

/// The only host the fork is built and tested on.
pub const HOST: &str = "x86_64-unknown-linux-gnu";

/// Where the base sources come from.
#[derive(Debug, Clone)]
pub enum BaseSource {
    /// Debian's source package, as pinned in `patchq.toml`.
    Debian,
    /// Another version of the pinned Debian source package (`debian:<version>`).
    DebianVersion(String),
    /// An upstream `rustc-<version>-src.tar.xz`.
    Tarball(PathBuf),
    /// A rust-lang/rust checkout at a revision.
    Git { path: PathBuf, rev: String },
}

impl BaseSource {
    /// Reads a base as `patchq rebase --onto` names it: `debian:<version>`,
    /// a `rustc-*-src.tar.xz`, a rust-lang/rust checkout (its `HEAD`), or
    /// `<checkout>@<rev>`.
    pub fn parse_spec(spec: &str) -> Result<BaseSource> {
        if let Some(version) = spec.strip_prefix("debian:") {
            if version.is_empty() || version.contains(char::is_whitespace) {
                bail!("`{spec}`: name a Debian version, e.g. `debian:1.86.0+dfsg1-1`");
            }
            return Ok(BaseSource::DebianVersion(version.to_owned()));
        }
        let (path, rev) = match spec.rsplit_once('@') {
            Some((path, rev)) if !Path::new(spec).exists() => (Path::new(path), rev),
            _ => (Path::new(spec), "HEAD"),
        };
        if !path.exists() {
            bail!(
                "`{spec}` is not a base: expected `debian:<version>`, a rustc-<version>-src.tar.xz, \
                 a rust-lang/rust checkout, or `<checkout>@<rev>` ({} does not exist)",
                path.display()
            );
        }
        let path = fs_err::canonicalize(path)?;
        if path.is_file() {
            return Ok(BaseSource::Tarball(path));
        }
        if !Git::is_repo(&path) {
            bail!("{} is a directory but not a git checkout (no .git)", path.display());
        }
        Ok(BaseSource::Git { path, rev: rev.to_owned() })
    }

    /// A stable name for the base, recorded in the work tree's state.
    pub fn id(&self, cfg: &BaseConfig, cache: &Path) -> Result<String> {
        Ok(match self {
            BaseSource::Debian => {
                let pkg = cfg.debian();
                format!("debian {} {} sha256:{}", pkg.package, pkg.version, cfg.orig_sha256)
            }
            BaseSource::DebianVersion(version) => {
                let pkg = DebianPkg { version: version.clone(), ..cfg.debian() };
                let orig = debian_file(&pkg, cache, &pkg.orig_file(), None)?;
                format!("debian {} {} sha256:{}", pkg.package, pkg.version, sha256_file(&orig)?)
            }
            BaseSource::Tarball(path) => format!("tarball sha256:{}", sha256_file(path)?),
            BaseSource::Git { path, rev } => format!("git {}", git_commit(path, rev)?),
        })
    }

    /// Unpacks the base (without `vendor/`) into a new directory beside
    /// `dest`, and returns that directory, removed when the guard drops.
    pub fn extract(&self, cfg: &BaseConfig, cache: &Path, dest: &Path) -> Result<ScratchDir> {
        let staging = ScratchDir::fresh(crate::worktree::beside(dest, "extract"))?;
        let staging = staging.path();
        match self {
            BaseSource::Debian => {
                let pkg = cfg.debian();
                let orig = debian_file(&pkg, cache, &pkg.orig_file(), Some(&cfg.orig_sha256))?;
                untar(&orig, staging)?;
            }
            BaseSource::DebianVersion(version) => {
                let pkg = DebianPkg { version: version.clone(), ..cfg.debian() };
                untar(&debian_file(&pkg, cache, &pkg.orig_file(), None)?, staging)?;
            }
            BaseSource::Tarball(path) => untar(path, staging)?,
            BaseSource::Git { path, rev } => {
                let top = staging.join("checkout");
                fs_err::create_dir_all(&top)?;
                let archive = tempfile::NamedTempFile::new_in(staging).context("creating a temporary file")?;
                let commit = git_commit(path, rev)?;
                Git::open(path).archive(&commit, archive.path())?;
                Cmd::new("tar").arg("-xf").arg(archive.path()).arg("-C").arg(&top).read()?;
            }
        }
        single_child(staging, dest)
    }

    /// What the series header records for this base, read from the sources
    /// themselves (`version` / `src/version`, `git-commit-hash`) where the
    /// configuration does not pin it.
    pub fn record(&self, cfg: &BaseConfig, id: &str, extracted: &Path) -> Result<BaseRecord> {
        let (source, sha256) = split_id(id);
        if let BaseSource::Debian = self {
            return Ok(BaseRecord { version: cfg.version.clone(), commit: Some(cfg.commit.clone()), source, sha256 });
        }
        let read = |name: &str| {
            fs_err::read_to_string(extracted.join(name))
                .ok()
                .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        };
        let Some(version) = read("version").or_else(|| read("src/version")) else {
            bail!("{}: no `version` or `src/version` file: is this a rust source tree?", extracted.display());
        };
        let commit = match self {
            BaseSource::Git { path, rev } => Some(git_commit(path, rev)?),
            _ => read("git-commit-hash"),
        };
        Ok(BaseRecord { version, commit, source, sha256 })
    }
}

/// A base id (see [`BaseSource::id`]) as the series header records it: the
/// source without its checksum, and the checksum when there is one.
pub fn split_id(id: &str) -> (String, Option<String>) {
    match id.split_once(" sha256:") {
        Some((source, sha)) => (source.to_owned(), Some(sha.to_owned())),
        None => (id.to_owned(), None),
    }
}

fn git_commit(checkout: &Path, rev: &str) -> Result<String> {
    Git::open(checkout)
        .rev_parse(rev)?
        .with_context(|| format!("{} has no commit `{rev}` to use as base", checkout.display()))
}

fn untar(tarball: &Path, into: &Path) -> Result<()> {
    let phase = ui::phase(format!("unpacking {}", tarball.display()));
    // `vendor/` is 326 MB that cargo never reads here: it uses crates.io.
    Cmd::new("tar").arg("-xJf").arg(tarball).args(["--exclude=*-src/vendor", "-C"]).arg(into).read()?;
    phase.done("done");
    Ok(())
}

/// The one directory a tarball unpacked into, moved beside `dest`
/// (`.<name>.patchq-extract.tree`) so the staging directory can go.
fn single_child(staging: &Path, dest: &Path) -> Result<ScratchDir> {
    let children: Vec<_> = fs_err::read_dir(staging)?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    let [top] = children.as_slice() else {
        bail!("the base unpacked into {} entries in {}, expected one top directory", children.len(), staging.display());
    };
    let out = crate::worktree::beside(dest, "extract.tree");
    if out.symlink_metadata().is_ok() {
        fs_err::remove_dir_all(&out)?;
    }
    fs_err::rename(top, &out)?;
    Ok(ScratchDir::adopt(out))
}

/// A file of a Debian source package from the cache, downloading the
/// package first if the cache lacks it. With a pinned checksum the file is
/// verified every time; without one (a version patchq.toml does not pin),
/// apt has verified the download against the signed Sources index.
pub fn debian_file(pkg: &DebianPkg, cache: &Path, name: &str, sha256: Option<&str>) -> Result<PathBuf> {
    let dir = cache.join("debian").join(&pkg.version);
    let path = dir.join(name);
    if !path.is_file() {
        download_debian_source(pkg, &dir)?;
        if !path.is_file() {
            bail!("`apt-get source -d` did not produce {}", path.display());
        }
    }
    if let Some(sha256) = sha256 {
        verify_sha256(&path, sha256)?;
    }
    Ok(path)
}

fn download_debian_source(pkg: &DebianPkg, dir: &Path) -> Result<()> {
    let spec = format!("{}={}", pkg.package, pkg.version);
    let phase = ui::phase(format!("downloading the {spec} source package into {}", dir.display()));
    ensure_deb_src(pkg)?;
    fs_err::create_dir_all(dir)?;
    Cmd::new("apt-get").args(["source", "--download-only", "-q", &spec]).dir(dir).stream()?;
    phase.done("downloaded");
    Ok(())
}

const DEB_SRC_FILE: &str = "/etc/apt/sources.list.d/patchq-deb-src.sources";

/// `apt-get source` needs a `deb-src` entry for the suite; add one (as
/// root) when apt does not know the wanted version.
fn ensure_deb_src(pkg: &DebianPkg) -> Result<()> {
    if apt_knows_source(pkg)? {
        return Ok(());
    }
    let entry = format!(
        "Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: {}\nComponents: main\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
        pkg.suite
    );
    if !crate::host::is_root() {
        bail!(
            "apt has no deb-src entry with {} {}: as root, write this to {DEB_SRC_FILE} and run \
             `apt-get update`:\n{entry}",
            pkg.package,
            pkg.version
        );
    }
    ui::note(format!("adding a deb-src entry for {} in {DEB_SRC_FILE}", pkg.suite));
    fs_err::write(DEB_SRC_FILE, entry)?;
    Cmd::new("apt-get").args(["update", "-q"]).stream()?;
    if !apt_knows_source(pkg)? {
        bail!(
            "apt still does not list source package {} {} after adding {DEB_SRC_FILE}: \
             the suite `{}` may not carry this version",
            pkg.package,
            pkg.version,
            pkg.suite
        );
    }
    Ok(())
}

fn apt_knows_source(pkg: &DebianPkg) -> Result<bool> {
    let out = Cmd::new("apt-cache").args(["showsrc", &pkg.package]).output()?;
    Ok(out.stdout.lines().any(|l| l.trim() == format!("Version: {}", pkg.version)))
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
            let pkg = cfg.debian();
            let bundle = debian_file(&pkg, cache, &pkg.stage0_file(), Some(&cfg.stage0_sha256))?;
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
    fn rebase_bases_are_named_by_kind() {
        assert!(
            matches!(BaseSource::parse_spec("debian:1.86.0+dfsg1-1").unwrap(), BaseSource::DebianVersion(v) if v == "1.86.0+dfsg1-1")
        );
        assert!(BaseSource::parse_spec("debian:").unwrap_err().to_string().contains("name a Debian version"));
        let dir = tempfile::tempdir().unwrap();
        let tarball = dir.path().join("rustc-1.86.0-src.tar.xz");
        std::fs::write(&tarball, b"x").unwrap();
        assert!(matches!(BaseSource::parse_spec(&tarball.to_string_lossy()).unwrap(), BaseSource::Tarball(_)));
        let checkout = dir.path().join("rust");
        std::fs::create_dir_all(checkout.join(".git")).unwrap();
        let spec = format!("{}@1.86.0", checkout.display());
        assert!(matches!(BaseSource::parse_spec(&spec).unwrap(), BaseSource::Git { rev, .. } if rev == "1.86.0"));
        let plain = BaseSource::parse_spec(&checkout.to_string_lossy()).unwrap();
        assert!(matches!(plain, BaseSource::Git { rev, .. } if rev == "HEAD"));
        let err = BaseSource::parse_spec("/no/such/rust@master").unwrap_err().to_string();
        assert!(err.contains("is not a base") && err.contains("/no/such/rust does not exist"), "{err}");
        assert!(!err.contains("  "), "one space between words: {err}");
        let err = BaseSource::parse_spec(&dir.path().to_string_lossy()).unwrap_err().to_string();
        assert!(err.contains("not a git checkout"), "{err}");
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
