//! The host packages a build needs: LLVM 19 (with FileCheck), the profiler
//! runtime, cmake, ninja, compression libraries, and the basic tools.
//!
//! As root, missing Debian packages are installed with apt; otherwise the
//! exact `apt-get install` line is printed and the build stops.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::process::{Cmd, on_path};
use crate::ui;

/// Debian packages the build needs. lld-19 links amdgcn-amd-amdhsa code
/// objects: bootstrap has no `rust-lld` with a system LLVM.
pub const PACKAGES: [&str; 9] = [
    "llvm-19-dev",
    "llvm-19-tools",
    "lld-19",
    "libclang-rt-19-dev",
    "cmake",
    "ninja-build",
    "zlib1g-dev",
    "libzstd-dev",
    "pkg-config",
];

/// What `x.py check` in the check tree needs besides: ccache, which bootstrap
/// puts in front of the C++ compiler there (`xpy::Settings::ccache`).
pub const CHECK_PACKAGES: [&str; 1] = ["ccache"];

/// Commands that must be on PATH; git and python3 may come from elsewhere
/// than Debian (this machine's git is in /usr/local), so they are checked
/// as commands, not packages.
pub const COMMANDS: [(&str, &str); 5] =
    [("git", "git"), ("python3", "python3"), ("tar", "tar"), ("xz", "xz-utils"), ("cc", "gcc")];

/// Files the generated config.toml points at.
pub const LLVM_CONFIG: &str = "/usr/lib/llvm-19/bin/llvm-config";
pub const FILECHECK: &str = "/usr/lib/llvm-19/bin/FileCheck";
pub const PROFILER_RT: &str = "/usr/lib/llvm-19/lib/clang/19/lib/linux/libclang_rt.profile-x86_64.a";
/// The linker of amdgcn-amd-amdhsa code objects (README, "GPU kernels").
pub const LLD: &str = "/usr/lib/llvm-19/bin/ld.lld";
/// The tools llvm-bitcode-linker (the nvptx64 linker) runs: bootstrap copies
/// them from `llvm-config --bindir` into stage1, but skips any that is
/// missing without a word, so their absence is caught here.
pub const BITCODE_LINKER_TOOLS: [&str; 3] =
    ["/usr/lib/llvm-19/bin/llvm-link", "/usr/lib/llvm-19/bin/opt", "/usr/lib/llvm-19/bin/llc"];

pub fn is_root() -> bool {
    Cmd::new("id").arg("-u").read().map(|uid| uid.trim() == "0").unwrap_or(false)
}

fn installed(package: &str) -> bool {
    Cmd::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .read()
        .is_ok_and(|status| status.trim() == "install ok installed")
}

/// `ensure`, as a phase of a longer job with its one-line summary.
pub fn ensure_phase(extra: &[&str]) -> Result<()> {
    let phase = ui::phase("host packages");
    let installed = ensure(extra)?;
    phase.done(if installed.is_empty() {
        "all present".to_owned()
    } else {
        format!("installed {}", installed.join(" "))
    });
    Ok(())
}

/// What of `PACKAGES`, `extra` and `COMMANDS` this machine lacks, as
/// Debian packages.
fn lacking(extra: &[&str]) -> Vec<String> {
    let mut missing: Vec<String> =
        PACKAGES.iter().chain(extra).filter(|p| !installed(p)).map(|p| p.to_string()).collect();
    for (command, package) in COMMANDS {
        if !on_path(command) && !missing.iter().any(|m| m == package) {
            missing.push(package.to_owned());
        }
    }
    missing
}

/// Checks (and as root, installs) everything, and the `extra` packages of
/// the command that runs; returns what was installed.
///
/// Installs are taken one at a time, under a lock in the temporary
/// directory: two patchq commands started side by side on a new machine
/// would otherwise both run apt-get, and the second would fail on dpkg's
/// lock. The one that waited looks again and finds the packages there.
pub fn ensure(extra: &[&str]) -> Result<Vec<String>> {
    let mut missing = lacking(extra);
    if !missing.is_empty() {
        let line = format!("apt-get install -y {}", missing.join(" "));
        if !is_root() {
            bail!("missing host packages: {}\nas root, run: {line}", missing.join(", "));
        }
        let lock_path = std::env::temp_dir().join("patchq-apt-get.lock");
        let lock = fs_err::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
        lock.file().lock().with_context(|| format!("locking {}", lock_path.display()))?;
        missing = lacking(extra);
        if !missing.is_empty() {
            ui::note(format!("installing {}", missing.join(" ")));
            Cmd::new("apt-get").args(["update", "-q"]).stream()?;
            Cmd::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stream()?;
        }
    }
    check_files(&[LLVM_CONFIG, FILECHECK, PROFILER_RT, LLD])?;
    check_files(&BITCODE_LINKER_TOOLS)?;
    Ok(missing)
}

/// Each path must exist; the error names the file and the package that
/// ships it.
pub fn check_files(paths: &[&str]) -> Result<()> {
    for path in paths {
        if !Path::new(path).exists() {
            let package = match *path {
                p if p.contains("libclang_rt") => "libclang-rt-19-dev",
                p if p.ends_with("FileCheck") => "llvm-19-tools",
                p if p.ends_with("/ld.lld") => "lld-19",
                p if ["/llvm-link", "/opt", "/llc"].iter().any(|tool| p.ends_with(tool)) => "llvm-19",
                _ => "llvm-19-dev",
            };
            bail!("{path} is missing: install {package} (apt-get install -y {package})");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn missing_filecheck_names_file_and_package() {
        let err = super::check_files(&["/nonexistent/llvm-19/bin/FileCheck"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "/nonexistent/llvm-19/bin/FileCheck is missing: install llvm-19-tools (apt-get install -y llvm-19-tools)"
        );
        let err = super::check_files(&["/nonexistent/llvm-19/bin/opt"]).unwrap_err().to_string();
        assert_eq!(err, "/nonexistent/llvm-19/bin/opt is missing: install llvm-19 (apt-get install -y llvm-19)");
        let err = super::check_files(&["/nonexistent/llvm-19/bin/ld.lld"]).unwrap_err().to_string();
        assert_eq!(err, "/nonexistent/llvm-19/bin/ld.lld is missing: install lld-19 (apt-get install -y lld-19)");
    }
}
