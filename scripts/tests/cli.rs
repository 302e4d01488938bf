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
    /// The unpacked fake base the tarball was made from.
    src: PathBuf,
}

const BASE_COMMIT: &str = "4d91de4e48198da2e33413efdcd9cd2cc0c46688";

/// Packs `dir` as `<out>` the way upstream's source tarballs are laid out.
fn make_tarball(dir: &Path, out: &Path) {
    let status = Command::new("tar")
        .args(["-cJf"])
        .arg(out)
        .arg("-C")
        .arg(dir.parent().unwrap())
        .arg(dir.file_name().unwrap())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Clears the environment but PATH (and TMPDIR): no `GIT_*`, `CARGO_*`,
/// `PATCHQ_*` or locale of whoever runs the tests reaches what they start.
fn hermetic(cmd: &mut Command) -> &mut Command {
    cmd.env_clear().env("LC_ALL", "C");
    for key in ["PATH", "TMPDIR"] {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    cmd
}

fn git(dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    hermetic(&mut cmd);
    let out = cmd
        .args(args)
        .current_dir(dir)
        .env("HOME", "/nonexistent")
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
        // Crates as `x.py check` is given them: rustc-main, and one with unit tests.
        write(&src.join("compiler/rustc/Cargo.toml"), "[package]\nname = \"rustc-main\"\n");
        write(&src.join("compiler/rustc_unit/Cargo.toml"), "[package]\nname = \"rustc_unit\"\n");
        write(&src.join("compiler/rustc_unit/src/lib.rs"), "#[cfg(test)]\nmod tests;\n");
        write(&src.join("Cargo.toml"), "[workspace]\nmembers = [\"compiler\", \"src/tools/miri\"]\n");
        write(&src.join(".cargo/config.toml"), "[source.crates-io]\nreplace-with = \"vendored-sources\"\n");
        write(&src.join("vendor/dep/lib.rs"), "// vendored\n");
        // A stand-in for x.py: it records its arguments (and the ccache
        // directory it is given, in x.py.ccache) and fails when a
        // patch has added a file named BROKEN. With FAKE_XPY_HOLD=<path> it
        // says it started (`<path>.started`) and waits until <path> exists.
        write(
            &src.join("x.py"),
            "import os, sys, time\n\
             open('x.py.log', 'a').write(' '.join(sys.argv[1:]) + '\\n')\n\
             open('x.py.ccache', 'w').write(os.environ.get('CCACHE_DIR', '(unset)'))\n\
             hold = os.environ.get('FAKE_XPY_HOLD')\n\
             if hold:\n    open(hold + '.started', 'w').close()\n    \
             while not os.path.exists(hold): time.sleep(0.05)\n\
             if os.path.exists('BROKEN'):\n    print('error: fake build failure'); sys.exit(1)\n",
        );
        let stage0: String =
            STAGE0_FILES.iter().map(|f| format!("dist/2025-01-09/{f}={}\n", sha256_hex(FAKE_STAGE0))).collect();
        write(&src.join("src/stage0"), &format!("compiler_date=2025-01-09\ncompiler_version=1.84.0\n{stage0}"));
        // What upstream's tarballs say about themselves.
        write(&src.join("version"), "1.85.0 (4d91de4e4 2025-02-17)\n");
        write(&src.join("git-commit-hash"), &format!("{BASE_COMMIT}\n"));
        write(&src.join("src/version"), "1.85.0\n");
        let tarball = tmp.path().join("rustc-1.85.0-src.tar.xz");
        make_tarball(&src, &tarball);

        write(&root.join("patchq.toml"), CONFIG);
        write(&root.join("bootstrap.template.toml"), "[rust]\ndescription = \"x\"\n");
        write(&root.join("patches/series"), "# patchq series: one patch file per line, in the order they apply.\n");
        write(&root.join("src-overlay/Cargo.toml"), "[workspace]\nmembers = [\"compiler\"]\n");
        write(&root.join("src-overlay/.gitignore"), "/build/\n/config.toml\n");
        Fork { _tmp: tmp, root, home, tarball, src }
    }

    /// Another base: the fake one at `version`, changed by `edit`, as a tarball.
    fn base_variant(&self, version: &str, edit: impl Fn(&Path)) -> PathBuf {
        let top = self.root.parent().unwrap().join(format!("v{version}")).join(format!("rustc-{version}-src"));
        std::fs::create_dir_all(top.parent().unwrap()).unwrap();
        assert!(Command::new("cp").arg("-r").arg(&self.src).arg(&top).status().unwrap().success());
        write(&top.join("version"), &format!("{version} (abcdef012 2025-04-03)\n"));
        write(&top.join("git-commit-hash"), "abcdef0123456789abcdef0123456789abcdef01\n");
        edit(&top);
        let tarball = top.parent().unwrap().join(format!("rustc-{version}-src.tar.xz"));
        make_tarball(&top, &tarball);
        tarball
    }

    fn tree(&self) -> PathBuf {
        self.root.join("rust")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_patchq"));
        cmd.args(args).current_dir(&self.root);
        hermetic(&mut cmd).env("HOME", &self.home).env("PATCHQ_CACHE_DIR", self.home.join("cache"));
        cmd
    }

    fn patchq(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs patchq with stdout and stderr pipes whose reader has gone
    /// (`patchq … 2>&1 | head -0`).
    fn with_closed_output(&self, args: &[&str]) -> std::process::ExitStatus {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = self.command(args).stdout(writer.try_clone().unwrap()).stderr(writer).spawn().unwrap();
        child.wait().unwrap()
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
        self.commit_with(file, from, to, &format!("{subject}\n\nWhy.\n\n{TRAILERS}"));
    }

    /// Commits an edit in the work tree with a full commit message.
    fn commit_with(&self, file: &str, from: &str, to: &str, message: &str) {
        let path = self.tree().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no `{from}`");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        git(&self.tree(), &["commit", "-q", "-a", "-m", message]);
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }

    /// Two patches of one upstream PR: one on a.rs, one on b.rs, written to patches/.
    /// The stage0 tarballs src/stage0 names, in the work tree's download cache.
    fn fake_stage0(&self) {
        for file in STAGE0_FILES {
            write(&self.tree().join("build/cache/2025-01-09").join(file), std::str::from_utf8(FAKE_STAGE0).unwrap());
        }
    }

    fn with_two_patches(&self) {
        self.apply();
        let message = format!("codegen: patch a\n\nWhy.\n\n{TRAILERS}\nPr-title: codegen: patches a and b");
        self.commit_with("compiler/a.rs", "a line 10\n", "a line 10 patched\n", &message);
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
    .assert_eq(
        &series
            .replace(&series.lines().find(|l| l.contains("sha256")).map(|l| format!("{l}\n")).unwrap_or_default(), ""),
    );
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
    std::fs::write(tree.join("compiler/b.rs"), numbered("b", 30).replace("b line 20\n", "b line 20 changed\n"))
        .unwrap();
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
    fork.commit_patch(
        "Cargo.toml",
        "members = [\"compiler\"]",
        "members = [\"compiler\", \"x\"]",
        "codegen: touch cargo",
    );
    fork.ok(&["refresh"]);
    let path = fork.patch_path("codegen-patch-a.patch");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("Status: open\n", "")).unwrap();

    let err = fork.fails(&["check"], 1);
    assert!(err.contains("codegen-patch-a.patch: missing trailer `Status:`"), "{err}");
    assert!(err.contains("codegen-touch-cargo.patch: touches `Cargo.toml`, which the overlay owns"), "{err}");
    assert!(
        err.contains("`codegen-touch-cargo.patch` does not apply") && err.contains("on the pristine base"),
        "{err}"
    );

    // A file the overlay shares with the patches may be edited, but the
    // patch must still apply to the pristine base.
    let config = std::fs::read_to_string(fork.root.join("patchq.toml")).unwrap();
    write(&fork.root.join("patchq.toml"), &config.replace("[overlay]\n", "[overlay]\nshared = [\"Cargo.toml\"]\n"));
    let err = fork.fails(&["check"], 1);
    assert!(!err.contains("which the overlay owns"), "{err}");
    assert!(
        err.contains("`codegen-touch-cargo.patch` does not apply") && err.contains("on the pristine base"),
        "{err}"
    );
}

#[test]
fn check_and_export_want_a_pr_of_several_patches_named_on_its_first() {
    let fork = fork_with_prs();
    let first = fork.patch_path("gpu-patch-b.patch");
    let titled = std::fs::read_to_string(&first).unwrap();
    let untitled = titled.replace("Pr-title: gpu: patches b and c\n", "");
    assert_ne!(titled, untitled);

    // No title: both commands name the PR's first patch and all its patches.
    std::fs::write(&first, &untitled).unwrap();
    let err = fork.fails(&["check"], 1);
    assert!(
        err.contains(
            "gpu-patch-b.patch: first of the 2 patches of rust-lang/rust#200 (gpu-patch-b.patch, gpu-patch-c.patch): \
             it needs a `Pr-title:` trailer"
        ),
        "{err}"
    );
    let err = fork.fails(&["export", "codegen"], 1);
    assert!(err.contains("it needs a `Pr-title:` trailer") && err.contains("(`patchq check`)"), "{err}");

    // The title on the second patch: check says where it belongs.
    let second = fork.patch_path("gpu-patch-c.patch");
    let text = std::fs::read_to_string(&second).unwrap();
    std::fs::write(
        &second,
        text.replace("Status: not-forwarded", "Pr-title: gpu: patches b and c\nStatus: not-forwarded"),
    )
    .unwrap();
    let err = fork.fails(&["check"], 1);
    assert!(
        err.contains(
            "gpu-patch-c.patch: `Pr-title:` belongs on the first patch of rust-lang/rust#200, gpu-patch-b.patch"
        ),
        "{err}"
    );
    std::fs::write(&second, text).unwrap();

    // Empty, or over two lines: the patch's trailers are invalid.
    std::fs::write(&first, titled.replace("Pr-title: gpu: patches b and c\n", "Pr-title:\n")).unwrap();
    let err = fork.fails(&["check"], 1);
    assert!(err.contains("gpu-patch-b.patch: `Pr-title:` is empty"), "{err}");
    std::fs::write(&first, titled.replace("Pr-title: gpu: patches b and c\n", "Pr-title: gpu: patches b\n and c\n"))
        .unwrap();
    let err = fork.fails(&["check"], 1);
    assert!(err.contains("gpu-patch-b.patch: trailer `Pr-title:` goes on over a second line (`and c`)"), "{err}");

    // A single-patch PR may have a title, and export uses it.
    std::fs::write(&first, &titled).unwrap();
    let single = fork.patch_path("codegen-patch-a.patch");
    let text = std::fs::read_to_string(&single).unwrap();
    std::fs::write(&single, text.replace("Status: open", "Pr-title: codegen: the PR of patch a\nStatus: open"))
        .unwrap();
    let out = fork.ok(&["check"]);
    assert!(out.contains("check: 4 patches ok"), "{out}");
    fork.ok(&["export", "codegen-patch-a"]);
    let description = fork.read("export/codegen-patch-a.md");
    assert!(description.starts_with("codegen: the PR of patch a\n\nWhy a.\n"), "{description}");
    let message = git(&fork.tree(), &["log", "-1", "--format=%B", "pr/codegen-patch-a"]);
    assert_eq!(message, "codegen: patch a\n\nWhy a.\n\nr? @reviewer\n\n", "no fork trailer reaches upstream");
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
    fork.fake_stage0();
    let out = fork.ok(&["check", "--build-each"]);
    assert!(
        out.contains(
            "prefix 1/2 (through codegen-patch-a.patch): x.py check compiler (libraries; the tests of 1 crate): builds"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "prefix 2/2 (through codegen-patch-b.patch): x.py check compiler (libraries; the tests of 1 crate): builds"
        ),
        "{out}"
    );
    assert!(out.contains("all 2 prefixes build"), "{out}");
    let log = std::fs::read_to_string(fork.root.join(".rust.patchq-check/x.py.log")).unwrap();
    assert_eq!(
        log, "check compiler/rustc compiler/rustc_unit\ncheck compiler/rustc compiler/rustc_unit\n",
        "one x.py check per prefix"
    );
    // The C++ of each prefix goes through ccache, whose cache is the check tree's own.
    let check_tree = fork.root.join(".rust.patchq-check");
    assert!(fork.read(".rust.patchq-check/config.toml").contains("ccache = \"ccache\""));
    assert_eq!(fork.read(".rust.patchq-check/x.py.ccache"), check_tree.join("build/ccache").display().to_string());

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
fn check_build_each_leaves_the_work_tree_free_while_x_py_runs() {
    let fork = Fork::new();
    fork.with_two_patches();
    fork.fake_stage0();
    let hold = fork.root.with_file_name("hold");
    let started = fork.root.with_file_name("hold.started");
    // However the test ends, the held x.py is let go and the walk waited
    // for (it ends once x.py sees the file) before the fork's directory
    // goes: no process is left waiting for a file in a deleted directory.
    struct Walk<'a> {
        child: Option<std::process::Child>,
        hold: &'a Path,
    }
    impl Drop for Walk<'_> {
        fn drop(&mut self) {
            let _ = std::fs::write(self.hold, "");
            if let Some(child) = &mut self.child {
                let _ = child.wait();
            }
        }
    }
    let child = fork
        .command(&["check", "--build-each"])
        .env("FAKE_XPY_HOLD", &hold)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut walk = Walk { child: Some(child), hold: &hold };
    let since = std::time::Instant::now();
    while !started.exists() {
        assert!(since.elapsed().as_secs() < 60, "x.py in the check tree did not start");
        let running = walk.child.as_mut().unwrap().try_wait().unwrap().is_none();
        assert!(running, "check --build-each ended before x.py ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // x.py runs in the checkout: commands on the work tree go ahead…
    fork.ok(&["--no-wait", "apply"]);
    fork.ok(&["--no-wait", "check"]);
    // …and a second walk, which needs the checkout, is refused with its lock named.
    let err = fork.fails(&["--no-wait", "check", "--build-each"], 5);
    assert!(err.contains("another patchq is working on") && err.contains(".rust.patchq-check-lock"), "{err}");

    write(&hold, "");
    let out = walk.child.take().unwrap().wait_with_output().unwrap();
    let text = both(&out);
    assert!(out.status.success(), "check --build-each failed:\n{text}");
    assert!(text.contains("the work tree is free for other commands; x.py check runs in"), "{text}");
    assert!(text.contains("all 2 prefixes build"), "{text}");
    let log = std::fs::read_to_string(fork.root.join(".rust.patchq-check/x.py.log")).unwrap();
    assert_eq!(
        log, "check compiler/rustc compiler/rustc_unit\ncheck compiler/rustc compiler/rustc_unit\n",
        "one x.py check per prefix, none by the refused run"
    );
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
    write(
        &fork.root.join("patchq.toml"),
        &pinned.replace("8cfaf52ab168a12c3082b5956bcc16c8969d8791b2fe54ed5192672b25518af2", &fake_sha),
    );
    fork.ok(&["check"]);
    let subject = git(&fork.tree(), &["log", "-1", "--format=%s"]);
    assert_eq!(subject, "codegen: patch b\n", "the tree check made is at the queue's head");

    // What patchq writes into the tree (stage0, the build, config.toml) is not an edit.
    write(&fork.tree().join("build/cache/2025-01-09/stage0.tar.xz"), "x");
    write(&fork.tree().join("config.toml"), "x");
    fork.ok(&["apply"]);
}

/// A queue with two upstream PRs (one of two commits, depending on the
/// other PR) and a fork-only patch.
fn fork_with_prs() -> Fork {
    let fork = Fork::new();
    fork.apply();
    fork.commit_with(
        "compiler/a.rs",
        "a line 10\n",
        "a line 10 patched\n",
        "codegen: patch a\n\nWhy a.\n\nr? @reviewer\n\nTopic: codegen\nUpstream: rust-lang/rust#100\nFixes: rust-lang/rust#101\nStatus: open",
    );
    fork.commit_with(
        "compiler/a.rs",
        "a line 12\n",
        "a line 12 gpu\n",
        "gpu: patch b\n\nWhy b, which needs a.\n\nTopic: gpu\nUpstream: rust-lang/rust#200\nPr-title: gpu: patches b and c\n\
         Tracking: rust-lang/rust#201\nStatus: not-forwarded\nDepends-on: codegen-patch-a.patch",
    );
    fork.commit_with(
        "compiler/b.rs",
        "b line 5\n",
        "b line 5 gpu\n",
        "gpu: patch c\n\nThe second commit of the PR.\n\ncc @gpu-people\n\nTopic: gpu\nUpstream: rust-lang/rust#200\nStatus: not-forwarded",
    );
    fork.commit_with(
        "compiler/b.rs",
        "b line 25\n",
        "b line 25 fork\n",
        "gpu: fork-only tweak\n\nOnly here.\n\nTopic: gpu\nUpstream: none\nStatus: fork-only",
    );
    fork.ok(&["refresh"]);
    fork
}

#[test]
fn export_makes_a_branch_per_pr_on_the_pristine_base_with_a_description() {
    let fork = fork_with_prs();
    let tree = fork.tree();
    let out = fork.ok(&["export", "gpu"]);
    assert!(out.contains("gpu-fork-only-tweak.patch: fork-only, not exported"), "{out}");
    assert!(out.contains("pr/gpu-patch-b: rust-lang/rust#200 (2 commit(s), 1 dependency commit(s))"), "{out}");

    // The dependency first, then the PR's commits, right on the pristine
    // base: no overlay commit, no fork trailers.
    let log = git(&tree, &["log", "--format=%s", "pr/gpu-patch-b"]);
    expect![[r#"
        gpu: patch c
        gpu: patch b
        codegen: patch a
        base: Rust 1.85.0 (4d91de4e4)
    "#]]
    .assert_eq(&log);
    let message = git(&tree, &["log", "-1", "--format=%B", "pr/gpu-patch-b~1"]);
    assert_eq!(message, "gpu: patch b\n\nWhy b, which needs a.\n\n");
    assert_eq!(
        git(&tree, &["log", "-1", "--format=%an %ad", "--date=iso", "pr/gpu-patch-b"]),
        "A U Thor 2025-03-01 12:00:00 +0100\n"
    );
    let base = git(&tree, &["rev-parse", "refs/patchq/base"]);
    assert_eq!(git(&tree, &["rev-parse", "pr/gpu-patch-b~3"]), base);
    assert_eq!(
        git(&tree, &["show", "pr/gpu-patch-b:Cargo.toml"]),
        "[workspace]\nmembers = [\"compiler\", \"src/tools/miri\"]\n",
        "the base's Cargo.toml, not the overlay's"
    );

    let description = fork.read("export/gpu-patch-b.md");
    expect![[r#"
        gpu: patches b and c

        ### gpu: patch b

        Why b, which needs a.

        ### gpu: patch c

        The second commit of the PR.

        ### Not part of this PR

        The branch starts with the commits of the changes this PR depends on. They are **not part of this PR**; they are reviewed in their own:

        - codegen: patch a (rust-lang/rust#100, open)

        Depends on rust-lang/rust#100.
        Tracking: rust-lang/rust#201

        cc @gpu-people
    "#]]
    .assert_eq(&description);

    fork.ok(&["export", "codegen-patch-a"]);
    expect![[r#"
        codegen: patch a

        Why a.

        Fixes rust-lang/rust#101

        r? @reviewer
    "#]]
    .assert_eq(&fork.read("export/codegen-patch-a.md"));
    assert_eq!(
        git(&tree, &["log", "--format=%s", "pr/codegen-patch-a"]),
        "codegen: patch a\nbase: Rust 1.85.0 (4d91de4e4)\n"
    );

    // Exporting again makes the very same commits; a branch that moved
    // (review fixes on it) is not replaced without --force.
    let before = git(&tree, &["rev-parse", "pr/gpu-patch-b"]);
    fork.ok(&["export", "gpu"]);
    assert_eq!(git(&tree, &["rev-parse", "pr/gpu-patch-b"]), before);
    git(&tree, &["update-ref", "refs/heads/pr/gpu-patch-b", "pr/gpu-patch-b~1"]);
    let err = fork.fails(&["export", "gpu"], 1);
    assert!(err.contains("branch pr/gpu-patch-b exists at") && err.contains("--force"), "{err}");
    fork.ok(&["export", "gpu", "--force"]);
    assert_eq!(git(&tree, &["rev-parse", "pr/gpu-patch-b"]), before);

    // Onto a commit that already has the dependency, the branch does not carry it.
    let with_a = git(&tree, &["rev-parse", "pr/codegen-patch-a"]);
    let out = fork.ok(&["export", "gpu", "--onto", with_a.trim(), "--force"]);
    assert!(out.contains("codegen-patch-a.patch: already in"), "{out}");
    assert_eq!(git(&tree, &["rev-parse", "pr/gpu-patch-b~2"]), with_a);
    assert!(!fork.read("export/gpu-patch-b.md").contains("Not part of this PR"));

    // Into another repository (a rust-lang/rust clone), onto one of its commits.
    let upstream = fork.root.parent().unwrap().join("upstream-clone");
    git(fork.root.parent().unwrap(), &["clone", "-q", &tree.to_string_lossy(), "upstream-clone"]);
    let upstream_s = upstream.to_string_lossy().into_owned();
    fork.ok(&["export", "codegen", "--into", &upstream_s, "--onto", base.trim()]);
    assert_eq!(git(&upstream, &["rev-parse", "pr/codegen-patch-a"]), git(&tree, &["rev-parse", "pr/codegen-patch-a"]));
    let err = fork.fails(&["export", "codegen", "--into", &upstream_s], 2);
    assert!(err.contains("--onto"), "--into needs --onto: {err}");

    let err = fork.fails(&["export", "gpu-fork-only-tweak"], 1);
    assert!(err.contains("fork-only") && err.contains("no pull request"), "{err}");
    let err = fork.fails(&["export", "nonsense"], 1);
    assert!(err.contains("neither a patch of the series nor a topic (topics: codegen, gpu)"), "{err}");
}

#[test]
fn export_check_builds_base_overlay_dependencies_and_the_pr() {
    let fork = fork_with_prs();
    fork.fake_stage0();
    let out = fork.ok(&["export", "gpu", "--check"]);
    assert!(
        out.contains("pr/gpu-patch-b on base + overlay: x.py check compiler (libraries; the tests of 1 crate): builds"),
        "{out}"
    );
    let check = fork.root.join(".rust.patchq-check");
    let checked = git(&check, &["log", "--format=%s"]);
    expect![[r#"
        gpu: patch c
        gpu: patch b
        codegen: patch a
        overlay: build fix-ups for the offline base
        base: Rust 1.85.0 (4d91de4e4)
    "#]]
    .assert_eq(&checked);
}

/// Makes the fork's own directory a git repository with its current files.
fn commit_fork(fork: &Fork, message: &str) {
    let root = &fork.root;
    if !root.join(".git").exists() {
        git(root, &["init", "-q"]);
        write(&root.join(".gitignore"), "/rust/\n/.rust.patchq-*\n/export/\n");
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", message]);
}

#[test]
fn diff_shows_what_changed_in_each_patch_since_a_tag() {
    let fork = Fork::new();
    fork.with_two_patches();
    commit_fork(&fork, "series v1");
    git(&fork.root, &["tag", "v1"]);

    // v2: patch b changes its hunk, a new patch comes, patch a stays.
    let tree = fork.tree();
    std::fs::write(tree.join("compiler/b.rs"), numbered("b", 30).replace("b line 20\n", "b line 20 patched better\n"))
        .unwrap();
    git(&tree, &["commit", "-q", "-a", "--amend", "--no-edit"]);
    fork.commit_patch("compiler/a.rs", "a line 25\n", "a line 25 new\n", "codegen: patch c");
    fork.ok(&["refresh"]);

    let out = fork.patchq(&["diff", "v1"]);
    assert!(out.status.success(), "{}", both(&out));
    expect![[r#"
        base: Rust 1.85.0 (4d91de4e4819), unchanged since v1
        1: codegen-patch-a.patch = 1: codegen-patch-a.patch
        2: codegen-patch-b.patch ! 2: codegen-patch-b.patch
            @@ -14,7 +14,7 @@ diff --git a/compiler/b.rs b/compiler/b.rs
              b line 18
              b line 19
             -b line 20
            -+b line 20 patched
            ++b line 20 patched better
              b line 21
              b line 22
              b line 23
        -: -------------------- > 3: codegen-patch-c.patch
        1 unchanged, 1 changed, 1 added, 0 dropped since v1
    "#]]
    .assert_eq(&String::from_utf8(out.stdout).unwrap());

    let err = fork.fails(&["diff", "no-such-tag"], 1);
    assert!(err.contains("`no-such-tag` is not a commit or tag"), "{err}");
}

#[test]
fn rebase_drops_a_patch_the_new_base_already_has_only_when_told() {
    let fork = Fork::new();
    fork.with_two_patches();
    let head = fork.head();
    // 1.86.0 has patch a's change, and b.rs moved down by two lines.
    let v2 = fork.base_variant("1.86.0", |top| {
        write(&top.join("compiler/a.rs"), &numbered("a", 30).replace("a line 10\n", "a line 10 patched\n"));
        write(&top.join("compiler/b.rs"), &format!("// new\n// lines\n{}", numbered("b", 30)));
    });
    let v2 = v2.to_string_lossy().into_owned();

    let err = fork.fails(&["rebase", "--onto", &v2], 6);
    assert!(err.contains("already upstream") && err.contains("codegen-patch-a.patch"), "{err}");
    assert!(err.contains("nothing was changed") && err.contains("--drop-merged"), "{err}");
    assert_eq!(fork.head(), head);

    let out = fork.ok(&["rebase", "--onto", &v2, "--drop-merged"]);
    assert!(out.contains("rebased 1 patch(es) onto Rust 1.86.0"), "{out}");
    assert!(out.contains("dropped as already upstream: codegen-patch-a.patch"), "{out}");
    assert!(out.contains("patchq refresh"), "{out}");
    assert_eq!(
        git(&fork.tree(), &["log", "--format=%s"]),
        "codegen: patch b\noverlay: build fix-ups for the offline base\nbase: Rust 1.86.0 (abcdef012)\n"
    );
    assert_eq!(git(&fork.tree(), &["status", "--porcelain"]), "");

    // The old patch files would undo the rebase: apply waits for refresh.
    let err = fork.fails(&["apply"], 4);
    assert!(err.contains("was rebased") && err.contains("run `patchq refresh` first"), "{err}");
    fork.ok(&["refresh"]);
    let series = fork.read("patches/series");
    assert!(
        series.contains(
            "# base-version: 1.86.0\n# base-commit: abcdef0123456789abcdef0123456789abcdef01\n# base-source: tarball\n"
        ),
        "{series}"
    );
    assert!(series.ends_with("\ncodegen-patch-b.patch\n"), "{series}");
    assert!(!fork.patch_path("codegen-patch-a.patch").exists());
    fork.ok(&["refresh", "--check"]);
    fork.ok(&["apply"]);
    fork.ok(&["check"]);
}

#[test]
fn rebase_conflict_stops_abort_restores_and_continue_completes() {
    let fork = Fork::new();
    fork.with_two_patches();
    let tree = fork.tree();
    let head = fork.head();
    let state = std::fs::read(tree.join(".git/patchq/state.toml")).unwrap();
    let (a, b) = (fork.read("rust/compiler/a.rs"), fork.read("rust/compiler/b.rs"));
    let base_ref = git(&tree, &["rev-parse", "refs/patchq/base"]);
    // 1.86.0 changed the line patch b changes, and moved a.rs down.
    let v2 = fork.base_variant("1.86.0", |top| {
        write(&top.join("compiler/a.rs"), &format!("// new\n{}", numbered("a", 30)));
        write(&top.join("compiler/b.rs"), &numbered("b", 30).replace("b line 20\n", "b line 20 upstream\n"));
    });
    let v2 = v2.to_string_lossy().into_owned();

    let err = fork.fails(&["rebase", "--onto", &v2], 3);
    assert!(err.contains("patch 2/2 `codegen-patch-b.patch` conflicts with the new base (1 before it moved)"), "{err}");
    assert!(err.contains("conflicted files") && err.contains("  compiler/b.rs"), "{err}");
    assert!(err.contains("patchq rebase --continue") && err.contains("patchq rebase --abort"), "{err}");
    let conflicted = fork.read("rust/compiler/b.rs");
    assert!(conflicted.contains("<<<<<<<") && conflicted.contains("b line 20 upstream"), "{conflicted}");
    assert!(fork.read("rust/compiler/a.rs").starts_with("// new\n"), "patch a moved onto the new base");
    let err = fork.fails(&["apply"], 4);
    assert!(err.contains("in the middle of `patchq rebase`"), "{err}");

    // --abort: exactly the previous state.
    fork.ok(&["rebase", "--abort"]);
    assert_eq!(fork.head(), head);
    assert_eq!(std::fs::read(tree.join(".git/patchq/state.toml")).unwrap(), state);
    assert_eq!((fork.read("rust/compiler/a.rs"), fork.read("rust/compiler/b.rs")), (a, b));
    assert_eq!(git(&tree, &["status", "--porcelain"]), "");
    assert_eq!(git(&tree, &["rev-parse", "refs/patchq/base"]), base_ref);
    assert!(!tree.join(".git/patchq/rebase.toml").exists());
    fork.ok(&["apply"]);

    // Again, and this time resolve.
    fork.fails(&["rebase", "--onto", &v2], 3);
    let err = fork.fails(&["rebase", "--continue"], 1);
    assert!(err.contains("still conflicted") && err.contains("compiler/b.rs"), "{err}");
    std::fs::write(
        tree.join("compiler/b.rs"),
        numbered("b", 30).replace("b line 20\n", "b line 20 upstream, patched\n"),
    )
    .unwrap();
    git(&tree, &["add", "compiler/b.rs"]);
    let out = fork.ok(&["rebase", "--continue"]);
    assert!(
        out.contains("rebased 2 patch(es) onto Rust 1.86.0") && out.contains("resolved by hand: codegen-patch-b.patch"),
        "{out}"
    );
    fork.ok(&["refresh"]);
    let patch = fork.read("patches/codegen-patch-b.patch");
    assert!(patch.contains("-b line 20 upstream\n+b line 20 upstream, patched\n"), "{patch}");
    assert!(fork.read("patches/series").contains("# base-version: 1.86.0\n"));
    fork.ok(&["refresh", "--check"]);
    fork.ok(&["check"]);
}

/// Two patches, and a 1.86.0 base that changed the line patch b changes
/// (and moved a.rs down): `rebase --onto` it stops on patch b (exit 3).
fn fork_stopped_on_a_conflict() -> (Fork, String) {
    let fork = Fork::new();
    fork.with_two_patches();
    let v2 = fork.base_variant("1.86.0", |top| {
        write(&top.join("compiler/a.rs"), &format!("// new\n{}", numbered("a", 30)));
        write(&top.join("compiler/b.rs"), &numbered("b", 30).replace("b line 20\n", "b line 20 upstream\n"));
    });
    let v2 = v2.to_string_lossy().into_owned();
    fork.fails(&["rebase", "--onto", &v2], 3);
    (fork, v2)
}

#[test]
fn rebase_continue_after_a_reset_at_the_stop_puts_the_conflict_back_instead_of_dropping() {
    let (fork, _) = fork_stopped_on_a_conflict();
    let tree = fork.tree();
    git(&tree, &["reset", "-q", "--hard"]);
    let err = fork.fails(&["rebase", "--continue"], 3);
    assert!(err.contains("codegen-patch-b.patch: the work tree holds none of its change"), "{err}");
    assert!(err.contains("conflicted files") && err.contains("  compiler/b.rs"), "{err}");
    assert!(!err.contains("dropped"), "{err}");
    assert!(fork.read("rust/compiler/b.rs").contains("<<<<<<<"), "the conflict is back");

    std::fs::write(
        tree.join("compiler/b.rs"),
        numbered("b", 30).replace("b line 20\n", "b line 20 upstream, patched\n"),
    )
    .unwrap();
    git(&tree, &["add", "compiler/b.rs"]);
    let out = fork.ok(&["rebase", "--continue"]);
    assert!(out.contains("resolved by hand: codegen-patch-b.patch") && !out.contains("dropped"), "{out}");
    fork.ok(&["refresh"]);
    assert!(fork.patch_path("codegen-patch-b.patch").exists());
}

#[test]
fn rebase_continue_drops_a_patch_resolved_to_nothing_only_with_drop_merged() {
    let (fork, _) = fork_stopped_on_a_conflict();
    git(&fork.tree(), &["reset", "-q", "--hard"]);
    fork.fails(&["rebase", "--continue"], 3);
    git(&fork.tree(), &["reset", "-q", "--hard"]);
    let out = fork.ok(&["rebase", "--continue", "--drop-merged"]);
    assert!(out.contains("resolved to no change, dropped: codegen-patch-b.patch"), "{out}");
    assert!(!out.contains("already upstream"), "{out}");
}

#[test]
fn rebase_continue_refuses_conflict_markers_even_when_staged() {
    let (fork, _) = fork_stopped_on_a_conflict();
    let head = fork.head();
    git(&fork.tree(), &["add", "compiler/b.rs"]);
    let err = fork.fails(&["rebase", "--continue"], 3);
    assert!(err.contains("conflict markers are still in (staged) files:\n  compiler/b.rs"), "{err}");
    assert_eq!(fork.head(), head, "nothing committed");
    assert!(fork.tree().join(".git/patchq/rebase.toml").exists());
}

#[test]
fn refresh_refuses_to_delete_a_patch_that_apply_could_not_apply() {
    let fork = Fork::new();
    fork.with_two_patches();
    let path = fork.patch_path("codegen-patch-b.patch");
    let text = std::fs::read_to_string(&path).unwrap().replace(" b line 19\n", " b line nineteen\n");
    std::fs::write(&path, &text).unwrap();
    fork.fails(&["apply"], 3);
    let series = fork.read("patches/series");
    let err = fork.fails(&["refresh"], 7);
    assert!(err.contains("  codegen-patch-b.patch: not applied to the work tree yet"), "{err}");
    assert!(err.contains("apply first") && err.contains("patchq refresh --force"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "the patch file stays");
    assert_eq!(fork.read("patches/series"), series);
}

#[test]
fn refresh_refuses_to_delete_patches_a_pull_brought_until_they_are_applied() {
    let fork = Fork::new();
    fork.with_two_patches();
    // The tree has only patch a; then a `git pull` brings patch b.
    let patches = fork.root.join("patches");
    let pulled = fork.root.parent().unwrap().join("pulled");
    assert!(Command::new("cp").arg("-r").arg(&patches).arg(&pulled).status().unwrap().success());
    std::fs::remove_dir_all(fork.tree()).unwrap();
    std::fs::remove_file(fork.patch_path("codegen-patch-b.patch")).unwrap();
    let series = fork.read("patches/series").replace("codegen-patch-b.patch\n", "");
    write(&patches.join("series"), &series);
    fork.apply();
    std::fs::remove_dir_all(&patches).unwrap();
    std::fs::rename(&pulled, &patches).unwrap();

    let err = fork.fails(&["refresh"], 7);
    assert!(err.contains("codegen-patch-b.patch: not applied to the work tree yet"), "{err}");
    assert!(fork.patch_path("codegen-patch-b.patch").exists());
    fork.ok(&["apply"]);
    let out = fork.ok(&["refresh"]);
    assert!(out.contains("already up to date"), "{out}");
}

#[test]
fn refresh_refuses_to_overwrite_a_patch_file_edited_by_hand_without_force() {
    let fork = Fork::new();
    fork.with_two_patches();
    let path = fork.patch_path("codegen-patch-b.patch");
    let edited = std::fs::read_to_string(&path).unwrap().replace("+b line 20 patched", "+b line 20 edited by hand");
    std::fs::write(&path, &edited).unwrap();
    let err = fork.fails(&["refresh"], 7);
    assert!(err.contains("  codegen-patch-b.patch: edited since patchq last wrote or applied it"), "{err}");
    assert!(!err.contains("codegen-patch-a.patch"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);

    let out = fork.ok(&["refresh", "--force"]);
    assert!(out.contains("rewrote codegen-patch-b.patch"), "{out}");
    assert!(fork.read("patches/codegen-patch-b.patch").contains("+b line 20 patched\n"));
}

#[test]
fn rebase_abort_keeps_edits_to_files_the_rebase_did_not_touch() {
    let fork = Fork::new();
    fork.with_two_patches();
    let head = fork.head();
    let (a, b) = (fork.read("rust/compiler/a.rs"), fork.read("rust/compiler/b.rs"));
    let v2 = fork.base_variant("1.86.0", |top| {
        write(&top.join("compiler/a.rs"), &format!("// new\n{}", numbered("a", 30)));
        write(&top.join("compiler/b.rs"), &numbered("b", 30).replace("b line 20\n", "b line 20 upstream\n"));
    });
    fork.fails(&["rebase", "--onto", &v2.to_string_lossy()], 3);
    // While stopped, the user edits a file neither base nor patch touches,
    // and half-resolves the conflict.
    let x_py = fork.tree().join("x.py");
    let edited = format!("{}# my edit\n", fork.read("rust/x.py"));
    std::fs::write(&x_py, &edited).unwrap();
    std::fs::write(fork.tree().join("compiler/b.rs"), "half resolved\n").unwrap();

    let out = fork.ok(&["rebase", "--abort"]);
    assert!(out.contains("kept your uncommitted edits to files the rebase did not touch: x.py"), "{out}");
    assert_eq!(fork.head(), head);
    assert_eq!(std::fs::read_to_string(&x_py).unwrap(), edited);
    assert_eq!((fork.read("rust/compiler/a.rs"), fork.read("rust/compiler/b.rs")), (a, b));
    assert_eq!(git(&fork.tree(), &["status", "--porcelain"]), " M x.py\n");
}

#[test]
fn a_closed_output_pipe_neither_panics_nor_interrupts_a_rebase() {
    let fork = Fork::new();
    fork.with_two_patches();
    assert_eq!(fork.with_closed_output(&["status"]).code(), Some(0), "status | head must not panic");

    let v2 = fork.base_variant("1.86.0", |top| {
        write(&top.join("compiler/a.rs"), &numbered("a", 30).replace("a line 10\n", "a line 10 patched\n"));
    });
    let status = fork.with_closed_output(&["rebase", "--onto", &v2.to_string_lossy(), "--drop-merged"]);
    assert_eq!(status.code(), Some(0));
    assert!(!fork.tree().join(".git/patchq/rebase.toml").exists());
    assert_eq!(git(&fork.tree(), &["log", "-1", "--format=%s", "HEAD~2"]), "base: Rust 1.86.0 (abcdef012)\n");
}

/// Runs the `./patchq` wrapper with fake `cargo` and `rustc` (the latter
/// printing `rustc_version`) first on PATH, and `CARGO_TARGET_DIR` at a
/// directory whose `release/patchq` prints its environment.
fn run_wrapper(rustc_version: &str) -> Output {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let exe = |path: &Path, text: &str| {
        write(path, text);
        assert!(Command::new("chmod").arg("+x").arg(path).status().unwrap().success());
    };
    exe(&bin.join("rustc"), &format!("#!/bin/sh\necho 'rustc {rustc_version} (0000000 2025-01-01)'\n"));
    exe(&bin.join("cargo"), "#!/bin/sh\necho \"cargo $*\" >&2\n");
    let target = tmp.path().join("target");
    exe(&target.join("release/patchq"), "#!/bin/sh\necho \"built patchq $*\"\nenv\n");
    let wrapper = Path::new(env!("CARGO_MANIFEST_DIR")).join("../patchq");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    Command::new("sh")
        .arg(wrapper)
        .args(["status", "--no-wait"])
        .env_clear()
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", &target)
        .env("MY_VAR", "mine")
        .output()
        .unwrap()
}

#[test]
fn the_wrapper_builds_then_runs_the_binary_with_the_callers_environment() {
    let out = run_wrapper("1.89.0");
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("cargo build --release --quiet --manifest-path"), "{text}");
    assert!(text.contains("built patchq status --no-wait"), "{text}");
    assert!(text.contains("MY_VAR=mine"), "{text}");
    assert!(!text.contains("RUSTUP_TOOLCHAIN") && !text.contains("LD_LIBRARY_PATH"), "{text}");
}

#[test]
fn the_wrapper_names_the_minimum_rust_version() {
    let out = run_wrapper("1.85.1");
    let text = both(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("needs Rust 1.89 or newer") && text.contains("rustc 1.85.1"), "{text}");
    assert!(!text.contains("cargo build"), "{text}");
}

#[test]
fn a_base_other_than_the_series_records_is_refused_without_allow_other_base() {
    let fork = Fork::new();
    fork.with_two_patches();
    std::fs::remove_dir_all(fork.tree()).unwrap();
    let newer = fork.base_variant("1.86.0", |_| {}).to_string_lossy().into_owned();
    let err = fork.fails(&["apply", "--base-tarball", &newer], 1);
    assert!(err.contains("the base given is Rust 1.86.0, but patches/series records 1.85.0"), "{err}");
    assert!(err.contains("--allow-other-base"), "{err}");
    assert!(!fork.tree().exists());
    let leftovers: Vec<_> = std::fs::read_dir(&fork.root).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!leftovers.iter().any(|n| n.to_string_lossy().contains(".tree")), "{leftovers:?}");

    // Same version, other bytes.
    let other = fork.root.parent().unwrap().join("other").join("rustc-1.85.0-src");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    assert!(Command::new("cp").arg("-r").arg(&fork.src).arg(&other).status().unwrap().success());
    write(&other.join("extra.txt"), "not the recorded tarball\n");
    let other_tarball = other.parent().unwrap().join("rustc-1.85.0-src.tar.xz");
    make_tarball(&other, &other_tarball);
    let err = fork.fails(&["apply", "--base-tarball", &other_tarball.to_string_lossy()], 1);
    assert!(err.contains("but patches/series records") && err.contains("for Rust 1.85.0"), "{err}");

    let out = fork.ok(&["apply", "--base-tarball", &newer, "--allow-other-base"]);
    assert!(out.contains("2 applied"), "{out}");
}

#[test]
fn a_two_file_patch_cut_between_its_files_is_refused() {
    let fork = Fork::new();
    fork.apply();
    let tree = fork.tree();
    for (file, from) in [("compiler/a.rs", "a line 10\n"), ("compiler/b.rs", "b line 20\n")] {
        let text = std::fs::read_to_string(tree.join(file)).unwrap();
        std::fs::write(tree.join(file), text.replace(from, "changed\n")).unwrap();
    }
    git(&tree, &["commit", "-q", "-a", "-m", &format!("codegen: two files\n\nWhy.\n\n{TRAILERS}")]);
    fork.ok(&["refresh"]);
    let path = fork.patch_path("codegen-two-files.patch");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.find("diff --git a/compiler/b.rs").unwrap()]).unwrap();
    let err = fork.fails(&["check"], 1);
    assert!(err.contains("the diffstat says 2 file(s) changed, but the patch has 1 `diff --git` section(s)"), "{err}");
    assert!(err.contains("codegen-two-files.patch"), "{err}");
    std::fs::remove_dir_all(&tree).unwrap();
    let err = fork.fails(&["apply", "--base-tarball", &fork.tarball.to_string_lossy()], 1);
    assert!(err.contains("the diffstat says 2 file(s) changed"), "{err}");
}

#[test]
fn conflict_markers_do_not_pass_refresh_or_check() {
    let fork = Fork::new();
    fork.with_two_patches();
    let path = fork.patch_path("codegen-patch-b.patch");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("+b line 20 patched\n", "+<<<<<<< ours\n")).unwrap();
    let err = fork.fails(&["check"], 1);
    assert!(err.contains("codegen-patch-b.patch: adds conflict markers in compiler/b.rs"), "{err}");

    std::fs::write(&path, text).unwrap();
    let tree = fork.tree();
    std::fs::write(tree.join("compiler/a.rs"), "<<<<<<< HEAD\nmine\n=======\ntheirs\n>>>>>>> other\n").unwrap();
    git(&tree, &["add", "compiler/a.rs"]);
    git(&tree, &["commit", "-q", "-m", &format!("codegen: oops\n\nWhy.\n\n{TRAILERS}")]);
    let err = fork.fails(&["refresh"], 1);
    assert!(err.contains("`codegen: oops` adds conflict markers:\n  compiler/a.rs"), "{err}");
    assert!(!fork.patch_path("codegen-oops.patch").exists());
}

#[test]
fn export_force_does_not_move_a_branch_checked_out_in_a_linked_worktree() {
    let fork = fork_with_prs();
    let upstream = fork.root.parent().unwrap().join("upstream-clone");
    git(fork.root.parent().unwrap(), &["clone", "-q", &fork.tree().to_string_lossy(), "upstream-clone"]);
    let upstream_s = upstream.to_string_lossy().into_owned();
    let base = git(&fork.tree(), &["rev-parse", "refs/patchq/base"]).trim().to_owned();
    fork.ok(&["export", "codegen", "--into", &upstream_s, "--onto", &base]);
    git(&upstream, &["update-ref", "refs/heads/pr/codegen-patch-a", &base]);
    git(&upstream, &["worktree", "add", "-q", "../linked", "pr/codegen-patch-a"]);
    let err = fork.fails(&["export", "codegen", "--into", &upstream_s, "--onto", &base, "--force"], 1);
    assert!(err.contains("pr/codegen-patch-a is checked out (in a work tree of the repository)"), "{err}");
    assert_eq!(git(&upstream, &["rev-parse", "pr/codegen-patch-a"]).trim(), base);
}

#[test]
fn messages_name_the_real_problem() {
    let fork = fork_with_prs();
    let tree = fork.tree();

    // `--into` a directory that is no repository.
    let plain = fork.root.parent().unwrap().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let base = git(&tree, &["rev-parse", "refs/patchq/base"]).trim().to_owned();
    let err = fork.fails(&["export", "codegen", "--into", &plain.to_string_lossy(), "--onto", &base], 1);
    assert!(err.contains("not a git repository") && !err.contains("no such commit"), "{err}");

    // `status` in the middle of a rebase.
    let v2 = fork.base_variant("1.86.0", |top| {
        write(&top.join("compiler/b.rs"), &numbered("b", 30).replace("b line 5\n", "b line 5 upstream\n"));
    });
    fork.fails(&["rebase", "--onto", &v2.to_string_lossy()], 3);
    let out = fork.ok(&["status"]);
    assert!(out.contains("a `patchq rebase` is in progress") && out.contains("patchq rebase --abort"), "{out}");
    assert!(!out.contains("has commits not in patches/"), "{out}");
    fork.ok(&["rebase", "--abort"]);

    // A patch that names itself in Depends-on.
    let path = fork.patch_path("codegen-patch-a.patch");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("Status: open\n", "Status: open\nDepends-on: codegen-patch-a.patch\n")).unwrap();
    let err = fork.fails(&["check"], 1);
    assert!(err.contains("codegen-patch-a.patch: depends on itself"), "{err}");
    assert!(!err.contains("comes later"), "{err}");

    // CRLF line endings.
    std::fs::write(&path, text.replace('\n', "\r\n")).unwrap();
    let err = fork.fails(&["check"], 1);
    assert!(err.contains("CRLF") && !err.contains("no mail header"), "{err}");
    std::fs::write(&path, &text).unwrap();

    // Suggested commands quote paths a shell would split.
    let spaced = fork.root.join("my rust");
    let tarball = fork.tarball.to_string_lossy().into_owned();
    fork.ok(&["--work-tree", "my rust", "apply", "--base-tarball", &tarball]);
    std::fs::write(spaced.join("compiler/a.rs"), "edit\n").unwrap();
    let err = fork.fails(&["--work-tree", "my rust", "apply"], 4);
    assert!(err.contains(&format!("git -C '{}' stash -u", spaced.display())), "{err}");
}

/// The names in the fork's directory but the lock, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".rust.patchq-lock")
        .collect();
    names.sort();
    names
}

#[test]
fn a_bad_config_is_refused_at_load_and_leaves_no_half_made_tree() {
    let fork = Fork::new();
    let before = entries(&fork.root);
    let config = fork.read("patchq.toml");
    write(&fork.root.join("patchq.toml"), &config.replace("2025-02-17T00:00:00+00:00", "the 17th of February"));
    let err = fork.fails(&["apply", "--base-tarball", &fork.tarball.to_string_lossy()], 1);
    assert!(err.contains("[base] date = \"the 17th of February\" is not a date"), "{err}");
    let err = fork.fails(&["status"], 1);
    assert!(err.contains("[base] date"), "{err}");
    assert_eq!(entries(&fork.root), before);

    write(
        &fork.root.join("patchq.toml"),
        &config.replace("remove = [\".cargo/config.toml\"]", "remove = [\"../outside\"]"),
    );
    let err = fork.fails(&["status"], 1);
    assert!(err.contains("[overlay] remove: `../outside` is not a path inside the rust tree"), "{err}");
}

#[test]
fn a_failed_base_import_leaves_no_directory_behind() {
    let fork = Fork::new();
    let before = entries(&fork.root);
    // A tarball that is no rust source tree: no `version` file.
    let bare = fork.root.parent().unwrap().join("bare").join("rustc-9.9.9-src");
    write(&bare.join("README"), "hello\n");
    let tarball = bare.parent().unwrap().join("rustc-9.9.9-src.tar.xz");
    make_tarball(&bare, &tarball);
    let err = fork.fails(&["apply", "--base-tarball", &tarball.to_string_lossy()], 1);
    assert!(err.contains("is this a rust source tree?"), "{err}");
    assert_eq!(entries(&fork.root), before);
    // And the next run is not blocked.
    fork.apply();
}

#[test]
fn the_lock_is_the_same_for_every_name_of_the_tree() {
    let fork = Fork::new();
    fork.apply();
    std::os::unix::fs::symlink(fork.tree(), fork.root.join("alias")).unwrap();
    let lock = std::fs::OpenOptions::new().write(true).open(fork.root.join(".rust.patchq-lock")).unwrap();
    lock.lock().unwrap();
    let err = fork.fails(&["--no-wait", "--work-tree", "alias", "apply"], 5);
    assert!(err.contains(".rust.patchq-lock"), "{err}");
    let err = fork.fails(&["--no-wait", "--work-tree", "./x/../rust/", "apply"], 5);
    assert!(err.contains(".rust.patchq-lock"), "{err}");
    lock.unlock().unwrap();
}

#[test]
fn stale_git_locks_left_by_a_killed_patchq_are_recovered_or_named() {
    let fork = Fork::new();
    fork.with_two_patches();
    let git_dir = fork.tree().join(".git");
    // A patchq killed while building commits in its private index.
    write(&git_dir.join("patchq/index.scratch.lock"), "");
    write(&git_dir.join("patchq/index.scratch"), "garbage");
    let path = fork.patch_path("codegen-patch-b.patch");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("+b line 20 patched", "+b line 20 patched again")).unwrap();
    let out = fork.apply();
    assert!(out.contains("1 kept, 1 applied"), "{out}");
    assert!(!git_dir.join("patchq/index.scratch.lock").exists() && !git_dir.join("patchq/index.scratch").exists());

    // Killed during a `reset --keep`: git's own index lock stays.
    write(&git_dir.join("index.lock"), "");
    std::fs::write(&path, &text).unwrap();
    let err = fork.fails(&["apply"], 4);
    assert!(
        err.contains("index.lock exists") && err.contains(&format!("`rm {}/index.lock`", git_dir.display())),
        "{err}"
    );
    std::fs::remove_file(git_dir.join("index.lock")).unwrap();
    fork.apply();
}

/// Fault injection: a `git` first on PATH that counts its calls and, at
/// call `FAULT_AT`, kills patchq: `before` sends SIGINT or SIGTERM before
/// git runs (a Ctrl-C), `after` runs git to the end and then sends SIGKILL
/// (killed between two steps). `fail` makes that git call fail (status
/// 130) without touching patchq: a git interrupted while patchq was not,
/// as in a background job of a non-interactive shell, where SIGINT is
/// ignored and `before-INT` kills nothing either.
const FAULT_GIT: &str = r#"#!/bin/sh
n=0
[ -f "$FAULT_COUNTER" ] && read -r n < "$FAULT_COUNTER"
n=$((n + 1))
echo "$n" > "$FAULT_COUNTER"
if [ "$n" -eq "$FAULT_AT" ]; then
    case "$FAULT_MODE" in
        before-*) kill -"${FAULT_MODE#before-}" "$PPID"; exit 130 ;;
        after) "$REAL_GIT" "$@"; status=$?; kill -KILL "$PPID"; exit $status ;;
        fail) echo "fault: git call $n interrupted" >&2; exit 130 ;;
    esac
fi
exec "$REAL_GIT" "$@"
"#;

impl Fork {
    /// A copy of this fork (its directory and cache) in a new temporary directory.
    fn copy(&self) -> Fork {
        let tmp = tempfile::tempdir().unwrap();
        let (root, home) = (tmp.path().join("fork"), tmp.path().join("home"));
        for (from, to) in [(&self.root, &root), (&self.home, &home)] {
            assert!(Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap().success());
        }
        Fork { _tmp: tmp, root, home, tarball: self.tarball.clone(), src: self.src.clone() }
    }

    /// Runs patchq with the fault-injecting git; returns how many git calls it made.
    fn with_fault(&self, args: &[&str], at: usize, mode: &str) -> usize {
        let bin = self.root.parent().unwrap().join("fault-bin");
        let git = bin.join("git");
        if !git.exists() {
            use std::os::unix::fs::PermissionsExt;
            write(&git, FAULT_GIT);
            std::fs::set_permissions(&git, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let counter = self.root.parent().unwrap().join("fault-count");
        let _ = std::fs::remove_file(&counter);
        static REAL_GIT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let real = REAL_GIT.get_or_init(|| {
            let out = Command::new("sh").args(["-c", "command -v git"]).output().unwrap().stdout;
            String::from_utf8(out).unwrap().trim().to_owned()
        });
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        self.command(args)
            .env("PATH", path)
            .env("FAULT_AT", at.to_string())
            .env("FAULT_MODE", mode)
            .env("FAULT_COUNTER", &counter)
            .env("REAL_GIT", real)
            .output()
            .unwrap();
        std::fs::read_to_string(&counter).map_or(0, |n| n.trim().parse().unwrap())
    }

    /// What must be the same after an interrupted and an uninterrupted run.
    fn outcome(&self) -> (String, String, Vec<u8>, bool) {
        let tree = self.tree();
        (
            self.head(),
            git(&tree, &["status", "--porcelain"]),
            std::fs::read(tree.join(".git/patchq/state.toml")).unwrap(),
            tree.join(".git/patchq/journal.toml").exists(),
        )
    }
}

/// Kills `run` at each of its git calls, in each mode, on copies of
/// `prepared`; after each kill `recover` must bring the copy to the state
/// the uninterrupted run reaches (computed once). The kill points are
/// independent copies, so they run on several threads. Prints how many
/// points were tried and held.
fn interrupt_everywhere(prepared: &Fork, run: &[&str], recover: impl Fn(&Fork) + Sync) {
    fault_everywhere(prepared, run, &kills, recover)
}

/// patchq killed before git call `at` runs, or after.
fn kills(at: usize) -> Vec<&'static str> {
    // SIGTERM acts as SIGINT does (neither is handled): one of them is enough.
    vec![if at.is_multiple_of(2) { "before-INT" } else { "before-TERM" }, "after"]
}

/// Like [`interrupt_everywhere`], with the fault modes `modes` gives for
/// each git call.
fn fault_everywhere(
    prepared: &Fork,
    run: &[&str],
    modes: &(dyn Fn(usize) -> Vec<&'static str> + Sync),
    recover: impl Fn(&Fork) + Sync,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let started = std::time::Instant::now();
    let whole = prepared.copy();
    let calls = whole.with_fault(run, usize::MAX, "none");
    assert!(calls > 3, "{calls} git calls");
    let expected = whole.outcome();
    let points: Vec<(usize, &str)> = (1..=calls).flat_map(|at| modes(at).into_iter().map(move |m| (at, m))).collect();
    let (next, held) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(&(at, mode)) = points.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let fork = prepared.copy();
                    fork.with_fault(run, at, mode);
                    recover(&fork);
                    assert_eq!(fork.outcome(), expected, "{run:?} killed at git call {at} ({mode})");
                    held.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let held = held.into_inner();
    assert_eq!(held, points.len());
    eprintln!(
        "{run:?}: {calls} git calls, {} interruption points tried, {held} held ({:.1} s, {workers} threads)",
        points.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn apply_interrupted_anywhere_is_completed_by_the_next_apply() {
    let prepared = Fork::new();
    prepared.with_two_patches();
    for (name, from, to) in [
        ("codegen-patch-a.patch", "+a line 10 patched", "+a line 10 patched again"),
        ("codegen-patch-b.patch", "+b line 20 patched", "+b line 20 patched again"),
    ] {
        let path = prepared.patch_path(name);
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap().replace(from, to)).unwrap();
    }
    interrupt_everywhere(&prepared, &["apply"], |fork| {
        let out = fork.ok(&["apply"]);
        assert!(!out.contains("uncommitted") && !out.contains("not all in"), "{out}");
    });
}

#[test]
fn rebase_interrupted_anywhere_finishes_on_the_next_run() {
    rebase_faulted_everywhere(&kills);
}

/// A git call that fails while patchq goes on (status 130, patchq not
/// killed) is an error, never an answer: taken for "the patch is not in
/// the new base", it once made an interrupted `--drop-merged` keep a
/// merged patch.
#[test]
fn rebase_with_a_git_call_failing_anywhere_finishes_on_the_next_run() {
    rebase_faulted_everywhere(&|_| vec!["fail"]);
}

fn rebase_faulted_everywhere(modes: &(dyn Fn(usize) -> Vec<&'static str> + Sync)) {
    let prepared = Fork::new();
    prepared.with_two_patches();
    let v2 = prepared.base_variant("1.86.0", |top| {
        write(&top.join("compiler/a.rs"), &numbered("a", 30).replace("a line 10\n", "a line 10 patched\n"));
        write(&top.join("compiler/b.rs"), &format!("// new\n{}", numbered("b", 30)));
    });
    let v2 = v2.to_string_lossy().into_owned();
    let onto = ["rebase", "--onto", v2.as_str(), "--drop-merged"];
    fault_everywhere(&prepared, &onto, modes, |fork| {
        let state = fork.read("rust/.git/patchq/state.toml");
        if fork.tree().join(".git/patchq/journal.toml").exists() {
            // Killed while moving the tree to the rebased queue: running the
            // rebase again completes that step, then says what is next.
            let out = fork.patchq(&onto);
            let text = both(&out);
            assert!(text.contains("completed an interrupted `rebase`"), "{text}");
            assert!(out.status.success() || text.contains("run `patchq refresh` first"), "{text}");
        } else if fork.tree().join(".git/patchq/rebase.toml").exists() {
            fork.ok(&["rebase", "--continue", "--drop-merged"]);
        } else if !state.contains("rebased-from") {
            fork.ok(&onto);
        } else {
            fork.ok(&["status"]);
        }
    });
}

#[test]
fn refresh_interrupted_anywhere_finishes_on_the_next_run() {
    let amended = Fork::new();
    amended.with_two_patches();
    let tree = amended.tree();
    std::fs::write(tree.join("compiler/b.rs"), numbered("b", 30).replace("b line 20\n", "b line 20 amended\n"))
        .unwrap();
    git(&tree, &["commit", "-q", "-a", "--amend", "--no-edit"]);
    interrupt_everywhere(&amended, &["refresh"], |fork| {
        fork.ok(&["refresh"]);
        fork.ok(&["refresh", "--check"]);
    });
}

#[test]
fn rebase_abort_interrupted_anywhere_finishes_on_the_next_run_and_keeps_edits() {
    let (prepared, _) = fork_stopped_on_a_conflict();
    let tree = prepared.tree();
    // While stopped, the user edits and deletes files the rebase did not
    // touch, and half-resolves the conflict.
    let edited = format!("{}# my edit\n", prepared.read("rust/x.py"));
    std::fs::write(tree.join("x.py"), &edited).unwrap();
    std::fs::remove_file(tree.join("src/version")).unwrap();
    std::fs::write(tree.join("compiler/b.rs"), "half resolved\n").unwrap();
    let clean = Fork::new();
    clean.with_two_patches();
    let (a, b) = (clean.read("rust/compiler/a.rs"), clean.read("rust/compiler/b.rs"));
    interrupt_everywhere(&prepared, &["rebase", "--abort"], |fork| {
        let patchq = fork.tree().join(".git/patchq");
        if patchq.join("journal.toml").exists() || patchq.join("rebase.toml").exists() {
            let out = fork.ok(&["rebase", "--abort"]);
            assert!(out.contains("rebase aborted"), "{out}");
        }
        assert_eq!(fork.read("rust/x.py"), edited, "the edit made at the conflict stop survives");
        assert!(!fork.tree().join("src/version").exists(), "so does the deletion");
        assert_eq!((fork.read("rust/compiler/a.rs"), fork.read("rust/compiler/b.rs")), (a.clone(), b.clone()));
        assert!(!patchq.join("set-aside").exists() && !patchq.join("rebase.toml").exists());
    });
}

/// The files of patches/, by name.
fn patches_of(fork: &Fork) -> Vec<(String, String)> {
    entries(&fork.root.join("patches"))
        .into_iter()
        .map(|name| (name.clone(), fork.read(&format!("patches/{name}"))))
        .collect()
}

#[test]
fn refresh_interrupted_between_its_file_writes_is_completed_by_the_next_run() {
    // A refresh that rewrites patch b, adds patch c and removes patch a.
    let prepared = Fork::new();
    prepared.with_two_patches();
    git(&prepared.tree(), &["reset", "-q", "--hard", "HEAD~2"]);
    prepared.commit_patch("compiler/b.rs", "b line 20\n", "b line 20 rewritten\n", "codegen: patch b");
    prepared.commit_patch("compiler/a.rs", "a line 20\n", "a line 20 patched\n", "codegen: patch c");
    let whole = prepared.copy();
    let out = whole.ok(&["refresh"]);
    assert!(
        out.contains("codegen-patch-c.patch") && out.contains("codegen-patch-a.patch (no longer a commit)"),
        "{out}"
    );
    let expected = (whole.outcome(), patches_of(&whole));
    // Its writes, in order; no git call runs between them, so the fault
    // injection cannot kill there: a refresh that fails to save the state
    // leaves its journal, then patches/ is put in each state a kill between
    // (or in the middle of) two writes leaves.
    let writes = ["codegen-patch-b.patch", "codegen-patch-c.patch", "series", "codegen-patch-a.patch"];
    let (mut tried, mut held) = (0, 0);
    for done in 0..=writes.len() {
        for half in [false, true] {
            if half && done == writes.len() {
                continue;
            }
            tried += 1;
            let fork = prepared.copy();
            let blocker = fork.tree().join(".git/patchq/state.toml.tmp");
            std::fs::create_dir(&blocker).unwrap();
            fork.fails(&["refresh"], 1);
            std::fs::remove_dir(&blocker).unwrap();
            assert!(fork.tree().join(".git/patchq/journal.toml").exists());
            let patches = fork.root.join("patches");
            std::fs::remove_dir_all(&patches).unwrap();
            assert!(
                Command::new("cp")
                    .arg("-a")
                    .arg(prepared.root.join("patches"))
                    .arg(&patches)
                    .status()
                    .unwrap()
                    .success()
            );
            for (i, name) in writes.iter().enumerate().take(done + usize::from(half)) {
                let (to, from) = (patches.join(name), whole.root.join("patches").join(name));
                match std::fs::read_to_string(&from) {
                    Ok(text) if i == done => std::fs::write(&to, &text[..text.len() / 2]).unwrap(),
                    Ok(text) => std::fs::write(&to, text).unwrap(),
                    Err(_) => std::fs::remove_file(&to).unwrap(),
                }
            }
            let out = fork.ok(&["refresh"]);
            assert!(out.contains("completed an interrupted `refresh`"), "{out}");
            fork.ok(&["refresh", "--check"]);
            assert_eq!((fork.outcome(), patches_of(&fork)), expected, "killed after {done} writes (half: {half})");
            held += 1;
        }
    }
    eprintln!("refresh between its writes: {tried} interruption points tried, {held} held");
}
