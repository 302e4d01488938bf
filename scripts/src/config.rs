//! `patchq.toml`: the fork's settings, parsed into one typed struct.
//!
//! Unknown keys are errors naming the file and the key, so a typo never
//! silently falls back to a default. Paths are relative to the directory
//! holding `patchq.toml` (the fork's repository root).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

pub const FILE_NAME: &str = "patchq.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    pub base: BaseConfig,
    #[serde(default)]
    pub work_tree: WorkTreeConfig,
    #[serde(default)]
    pub toolchain: ToolchainConfig,
    #[serde(default)]
    pub overlay: OverlayConfig,
    #[serde(default)]
    pub enzyme: EnzymeConfig,
    #[serde(default)]
    pub test: TestConfig,
}

/// The pinned base: upstream version and commit, and the Debian source
/// package that carries it offline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BaseConfig {
    /// Upstream version, e.g. `1.85.0`.
    pub version: String,
    /// Upstream commit of that version.
    pub commit: String,
    /// Commit date of the base, used as the date of the work tree's base
    /// and overlay commits so that their ids are reproducible.
    pub date: String,
    pub debian_package: String,
    /// Full Debian version, e.g. `1.85.0+dfsg3-1~deb12u3`.
    pub debian_version: String,
    /// Debian suite whose `deb-src` entry carries the package.
    pub debian_suite: String,
    pub orig_sha256: String,
    pub stage0_sha256: String,
}

impl BaseConfig {
    /// The pinned Debian source package.
    pub fn debian(&self) -> DebianPkg {
        DebianPkg {
            package: self.debian_package.clone(),
            version: self.debian_version.clone(),
            suite: self.debian_suite.clone(),
        }
    }
}

/// One version of a Debian source package, and the suite that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianPkg {
    pub package: String,
    /// Full Debian version, e.g. `1.85.0+dfsg3-1~deb12u3`.
    pub version: String,
    pub suite: String,
}

impl DebianPkg {
    /// The upstream part of the Debian version (`1.85.0+dfsg3`).
    pub fn upstream_version(&self) -> &str {
        self.version.rsplit_once('-').map_or(&self.version, |(v, _)| v)
    }

    pub fn orig_file(&self) -> String {
        format!("{}_{}.orig.tar.xz", self.package, self.upstream_version())
    }

    pub fn stage0_file(&self) -> String {
        format!("{}_{}.orig-stage0.tar.xz", self.package, self.upstream_version())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WorkTreeConfig {
    pub path: PathBuf,
}

impl Default for WorkTreeConfig {
    fn default() -> Self {
        WorkTreeConfig { path: PathBuf::from("rust") }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ToolchainConfig {
    /// The name `rustup toolchain link` registers.
    #[serde(default = "default_toolchain_name")]
    pub name: String,
    /// Targets the toolchain can compile for besides the host, whose
    /// libraries x.py builds into stage1 (`build.target`). The host is
    /// always built and not listed.
    #[serde(default = "default_targets")]
    pub targets: Vec<String>,
    /// The CPU each listed target's libraries are built for, where the
    /// target has no default (`targets::needs_explicit_cpu`: amdgcn, one
    /// CPU per GPU generation).
    #[serde(default)]
    pub target_cpu: BTreeMap<String, String>,
}

impl Default for ToolchainConfig {
    fn default() -> Self {
        ToolchainConfig { name: default_toolchain_name(), targets: default_targets(), target_cpu: BTreeMap::new() }
    }
}

fn default_toolchain_name() -> String {
    "patchq".to_owned()
}

/// The GPU target the fork's `gpu-kernel` ABI is for.
fn default_targets() -> Vec<String> {
    vec!["nvptx64-nvidia-cuda".to_owned()]
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OverlayConfig {
    /// Base files the overlay commit deletes (besides laying `src-overlay/`
    /// over the tree).
    #[serde(default)]
    pub remove: Vec<String>,
    /// Files the overlay replaces that feature patches may still edit, the way
    /// upstream's patches do (a new dependency changes `Cargo.lock`). Such a
    /// patch applies on top of the overlay's version in the work tree, and
    /// `patchq check` still applies the queue to the pristine base.
    #[serde(default)]
    pub shared: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnzymeConfig {
    /// A checkout of EnzymeAD/Enzyme to build against LLVM 19.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestConfig {
    /// Tests excluded from `patchq test`, each with the reason it fails
    /// here for reasons outside rustc. They are passed to x.py as `--skip`
    /// and listed in the summary, never counted as passed.
    #[serde(default)]
    pub known_failures: Vec<KnownFailure>,
    /// Existing tests `patchq test` runs too, beside what the patches add
    /// and the suites it always runs: the neighbours a patch could break.
    #[serde(default)]
    pub also: Vec<AlsoRun>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlsoRun {
    /// A test file or directory under `tests/<suite>/`.
    pub path: String,
    /// Why it is run: which patch it guards.
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KnownFailure {
    pub path: String,
    pub reason: String,
}

/// A loaded configuration with the directory it came from.
pub struct Loaded {
    pub root: PathBuf,
    pub config: Config,
}

impl Loaded {
    /// Finds `patchq.toml` in `start` or the nearest parent and parses it.
    pub fn discover(start: &Path) -> Result<Loaded> {
        let root = start
            .ancestors()
            .find(|dir| dir.join(FILE_NAME).is_file())
            .with_context(|| {
                format!("no {FILE_NAME} in {} or any parent: run patchq inside the fork's repository", start.display())
            })?
            .to_owned();
        let config = parse_file(&root.join(FILE_NAME))?;
        Ok(Loaded { root, config })
    }

    pub fn patches_dir(&self) -> PathBuf {
        self.root.join("patches")
    }

    pub fn overlay_dir(&self) -> PathBuf {
        self.root.join("src-overlay")
    }

    /// The bootstrap configuration that `build` and `check --build-each`
    /// render into a tree's `config.toml`. Not named `config.toml` itself,
    /// which beside `patchq.toml` reads as patchq's own configuration.
    pub fn config_template(&self) -> PathBuf {
        self.root.join("bootstrap.template.toml")
    }

    /// The work tree, from `PATCHQ_WORK_TREE` or the config.
    pub fn work_tree(&self) -> PathBuf {
        match std::env::var_os("PATCHQ_WORK_TREE") {
            Some(path) => PathBuf::from(path),
            None => self.root.join(&self.config.work_tree.path),
        }
    }
}

pub fn parse_file(path: &Path) -> Result<Config> {
    let text = fs_err::read_to_string(path)?;
    parse(&text).with_context(|| format!("{}: invalid configuration", path.display()))
}

pub fn parse(text: &str) -> Result<Config> {
    let config: Config = match toml::from_str(text) {
        Ok(config) => config,
        // toml's message already names the key and shows the line.
        Err(err) => bail!("{}", err.to_string().trim_end()),
    };
    for (key, value) in [("orig-sha256", &config.base.orig_sha256), ("stage0-sha256", &config.base.stage0_sha256)] {
        if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("[base] {key} = \"{value}\" is not a sha256 (64 hex digits)");
        }
    }
    let base = &config.base;
    if !is_date(&base.date) {
        bail!(
            "[base] date = \"{}\" is not a date like `2025-02-17T00:00:00+00:00` (RFC 3339, with a time zone)",
            base.date
        );
    }
    let numbers: Vec<&str> = base.version.split('.').collect();
    if numbers.len() != 3 || !numbers.iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
        bail!("[base] version = \"{}\" is not a Rust version like `1.85.0`", base.version);
    }
    if base.commit.len() != 40 || !base.commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("[base] commit = \"{}\" is not a full commit id (40 hex digits)", base.commit);
    }
    for (key, value) in [
        ("debian-package", &base.debian_package),
        ("debian-version", &base.debian_version),
        ("debian-suite", &base.debian_suite),
    ] {
        if value.is_empty() || value.contains(char::is_whitespace) || value.contains('/') {
            bail!("[base] {key} = \"{value}\" is not a Debian name (one word, no `/`)");
        }
    }
    let tree = &config.work_tree.path;
    if tree.file_name().is_none() {
        bail!("[work-tree] path = \"{}\" does not name a directory of its own", tree.display());
    }
    let name = &config.toolchain.name;
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains('/') {
        bail!("[toolchain] name = \"{name}\" is not a toolchain name (one word, no `/`)");
    }
    let relative = config.overlay.remove.iter().map(|p| ("[overlay] remove", p));
    let relative = relative.chain(config.overlay.shared.iter().map(|p| ("[overlay] shared", p)));
    let relative = relative.chain(config.test.also.iter().map(|a| ("[[test.also]] path", &a.path)));
    let relative = relative.chain(config.test.known_failures.iter().map(|k| ("[[test.known-failures]] path", &k.path)));
    for (key, path) in relative {
        let inside = Path::new(path).components().all(|c| matches!(c, std::path::Component::Normal(_)));
        if path.is_empty() || !inside {
            bail!("{key}: `{path}` is not a path inside the rust tree (relative, without `..`)");
        }
    }
    check_targets(&config.toolchain.targets)?;
    check_target_cpus(&config.toolchain.targets, &config.toolchain.target_cpu)?;
    Ok(config)
}

/// Whether `text` is an RFC 3339 date with a time and a time zone, the form
/// git takes verbatim for commit dates.
fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let number = |range: std::ops::Range<usize>| text.get(range).and_then(|d| d.parse::<u32>().ok()).unwrap_or(0);
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b' ')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let zone = &text[19.min(text.len())..];
    let zone_ok = zone == "Z"
        || (zone.len() == 6
            && (zone.starts_with('+') || zone.starts_with('-'))
            && digits(20..22)
            && zone.as_bytes()[3] == b':'
            && digits(23..25));
    shape
        && zone_ok
        && (1..=12).contains(&number(5..7))
        && (1..=31).contains(&number(8..10))
        && number(11..13) < 24
        && number(14..16) < 60
        && number(17..19) < 61
}

/// The checks on `[toolchain] targets` that need no work tree: each is a
/// target triple, listed once, and not the host (which x.py always builds).
/// Whether the base knows the target is checked against the work tree's
/// target list before the build (`targets::check_known`).
fn check_targets(targets: &[String]) -> Result<()> {
    for (i, target) in targets.iter().enumerate() {
        let parts: Vec<&str> = target.split('-').collect();
        let well_formed = (2..=4).contains(&parts.len())
            && parts.iter().all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
            });
        if !well_formed {
            bail!(
                "[toolchain] targets: \"{target}\" is not a target triple \
                 (like \"nvptx64-nvidia-cuda\": 2 to 4 lowercase parts joined by `-`)"
            );
        }
        if target == crate::base::HOST {
            bail!("[toolchain] targets: \"{target}\" is the host, which is always built: remove it from the list");
        }
        if targets[..i].contains(target) {
            bail!("[toolchain] targets: \"{target}\" is listed twice");
        }
    }
    Ok(())
}

/// `[toolchain.target-cpu]`: a CPU for each listed target that needs one,
/// and only for listed targets.
fn check_target_cpus(targets: &[String], cpus: &BTreeMap<String, String>) -> Result<()> {
    for (target, cpu) in cpus {
        if !targets.contains(target) {
            bail!(
                "[toolchain.target-cpu]: \"{target}\" is not in [toolchain] targets: list it there or remove this line"
            );
        }
        let well_formed = !cpu.is_empty()
            && cpu.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !well_formed {
            bail!("[toolchain.target-cpu]: \"{cpu}\" (for {target}) is not a CPU name like \"gfx90a\"");
        }
    }
    if let Some(target) = targets.iter().find(|t| crate::targets::needs_explicit_cpu(t) && !cpus.contains_key(*t)) {
        bail!(
            "[toolchain] targets: {target} has no default CPU, and its `core` is built for one: add\n\
             [toolchain.target-cpu]\n{target} = \"gfx90a\"   # the GPU generation to build for"
        );
    }
    Ok(())
}

/// Where downloads and other reusable state live: `PATCHQ_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/patchq`, else `~/.cache/patchq`.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PATCHQ_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("patchq"));
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("patchq")),
        None => bail!("cannot place the download cache: set PATCHQ_CACHE_DIR, XDG_CACHE_HOME or HOME"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_must_be_rfc3339_with_a_zone() {
        assert!(is_date("2025-02-17T00:00:00+00:00") && is_date("2025-02-17T00:00:00Z"));
        for bad in ["2025-02-17", "17 Feb 2025", "2025-13-01T00:00:00Z", "2025-02-17T00:00:00", "2025-02-17T25:00:00Z"]
        {
            assert!(!is_date(bad), "{bad}");
        }
    }

    pub const MINIMAL: &str = r#"
[base]
version = "1.85.0"
commit = "4d91de4e48198da2e33413efdcd9cd2cc0c46688"
date = "2025-02-17T00:00:00Z"
debian-package = "rustc-web"
debian-version = "1.85.0+dfsg3-1~deb12u3"
debian-suite = "bookworm"
orig-sha256 = "8cfaf52ab168a12c3082b5956bcc16c8969d8791b2fe54ed5192672b25518af2"
stage0-sha256 = "03fcf88611ca49857db56ebebd8c754e946f18bdf42e1fe4e7f9a3b949d01bad"
"#;

    #[test]
    fn defaults_and_debian_file_names() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.work_tree.path, PathBuf::from("rust"));
        assert_eq!(config.toolchain.name, "patchq");
        assert_eq!(config.base.debian().orig_file(), "rustc-web_1.85.0+dfsg3.orig.tar.xz");
        assert_eq!(config.base.debian().stage0_file(), "rustc-web_1.85.0+dfsg3.orig-stage0.tar.xz");
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let err = parse(&format!("{MINIMAL}\n[toolchain]\nname = \"x\"\nnmae = \"y\"\n")).unwrap_err();
        assert!(err.to_string().contains("unknown field `nmae`"), "{err}");
    }

    #[test]
    fn targets_default_to_nvptx_and_can_be_emptied() {
        assert_eq!(parse(MINIMAL).unwrap().toolchain.targets, ["nvptx64-nvidia-cuda"]);
        let named = parse(&format!("{MINIMAL}\n[toolchain]\nname = \"gpu\"\n")).unwrap();
        assert_eq!((named.toolchain.name.as_str(), named.toolchain.targets.len()), ("gpu", 1));
        let host_only = parse(&format!("{MINIMAL}\n[toolchain]\ntargets = []\n")).unwrap();
        assert_eq!(host_only.toolchain.name, "patchq");
        assert!(host_only.toolchain.targets.is_empty());
    }

    #[test]
    fn bad_targets_are_named_with_the_reason() {
        let err =
            |targets: &str| parse(&format!("{MINIMAL}\n[toolchain]\ntargets = {targets}\n")).unwrap_err().to_string();
        assert_eq!(
            err(r#"["nvptx64"]"#),
            "[toolchain] targets: \"nvptx64\" is not a target triple \
             (like \"nvptx64-nvidia-cuda\": 2 to 4 lowercase parts joined by `-`)"
        );
        assert!(err(r#"["NVPTX64-nvidia-cuda"]"#).contains("\"NVPTX64-nvidia-cuda\" is not a target triple"));
        assert!(err(r#"["nvptx64--cuda"]"#).contains("is not a target triple"));
        assert!(err(r#"["nvptx64-nvidia-cuda "]"#).contains("is not a target triple"));
        assert_eq!(
            err(r#"["x86_64-unknown-linux-gnu"]"#),
            "[toolchain] targets: \"x86_64-unknown-linux-gnu\" is the host, which is always built: remove it from the list"
        );
        assert_eq!(
            err(r#"["nvptx64-nvidia-cuda", "nvptx64-nvidia-cuda"]"#),
            "[toolchain] targets: \"nvptx64-nvidia-cuda\" is listed twice"
        );
        assert!(err(r#""nvptx64-nvidia-cuda""#).contains("invalid type: string"), "a list, not a string");
    }

    #[test]
    fn amdgcn_needs_a_cpu_and_cpus_need_their_target() {
        let toolchain = |body: &str| parse(&format!("{MINIMAL}\n[toolchain]\n{body}\n"));
        let with_cpu = toolchain(
            "targets = [\"nvptx64-nvidia-cuda\", \"amdgcn-amd-amdhsa\"]\n\
             [toolchain.target-cpu]\namdgcn-amd-amdhsa = \"gfx90a\"",
        )
        .unwrap();
        assert_eq!(with_cpu.toolchain.target_cpu["amdgcn-amd-amdhsa"], "gfx90a");

        let err = toolchain("targets = [\"amdgcn-amd-amdhsa\"]").unwrap_err().to_string();
        assert!(err.starts_with("[toolchain] targets: amdgcn-amd-amdhsa has no default CPU"), "{err}");
        assert!(err.ends_with("amdgcn-amd-amdhsa = \"gfx90a\"   # the GPU generation to build for"), "{err}");

        let err =
            toolchain("targets = []\n[toolchain.target-cpu]\namdgcn-amd-amdhsa = \"gfx90a\"").unwrap_err().to_string();
        assert_eq!(
            err,
            "[toolchain.target-cpu]: \"amdgcn-amd-amdhsa\" is not in [toolchain] targets: list it there or remove this line"
        );
        let err =
            toolchain("targets = [\"amdgcn-amd-amdhsa\"]\n[toolchain.target-cpu]\namdgcn-amd-amdhsa = \"gfx 90a\"")
                .unwrap_err()
                .to_string();
        assert!(err.contains("\"gfx 90a\" (for amdgcn-amd-amdhsa) is not a CPU name"), "{err}");
    }

    #[test]
    fn bad_checksum_is_named() {
        let text = MINIMAL.replace("8cfaf52ab168", "zz");
        let err = parse(&text).unwrap_err();
        assert!(err.to_string().starts_with("[base] orig-sha256 = \"zz"), "{err}");
    }
}
