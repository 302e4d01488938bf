//! The series file: which patches make up the queue, in which order, and
//! which base they apply to.
//!
//! Pure code: it parses and renders text and never touches the filesystem.
//!
//! ```text
//! # patchq series: one patch file name per line, in application order.
//! # base-version: 1.85.0
//! # base-commit: 4d91de4e48198da2e33413efdcd9cd2cc0c46688
//! # base-source: debian rustc-web 1.85.0+dfsg3-1~deb12u3
//! # base-sha256: 8cfaf52a…
//! codegen-gep-inbounds-nuw.patch
//! ```
//!
//! Lines starting with `#` are comments; `# key: value` comments before the
//! first entry form the header. Blank lines are ignored.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The header keys that record the base, in the order they are written.
pub const BASE_KEYS: [&str; 4] = ["base-version", "base-commit", "base-source", "base-sha256"];

/// The base a queue applies to, as the series header records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BaseRecord {
    /// Upstream version, e.g. `1.85.0`.
    pub version: String,
    /// Upstream commit, when the source says (tarballs carry `git-commit-hash`).
    pub commit: Option<String>,
    /// Where the sources came from: `debian rustc-web 1.85.0+dfsg3-1~deb12u3`,
    /// `tarball`, `git <commit>`.
    pub source: String,
    /// Checksum of the source archive, for archive sources.
    pub sha256: Option<String>,
}

impl BaseRecord {
    /// The four header values, in [`BASE_KEYS`] order; absent ones are `None`.
    fn values(&self) -> [Option<&str>; 4] {
        [Some(self.version.as_str()), self.commit.as_deref(), Some(self.source.as_str()), self.sha256.as_deref()]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Header comment lines, verbatim (without the trailing newline).
    pub header: Vec<String>,
    /// Patch file names, in order.
    pub patches: Vec<String>,
}

impl Series {
    pub fn parse(text: &str) -> Result<Series> {
        let mut header = Vec::new();
        let mut patches = Vec::new();
        let mut seen = BTreeSet::new();
        for (idx, line) in text.lines().enumerate() {
            let lineno = idx + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            if trimmed.starts_with('#') {
                if patches.is_empty() {
                    header.push(line.trim_end().to_owned());
                }
                continue;
            }
            if let Err(why) = check_patch_name(trimmed) {
                bail!("series line {lineno}: `{trimmed}` {why}");
            }
            if !seen.insert(trimmed.to_owned()) {
                bail!("series line {lineno}: `{trimmed}` is listed twice");
            }
            patches.push(trimmed.to_owned());
        }
        Ok(Series { header, patches })
    }

    /// The value of a `# key: value` header line.
    pub fn header_value(&self, key: &str) -> Option<&str> {
        self.header.iter().find_map(|line| {
            let rest = line.trim_start_matches('#').trim();
            let (k, v) = rest.split_once(':')?;
            (k.trim() == key).then(|| v.trim())
        })
    }

    /// Replaces (or appends) a `# key: value` header line.
    pub fn set_header_value(&mut self, key: &str, value: &str) {
        let line = format!("# {key}: {value}");
        let existing = self.header.iter().position(|l| header_key(l) == Some(key));
        match existing {
            Some(i) => self.header[i] = line,
            None => self.header.push(line),
        }
    }

    /// The base recorded in the header, if the header names a version.
    pub fn base(&self) -> Option<BaseRecord> {
        let [version, commit, source, sha256] = BASE_KEYS.map(|k| self.header_value(k).map(str::to_owned));
        Some(BaseRecord { version: version?, commit, source: source.unwrap_or_default(), sha256 })
    }

    /// Writes `base` into the header; keys it leaves unset are removed.
    pub fn set_base(&mut self, base: &BaseRecord) {
        for (key, value) in BASE_KEYS.iter().zip(base.values()) {
            match value {
                Some(value) => self.set_header_value(key, value),
                None => self.header.retain(|l| header_key(l) != Some(key)),
            }
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            out.push_str(line);
            out.push('\n');
        }
        for name in &self.patches {
            out.push_str(name);
            out.push('\n');
        }
        out
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.patches.iter().position(|p| p == name)
    }
}

/// The key of a `# key: value` header line.
fn header_key(line: &str) -> Option<&str> {
    line.trim_start_matches('#').trim().split_once(':').map(|(k, _)| k.trim())
}

/// Patch file names are stable identifiers: lowercase words joined by `-`,
/// ending in `.patch`, with no directory part.
pub fn check_patch_name(name: &str) -> Result<(), &'static str> {
    let Some(stem) = name.strip_suffix(".patch") else {
        return Err("is not a patch file name (it must end in `.patch`)");
    };
    let valid = !stem.is_empty()
        && !stem.starts_with('-')
        && stem.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid { Ok(()) } else { Err("must be lowercase letters, digits and `-` before `.patch`") }
}

/// A file name for a new patch, made from its topic and subject.
pub fn patch_name_for(topic: &str, subject: &str) -> String {
    let mut slug = String::new();
    let mut cut = false;
    for word in
        subject.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_ascii_lowercase)
    {
        if slug.len() + word.len() > 48 {
            cut = true;
            break;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(&word);
    }
    // A name cut short should not end mid-phrase (`…-nuw-for`).
    const FILLER: [&str; 9] = ["a", "an", "and", "for", "in", "of", "on", "the", "to"];
    while let Some((rest, last)) = slug.rsplit_once('-') {
        if !cut || !FILLER.contains(&last) {
            break;
        }
        slug.truncate(rest.len());
    }
    if slug.is_empty() {
        slug.push_str("patch");
    }
    if slug.starts_with(&format!("{topic}-")) || topic.is_empty() {
        format!("{slug}.patch")
    } else {
        format!("{topic}-{slug}.patch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# patchq series
# base-version: 1.85.0
# base-commit: 4d91de4e48198da2e33413efdcd9cd2cc0c46688

codegen-gep-inbounds-nuw.patch
# a comment between entries
gpu-kernel-abi.patch
";

    #[test]
    fn parses_header_and_entries() {
        let s = Series::parse(TEXT).unwrap();
        assert_eq!(s.patches, ["codegen-gep-inbounds-nuw.patch", "gpu-kernel-abi.patch"]);
        assert_eq!(s.header_value("base-version"), Some("1.85.0"));
        assert_eq!(s.header_value("base-sha256"), None);
        assert_eq!(s.position("gpu-kernel-abi.patch"), Some(1));
    }

    #[test]
    fn render_round_trips_header_and_entries() {
        let mut s = Series::parse(TEXT).unwrap();
        s.set_header_value("base-version", "1.86.0");
        s.set_header_value("base-sha256", "abc");
        let again = Series::parse(&s.render()).unwrap();
        assert_eq!(again.header_value("base-version"), Some("1.86.0"));
        assert_eq!(again.header_value("base-sha256"), Some("abc"));
        assert_eq!(again.patches, s.patches);
    }

    #[test]
    fn base_record_round_trips_and_drops_unknown_values() {
        let mut s = Series::parse(TEXT).unwrap();
        let base = s.base().unwrap();
        assert_eq!(base.version, "1.85.0");
        assert_eq!(base.commit.as_deref(), Some("4d91de4e48198da2e33413efdcd9cd2cc0c46688"));
        let moved = BaseRecord { version: "1.86.0".into(), commit: None, source: "git abc".into(), sha256: None };
        s.set_base(&moved);
        let again = Series::parse(&s.render()).unwrap();
        assert_eq!(again.base(), Some(moved));
        assert!(!again.render().contains("base-commit"), "{}", again.render());
    }

    #[test]
    fn rejects_duplicates_and_bad_names() {
        let err = Series::parse("a.patch\na.patch\n").unwrap_err();
        assert_eq!(err.to_string(), "series line 2: `a.patch` is listed twice");
        let err = Series::parse("Foo.diff\n").unwrap_err();
        assert!(err.to_string().contains("must end in `.patch`"), "{err}");
        let err = Series::parse("Foo.patch\n").unwrap_err();
        assert!(err.to_string().contains("lowercase"), "{err}");
    }

    #[test]
    fn new_patch_names_come_from_topic_and_subject() {
        assert_eq!(
            patch_name_for("codegen", "Emit `getelementptr inbounds nuw` for pointer::add"),
            "codegen-emit-getelementptr-inbounds-nuw-for-pointer-add.patch"
        );
        assert_eq!(patch_name_for("gpu", "gpu: add the ABI"), "gpu-add-the-abi.patch");
        assert_eq!(
            patch_name_for("codegen", "codegen: emit `getelementptr inbounds nuw` for `pointer::add`"),
            "codegen-emit-getelementptr-inbounds-nuw.patch"
        );
    }
}
