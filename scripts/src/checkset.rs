//! What `x.py check` is asked to check on a prefix of the queue.
//!
//! `x.py check compiler` checks every compiler crate twice: as a library,
//! and with `--all-targets` also as its own unit tests (`--test`, with
//! `cfg(test)` set), each test unit a full second type-check of its crate.
//! After a patch to a low crate (`rustc_target`, `rustc_middle`, `core`),
//! both copies of everything above it are checked again.
//!
//! Most compiler crates have no test code of their own, and for them the
//! second check cannot fail where the first passed: the same sources with
//! `cfg(test)` mentioned nowhere, plus what `#[derive(Diagnostic)]` and
//! `fluent_messages!` generate under `cfg(test)` (a `#[test]` that reads the
//! `<slug>_refs` constants, which the same `fluent_messages!` defines next to
//! every slug the library itself refers to). So each prefix is checked as
//! `x.py check compiler/rustc <crates with test code>`: every compiler
//! crate as a library (all of them are dependencies of `rustc-main`; one
//! that is not is no part of the compiler, and `x.py build` would not build
//! it either), and, with `--all-targets`, the unit tests, benches and
//! examples of each crate that has any. A crate counts as having test code
//! when anything in it could mean `cfg(test)` (conservatively: a `cfg(...)`,
//! `cfg_attr(...)` or `cfg!(...)` whose predicate has the word `test`, a
//! `#[test]` or `#[bench]`), or when it has targets beyond its library
//! (`tests/`, `benches/`, `examples/`, binaries). Counting too many only
//! costs time.

use std::path::Path;

use anyhow::{Context, Result};

/// Part of the key under which a checked tree is remembered: a tree that
/// passed another selection is checked again.
pub const RULE: &str = "x.py check compiler/rustc + crates with test code (v1)";

/// The arguments of `x.py` for checking the compiler of `tree`.
pub fn xpy_args(tree: &Path) -> Result<Vec<String>> {
    let compiler = tree.join("compiler");
    let main = compiler.join("rustc").join("Cargo.toml");
    anyhow::ensure!(
        main.is_file(),
        "{} is missing: `x.py check` is given compiler/rustc (rustc-main, which depends on every compiler crate)",
        main.display()
    );
    let excluded = workspace_excludes(tree)?;
    let mut crates = Vec::new();
    for entry in fs_err::read_dir(&compiler)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = format!("compiler/{name}");
        let dir = entry.path();
        if name == "rustc" || !dir.join("Cargo.toml").is_file() || excluded.contains(&rel) {
            continue;
        }
        if has_test_code(&dir)? {
            crates.push(rel);
        }
    }
    crates.sort();
    let mut args = vec!["check".to_owned(), "compiler/rustc".to_owned()];
    args.extend(crates);
    Ok(args)
}

/// `[workspace] exclude` of the tree's root Cargo.toml: crates x.py does
/// not know by path (the cranelift and gcc backends).
fn workspace_excludes(tree: &Path) -> Result<Vec<String>> {
    let path = tree.join("Cargo.toml");
    let text = fs_err::read_to_string(&path)?;
    let doc: toml::Table = toml::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    let exclude = doc.get("workspace").and_then(|w| w.get("exclude")).and_then(|e| e.as_array());
    Ok(exclude.into_iter().flatten().filter_map(|v| v.as_str()).map(|s| s.trim_end_matches('/').to_owned()).collect())
}

fn has_test_code(dir: &Path) -> Result<bool> {
    if ["tests", "benches", "examples", "src/bin", "src/main.rs"].iter().any(|p| dir.join(p).exists()) {
        return Ok(true);
    }
    let manifest = fs_err::read_to_string(dir.join("Cargo.toml"))?;
    if ["[[bin]]", "[[test]]", "[[bench]]", "[[example]]"].iter().any(|t| manifest.contains(t)) {
        return Ok(true);
    }
    any_rust_file_mentions_test(dir)
}

fn any_rust_file_mentions_test(dir: &Path) -> Result<bool> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if any_rust_file_mentions_test(&path)? {
                return Ok(true);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            // Not UTF-8 is not Rust that compiles; count it, to be safe.
            let Ok(text) = std::fs::read_to_string(&path) else { return Ok(true) };
            if mentions_test(&text) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Whether Rust source `text` has a `#[test]` or `#[bench]`, or a
/// `cfg`/`cfg_attr`/`cfg!` predicate with the word `test` in it (over
/// several lines too, and in comments: a false yes only costs time).
fn mentions_test(text: &str) -> bool {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    for (at, _) in text.match_indices("#[") {
        let attr = text[at + 2..].split(']').next().unwrap_or("");
        let attr: String = attr.chars().filter(|c| !c.is_whitespace()).collect();
        if attr == "test" || attr == "bench" {
            return true;
        }
    }
    for (at, _) in text.match_indices("cfg") {
        if at > 0 && ident(bytes[at - 1]) {
            continue;
        }
        let mut i = at + 3;
        for suffix in ["_attr", "!"] {
            if text[i..].starts_with(suffix) {
                i += suffix.len();
                break;
            }
        }
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'(' {
            continue;
        }
        let mut depth = 0usize;
        let start = i;
        let end = loop {
            match bytes.get(i) {
                None => break bytes.len(),
                Some(b'(') => depth += 1,
                Some(b')') => {
                    depth -= 1;
                    if depth == 0 {
                        break i;
                    }
                }
                Some(_) => {}
            }
            i += 1;
        };
        let predicate = &text[start..end];
        let has_word = predicate.match_indices("test").any(|(j, _)| {
            let (before, after) = (start + j, start + j + 4);
            (before == 0 || !ident(bytes[before - 1])) && (after >= bytes.len() || !ident(bytes[after]))
        });
        if has_word {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_code_is_found_in_every_spelling() {
        for yes in [
            "#[cfg(test)]\nmod tests;\n",
            "#[test]\nfn t() {}\n",
            "#[ test ]\nfn t() {}\n",
            "#[bench]\nfn b() {}\n",
            "#![cfg_attr(test, feature(test))]\n",
            "if cfg!(test) { }\n",
            "#[cfg(all(\n    test,\n    target_os = \"linux\"\n))]\nfn f() {}\n",
            "#[cfg(not(test))]\nfn f() {}\n",
            "// #[cfg(test)] in a comment counts too\n",
        ] {
            assert!(mentions_test(yes), "{yes:?}");
        }
    }

    #[test]
    fn other_cfgs_and_words_are_not_test_code() {
        for no in [
            "#[cfg(feature = \"llvm\")]\nfn f() {}\n",
            "#[cfg(testing)]\nfn f() {}\n",
            "#[cfg(not(bootstrap))]\nfn f() {} // a test of nothing\n",
            "fn cfg_test() {}\nlet test = 1;\n",
            "#[cfg_attr(bootstrap, allow(unused))]\n#[test_case]\nfn f() {}\n",
            "#[cfg(target_os = \"linux\"",
            "fn f() {}\n",
        ] {
            assert!(!mentions_test(no), "{no:?}");
        }
    }

    #[test]
    fn only_crates_with_test_code_are_checked_with_their_tests() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path();
        let write = |rel: &str, text: &str| {
            let path = tree.join(rel);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, text).unwrap();
        };
        write(
            "Cargo.toml",
            "[workspace]\nmembers = [\"compiler/rustc\"]\nexclude = [\"compiler/rustc_codegen_gcc\", \"build\"]\n",
        );
        write("compiler/rustc/Cargo.toml", "[package]\nname = \"rustc-main\"\n");
        write("compiler/rustc_plain/Cargo.toml", "[package]\nname = \"rustc_plain\"\n");
        write("compiler/rustc_plain/src/lib.rs", "#[derive(Diagnostic)]\npub struct E;\n");
        write("compiler/rustc_unit/Cargo.toml", "[package]\nname = \"rustc_unit\"\n");
        write("compiler/rustc_unit/src/lib.rs", "#[cfg(test)]\nmod tests;\n");
        write("compiler/rustc_unit/src/tests.rs", "#[test]\nfn t() {}\n");
        write("compiler/rustc_deep/Cargo.toml", "[package]\nname = \"rustc_deep\"\n");
        write("compiler/rustc_deep/src/a/b.rs", "#[cfg(all(test, unix))]\nfn f() {}\n");
        write("compiler/rustc_benched/Cargo.toml", "[package]\nname = \"rustc_benched\"\n");
        write("compiler/rustc_benched/src/lib.rs", "");
        write("compiler/rustc_benched/benches/b.rs", "");
        write("compiler/rustc_codegen_gcc/Cargo.toml", "[package]\nname = \"rustc_codegen_gcc\"\n");
        write("compiler/rustc_codegen_gcc/src/lib.rs", "#[test]\nfn t() {}\n");
        write("compiler/no_crate/lib.rs", "#[test]\nfn t() {}\n");
        assert_eq!(
            xpy_args(tree).unwrap(),
            ["check", "compiler/rustc", "compiler/rustc_benched", "compiler/rustc_deep", "compiler/rustc_unit"]
        );

        fs_err::remove_file(tree.join("compiler/rustc/Cargo.toml")).unwrap();
        let err = xpy_args(tree).unwrap_err().to_string();
        assert!(err.contains("compiler/rustc/Cargo.toml is missing"), "{err}");
    }
}
