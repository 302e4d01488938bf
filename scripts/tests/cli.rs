//! CLI tests: the real `patchq` binary on throwaway forks whose base is a
//! tiny fake rust tree packed as a tarball. Hermetic: own HOME and cache,
//! no global git config, fixed identities and dates.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use expect_test::expect;

const STAGE0_FILES: [&str; 3] = [
    "rustc-1.84.0-x86_64-unknown-linux-gnu.tar.xz",
    "rust-std-1.84.0-x86_64-unknown-linux-gnu.tar.xz",
    "cargo-1.84.0-x86_64-unknown-linux-gnu.tar.xz",
];
const FAKE_STAGE0: &[u8] = b"fake stage0 tarball";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

const TRAILERS: &str = "Topic: codegen\nUpstream: rust-lang/rust#137271\nStatus: open";

struct Fork {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    tarball: PathBuf,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "A U Thor")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_AUTHOR_DATE", "2025-03-01T12:00:00+01:00")
        .env("GIT_COMMITTER_NAME", "A U Thor")
        .env("GIT_COMMITTER_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_DATE", "2025-03-01T12:00:00+01:00")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn numbered(prefix: &str, n: usize) -> String {
    (1..=n).map(|i| format!("{prefix} line {i}\n")).collect()
}

const CONFIG: &str = r#"
[base]
version = "1.85.0"
commit = "4d91de4e48198da2e33413efdcd9cd2cc0c46688"
date = "2025-02-17T00:00:00+00:00"
debian-package = "rustc-web"
debian-version = "1.85.0+dfsg3-1~deb12u3"
debian-suite = "bookworm"
orig-sha256 = "8cfaf52ab168a12c3082b5956bcc16c8969d8791b2fe54ed5192672b25518af2"
stage0-sha256 = "03fcf88611ca49857db56ebebd8c754e946f18bdf42e1fe4e7f9a3b949d01bad"

[overlay]
remove = [".cargo/config.toml"]
"#;

impl Fork {
    fn new() -> Fork {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("fork");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();

        // A fake base: a few files, a vendor/ that must be left out, and
        // the .cargo/config.toml the overlay removes.
        let src = tmp.path().join("src").join("rustc-1.85.0-src");
        write(&src.join("compiler/a.rs"), &numbered("a", 30));
        write(&src.join("compiler/b.rs"), &numbered("b", 30));
        write(&src.join("Cargo.toml"), "[workspace]\nmembers = [\"compiler\", \"src/tools/miri\"]\n");
        write(&src.join(".cargo/config.toml"), "[source.crates-io]\nreplace-with = \"vendored-sources\"\n");
        write(&src.join("vendor/dep/lib.rs"), "// vendored\n");
        // A stand-in for x.py: it records its arguments and fails when a
        // patch has added a file named BROKEN.
        write(
            &src.join("x.py"),
            "import os, sys\n\
             open('x.py.log', 'a').write(' '.join(sys.argv[1:]) + '\\n')\n\
             if os.path.exists('BROKEN'):\n    print('error: fake build failure'); sys.exit(1)\n",
        );
        let stage0: String = STAGE0_FILES
            .iter()
            .map(|f| format!("dist/2025-01-09/{f}={}\n", sha256_hex(FAKE_STAGE0)))
            .collect();
        write(&src.join("src/stage0"), &format!("compiler_date=2025-01-09\ncompiler_version=1.84.0\n{stage0}"));
        let tarball = tmp.path().join("rustc-1.85.0-src.tar.xz");
        let status = Command::new("tar")
            .args(["-cJf"])
            .arg(&tarball)
            .arg("-C")
            .arg(src.parent().unwrap())
            .arg("rustc-1.85.0-src")
            .status()
            .unwrap();
        assert!(status.success());

        write(&root.join("patchq.toml"), CONFIG);
        write(&root.join("config.toml"), "[rust]\ndescription = \"x\"\n");
        write(&root.join("patches/series"), "# patchq series: one patch file per line, in the order they apply.\n");
        write(&root.join("src-overlay/Cargo.toml"), "[workspace]\nmembers = [\"compiler\"]\n");
        write(&root.join("src-overlay/.gitignore"), "/build/\n/config.toml\n");
        Fork { _tmp: tmp, root, home, tarball }
    }

    fn tree(&self) -> PathBuf {
        self.root.join("rust")
    }

    fn patchq(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_patchq"))
            .args(args)
            .current_dir(&self.root)
            .env("HOME", &self.home)
            .env("PATCHQ_CACHE_DIR", self.home.join("cache"))
            .env_remove("PATCHQ_WORK_TREE")
            .env_remove("XDG_CACHE_HOME")
            .output()
            .unwrap()
    }

    /// Runs patchq and asserts success; returns stdout + stderr.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.patchq(args);
        let text = both(&out);
        assert!(out.status.success(), "patchq {args:?} failed:\n{text}");
        text
    }

    /// Runs patchq and asserts the exit code; returns stdout + stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.patchq(args);
        let text = both(&out);
        assert_eq!(out.status.code(), Some(code), "patchq {args:?}:\n{text}");
        text
    }

    fn apply(&self) -> String {
        let tarball = self.tarball.to_string_lossy().into_owned();
        self.ok(&["apply", "--base-tarball", &tarball])
    }

    /// Commits an edit in the work tree as a new patch.
    fn commit_patch(&self, file: &str, from: &str, to: &str, subject: &str) {
        let path = self.tree().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no `{from}`");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        git(&self.tree(), &["commit", "-q", "-a", "-m", &format!("{subject}\n\nWhy.\n\n{TRAILERS}")]);
    }

    /// Two patches: one on a.rs, one on b.rs, written to patches/.
    fn with_two_patches(&self) {
        self.apply();
        self.commit_patch("compiler/a.rs", "a line 10\n", "a line 10 patched\n", "codegen: patch a");
        self.commit_patch("compiler/b.rs", "b line 20\n", "b line 20 patched\n", "codegen: patch b");
        self.ok(&["refresh"]);
    }

    fn head(&self) -> String {
        git(&self.tree(), &["rev-parse", "HEAD"]).trim().to_owned()
    }

    fn patch_path(&self, name: &str) -> PathBuf {
        self.root.join("patches").join(name)
    }
}

fn both(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn apply_makes_base_and_overlay_commits_without_vendor() {
    let fork = Fork::new();
    fork.apply();
    let tree = fork.tree();
    let log = git(&tree, &["log", "--format=%an|%ad|%s", "--date=iso"]);
    expect![[r#"
        patchq|2025-02-17 00:00:00 +0000|overlay: build fix-ups for the offline base
        patchq|2025-02-17 00:00:00 +0000|base: Rust 1.85.0 (4d91de4e4)
    "#]]
    .assert_eq(&log);
    assert!(!tree.join("vendor").exists(), "vendor/ must be left out");
    assert!(!tree.join(".cargo/config.toml").exists(), "the overlay removes .cargo/config.toml");
    assert_eq!(std::fs::read_to_string(tree.join("Cargo.toml")).unwrap(), "[workspace]\nmembers = [\"compiler\"]\n");
    assert_eq!(git(&tree, &["status", "--porcelain"]), "", "the tree is clean after apply");
}

#[test]
fn refresh_writes_patch_files_and_a_fresh_tree_reproduces_the_commits() {
    let fork = Fork::new();
    fork.with_two_patches();
    let series = std::fs::read_to_string(fork.root.join("patches/series")).unwrap();
    expect![[r#"
        # patchq series: one patch file per line, in the order they apply.
        # base-version: 1.85.0
        # base-commit: 4d91de4e48198da2e33413efdcd9cd2cc0c46688
        # base-source: tarball
        codegen-patch-a.patch
        codegen-patch-b.patch
    "#]]
    .assert_eq(&series.replace(&series.lines().find(|l| l.contains("sha256")).map(|l| format!("{l}\n")).unwrap_or_default(), ""));
    let patch = std::fs::read_to_string(fork.patch_path("codegen-patch-a.patch")).unwrap();
    assert!(patch.starts_with("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"), "{patch}");
    assert!(patch.contains("Subject: [PATCH] codegen: patch a\n") && patch.contains(TRAILERS), "{patch}");
    assert!(!patch.contains("\n-- \n"), "no git version signature: {patch}");
    fork.ok(&["refresh", "--check"]);

    // The work tree is derived: a new one from the same base and queue has
    // the very same commits.
    let head = fork.head();
    std::fs::remove_dir_all(fork.tree()).unwrap();
    fork.apply();
    assert_eq!(fork.head(), head);
    fork.ok(&["refresh", "--check"]);
}

#[test]
fn refresh_check_fails_after_an_amend_and_names_the_patch() {
    let fork = Fork::new();
    fork.with_two_patches();
    let tree = fork.tree();
    std::fs::write(tree.join("compiler/b.rs"), numbered("b", 30).replace("b line 20\n", "b line 20 changed\n")).unwrap();
    git(&tree, &["commit", "-q", "-a", "--amend", "--no-edit"]);
    let err = fork.fails(&["refresh", "--check"], 1);
    assert!(err.contains("patches/ is out of date") && err.contains("codegen-patch-b.patch"), "{err}");
    assert!(!err.contains("codegen-patch-a.patch"), "patch a did not change: {err}");
    fork.ok(&["refresh"]);
    fork.ok(&["refresh", "--check"]);
    assert!(std::fs::read_to_string(fork.patch_path("codegen-patch-b.patch")).unwrap().contains("+b line 20 changed"));
}

#[test]
fn apply_after_editing_one_patch_rewrites_only_its_files() {
    let fork = Fork::new();
    fork.with_two_patches();
    let (a, b) = (fork.tree().join("compiler/a.rs"), fork.tree().join("compiler/b.rs"));
    let (a_before, b_before) = (mtime(&a), mtime(&b));
    std::thread::sleep(std::time::Duration::from_millis(20));

    let path = fork.patch_path("codegen-patch-b.patch");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("+b line 20 patched", "+b line 20 patched again")).unwrap();
    let out = fork.apply();
    assert!(out.contains("1 kept, 1 applied, 1 files rewritten"), "{out}");
    assert_eq!(mtime(&a), a_before, "a.rs did not change and must keep its mtime");
    assert_ne!(mtime(&b), b_before);
    assert!(std::fs::read_to_string(&b).unwrap().contains("b line 20 patched again"));
}

#[test]
fn uncommitted_edits_are_never_overwritten() {
    let fork = Fork::new();
    fork.with_two_patches();
    let a = fork.tree().join("compiler/a.rs");
    std::fs::write(&a, "my unsaved work\n").unwrap();
    let err = fork.fails(&["apply"], 4);
    assert!(err.contains("has uncommitted edits") && err.contains("compiler/a.rs"), "{err}");
    assert!(err.contains("patchq refresh") && err.contains("stash"), "says how to keep them: {err}");
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "my unsaved work\n");
}

#[test]
fn commits_not_yet_in_patches_are_not_dropped() {
    let fork = Fork::new();
    fork.with_two_patches();
    fork.commit_patch("compiler/a.rs", "a line 3\n", "a line 3 new\n", "codegen: unsaved commit");
    let head = fork.head();
    let err = fork.fails(&["apply"], 4);
    assert!(err.contains("commits are not all in") && err.contains("patchq refresh"), "{err}");
    assert_eq!(fork.head(), head);
}

#[test]
fn a_patch_that_does_not_apply_stops_on_the_last_good_one_and_names_the_hunk() {
    let fork = Fork::new();
    fork.with_two_patches();
    let good = git(&fork.tree(), &["rev-parse", "HEAD~1"]).trim().to_owned();

    // Patch b's context no longer matches the base.
    let path = fork.patch_path("codegen-patch-b.patch");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace(" b line 19\n", " b line nineteen\n")).unwrap();
    let err = fork.fails(&["apply"], 3);
    assert!(err.contains("patch 2/2 `codegen-patch-b.patch` does not apply"), "{err}");
    assert!(err.contains("hunk `@@ -17,7 +17,7 @@") && err.contains("in compiler/b.rs fails"), "{err}");
    assert!(err.contains("left on the last good patch (`codegen-patch-a.patch`"), "{err}");
    assert_eq!(fork.head(), good);
    assert_eq!(git(&fork.tree(), &["status", "--porcelain"]), "", "nothing half-applied");
    assert!(!std::fs::read_to_string(fork.tree().join("compiler/b.rs")).unwrap().contains("patched"));
}

#[test]
fn check_passes_on_a_sound_queue() {
    let fork = Fork::new();
    fork.with_two_patches();
    let out = fork.ok(&["check"]);
    assert!(out.contains("check: 2 patches ok"), "{out}");
}

#[test]
fn check_names_unlisted_and_missing_patch_files() {
    let fork = Fork::new();
    fork.with_two_patches();
    std::fs::copy(fork.patch_path("codegen-patch-a.patch"), fork.patch_path("stray.patch")).unwrap();
    let err = fork.fails(&["check"], 1);
    assert!(err.contains("stray.patch is not listed in") && err.contains("series"), "{err}");
    std::fs::remove_file(fork.patch_path("stray.patch")).unwrap();

    std::fs::remove_file(fork.patch_path("codegen-patch-b.patch")).unwrap();
    let err = fork.fails(&["check"], 1);
    assert!(err.contains("lists `codegen-patch-b.patch`, but") && err.contains("does not exist"), "{err}");
}

#[test]
fn check_reports_bad_trailers_overlay_files_and_base_dependence() {
    let fork = Fork::new();
    fork.apply();
    fork.commit_patch("compiler/a.rs", "a line 10\n", "a line 10 patched\n", "codegen: patch a");
    // A patch that edits what the overlay owns (and so only applies on top of it).
    fork.commit_patch("Cargo.toml", "members = [\"compiler\"]", "members = [\"compiler\", \"x\"]", "codegen: touch cargo");
    fork.ok(&["refresh"]);
    let path = fork.patch_path("codegen-patch-a.patch");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("Status: open\n", "")).unwrap();

    let err = fork.fails(&["check"], 1);
    assert!(err.contains("codegen-patch-a.patch: missing trailer `Status:`"), "{err}");
    assert!(err.contains("codegen-touch-cargo.patch: touches `Cargo.toml`, which the overlay owns"), "{err}");
    assert!(err.contains("`codegen-touch-cargo.patch` does not apply") && err.contains("on the pristine base"), "{err}");
}

#[test]
fn wrong_checksum_of_the_cached_debian_base_is_named() {
    let fork = Fork::new();
    let cached = fork.home.join("cache/debian/1.85.0+dfsg3-1~deb12u3/rustc-web_1.85.0+dfsg3.orig.tar.xz");
    write(&cached, "truncated download");
    let err = fork.fails(&["apply"], 1);
    assert!(err.contains("rustc-web_1.85.0+dfsg3.orig.tar.xz has sha256"), "{err}");
    assert!(err.contains("expected 8cfaf52ab168") && err.contains("delete it and run again"), "{err}");
    assert!(!fork.tree().exists(), "no work tree from a bad base");
}

#[test]
fn unknown_config_key_names_file_and_key() {
    let fork = Fork::new();
    write(&fork.root.join("patchq.toml"), &format!("{CONFIG}\n[toolchain]\nname = \"x\"\nflavour = \"y\"\n"));
    let err = fork.fails(&["status"], 1);
    assert!(err.contains("patchq.toml: invalid configuration") && err.contains("unknown field `flavour`"), "{err}");
}

#[test]
fn a_second_run_on_a_locked_tree_refuses_with_no_wait() {
    let fork = Fork::new();
    fork.apply();
    let lock = std::fs::OpenOptions::new().write(true).open(fork.root.join(".rust.patchq-lock")).unwrap();
    lock.lock().unwrap();
    let err = fork.fails(&["--no-wait", "apply"], 5);
    assert!(err.contains("another patchq is working on") && err.contains(".rust.patchq-lock"), "{err}");
    lock.unlock().unwrap();
    fork.ok(&["--no-wait", "apply"]);
}

#[test]
fn a_git_checkout_works_as_base() {
    let fork = Fork::new();
    let checkout = fork.root.parent().unwrap().join("checkout");
    std::fs::create_dir_all(&checkout).unwrap();
    let status = Command::new("tar").arg("-xJf").arg(&fork.tarball).arg("-C").arg(&checkout).status().unwrap();
    assert!(status.success());
    let checkout = checkout.join("rustc-1.85.0-src");
    std::fs::remove_dir_all(checkout.join("vendor")).unwrap();
    git(&checkout, &["init", "-q"]);
    git(&checkout, &["add", "-A"]);
    git(&checkout, &["commit", "-q", "-m", "1.85.0"]);
    fork.ok(&["apply", "--base-git", &checkout.to_string_lossy()]);
    assert!(fork.tree().join("compiler/a.rs").is_file());
    let state = std::fs::read_to_string(fork.tree().join(".git/patchq/state.toml")).unwrap();
    assert!(state.contains("base = \"git "), "{state}");
}

#[test]
fn status_shows_the_series_with_upstream_state() {
    let fork = Fork::new();
    fork.with_two_patches();
    let out = fork.patchq(&["status"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let text = text.replace(&fork.tree().display().to_string(), "<tree>");
    let text: String = text.lines().map(|l| format!("{}\n", l.split(" at ").next().unwrap())).collect();
    expect![[r#"
        base: Rust 1.85.0 (4d91de4e48198da2e33413efdcd9cd2cc0c46688), tarball
        #  patch                  topic    upstream               status  work tree
        1  codegen-patch-a.patch  codegen  rust-lang/rust#137271  open    applied
        2  codegen-patch-b.patch  codegen  rust-lang/rust#137271  open    applied
        totals: 2 patches: 2 open
        work tree <tree>: up to date with the queue
    "#]]
    .assert_eq(&text);
}

#[test]
fn check_build_each_runs_x_py_on_every_prefix_and_remembers_what_passed() {
    let fork = Fork::new();
    fork.with_two_patches();
    for file in STAGE0_FILES {
        let path = fork.tree().join("build/cache/2025-01-09").join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, FAKE_STAGE0).unwrap();
    }
    let out = fork.ok(&["check", "--build-each"]);
    assert!(out.contains("prefix 1/2 (through codegen-patch-a.patch): x.py check compiler: builds"), "{out}");
    assert!(out.contains("prefix 2/2 (through codegen-patch-b.patch): x.py check compiler: builds"), "{out}");
    assert!(out.contains("all 2 prefixes build"), "{out}");
    let log = std::fs::read_to_string(fork.root.join(".rust.patchq-check/x.py.log")).unwrap();
    assert_eq!(log, "check compiler\ncheck compiler\n", "one x.py check per prefix");

    // Unchanged prefixes are not checked again; the output says so.
    let out = fork.ok(&["check", "--build-each"]);
    assert!(out.contains("prefix 1/2 (through codegen-patch-a.patch): x.py check passed before"), "{out}");
    assert!(out.contains("prefix 2/2 (through codegen-patch-b.patch): x.py check passed before"), "{out}");

    // A corrupt stage0 tarball is named, with the fix.
    let rustc_tarball = fork.tree().join("build/cache/2025-01-09").join(STAGE0_FILES[0]);
    std::fs::write(&rustc_tarball, b"truncated").unwrap();
    let err = fork.fails(&["check", "--build-each"], 1);
    assert!(err.contains("stage0 does not match src/stage0"), "{err}");
    assert!(err.contains("rustc-1.84.0-x86_64-unknown-linux-gnu.tar.xz has sha256"), "{err}");
    assert!(err.contains("delete it and run again"), "{err}");
    std::fs::write(&rustc_tarball, FAKE_STAGE0).unwrap();

    // A third patch that breaks the build is named.
    write(&fork.tree().join("BROKEN"), "");
    git(&fork.tree(), &["add", "BROKEN"]);
    git(&fork.tree(), &["commit", "-q", "-m", &format!("codegen: break it\n\nWhy.\n\n{TRAILERS}")]);
    fork.ok(&["refresh"]);
    let err = fork.fails(&["check", "--build-each"], 1);
    assert!(err.contains("prefix 3/3 (through codegen-break-it.patch) does not build"), "{err}");
    assert!(err.contains("the queue is broken at codegen-break-it.patch"), "{err}");
}

#[test]
fn check_on_a_fresh_fork_leaves_a_tree_that_build_files_do_not_dirty() {
    let fork = Fork::new();
    fork.with_two_patches();
    std::fs::remove_dir_all(fork.tree()).unwrap();

    // `check` creates the tree (from the cached base) and brings it to the queue.
    // The default base, Debian's, comes from the download cache: put the fake there.
    let cached = fork.home.join("cache/debian/1.85.0+dfsg3-1~deb12u3/rustc-web_1.85.0+dfsg3.orig.tar.xz");
    write(&cached, "");
    std::fs::copy(&fork.tarball, &cached).unwrap();
    let pinned = std::fs::read_to_string(fork.root.join("patchq.toml")).unwrap();
    let fake_sha = sha256_hex(&std::fs::read(&fork.tarball).unwrap());
    write(&fork.root.join("patchq.toml"), &pinned.replace("8cfaf52ab168a12c3082b5956bcc16c8969d8791b2fe54ed5192672b25518af2", &fake_sha));
    fork.ok(&["check"]);
    let subject = git(&fork.tree(), &["log", "-1", "--format=%s"]);
    assert_eq!(subject, "codegen: patch b\n", "the tree check made is at the queue's head");

    // What patchq writes into the tree (stage0, the build, config.toml) is not an edit.
    write(&fork.tree().join("build/cache/2025-01-09/stage0.tar.xz"), "x");
    write(&fork.tree().join("config.toml"), "x");
    fork.ok(&["apply"]);
}
