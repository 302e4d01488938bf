//! The toolchain's extra targets (`[toolchain] targets`): whether the base
//! knows them, and what stage1 must hold for them once x.py has built it.
//!
//! x.py builds a target's libraries into stage1 when `build.target` lists
//! it (`xpy::render_config`). Targets bootstrap treats as no_std (triples
//! with `-none`, `nvptx` or `switch`) get `core`, `compiler_builtins` and
//! `alloc` only. nvptx64 programs are linked by `llvm-bitcode-linker`, which
//! bootstrap builds with `rust.llvm-bitcode-linker` and places, beside the
//! LLVM tools it runs, in stage1's `lib/rustlib/<host>/bin`: the directory
//! rustc puts first on the linker's PATH.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::base::HOST;

/// The file of a rust tree whose `supported_targets!` lists the built-in targets.
const TARGET_SPECS: &str = "compiler/rustc_target/src/spec/mod.rs";

/// Whether rustc links this target's programs with `llvm-bitcode-linker`
/// (`-C linker-flavor=llbc`; 1.85 accepts it for nvptx64 only).
pub fn uses_llvm_bitcode_linker(target: &str) -> bool {
    target.starts_with("nvptx64-")
}

/// Whether bootstrap must be told the target is no_std (`[target.<t>]
/// no-std = true`): it guesses so from the triple only for `-none`, `nvptx`
/// and `switch`, and would otherwise try to build `std` for the target.
/// amdgcn-amd-amdhsa has no std, and no such word in its name.
pub fn needs_no_std_setting(target: &str) -> bool {
    target.starts_with("amdgcn-")
}

/// Whether the target has no default CPU (its spec's `need_explicit_cpu`):
/// rustc generates no code for it without `-C target-cpu`, so its libraries
/// are built for the CPU `[toolchain.target-cpu]` names.
pub fn needs_explicit_cpu(target: &str) -> bool {
    target.starts_with("amdgcn-")
}

/// The environment variable through which bootstrap passes extra rustflags
/// to everything it builds for `target` (bootstrap's `Rustflags` reads it,
/// like cargo), and its value for building for `cpu`.
pub fn cpu_rustflags(target: &str, cpu: &str) -> (String, String) {
    let envified = target.replace(['-', '.'], "_").to_uppercase();
    (format!("CARGO_TARGET_{envified}_RUSTFLAGS"), format!("-Ctarget-cpu={cpu}"))
}

/// The LLVM tools `llvm-bitcode-linker` runs, by bare name: it finds them on
/// the PATH rustc gives it, which starts with stage1's `lib/rustlib/<host>/bin`.
/// Bootstrap copies them there from `llvm-config --bindir` (with
/// `rust.llvm-tools`, on by default), skipping silently any that is missing.
pub const BITCODE_LINKER_TOOLS: [&str; 3] = ["llvm-link", "opt", "llc"];

/// The built-in targets of the rust tree at `tree`.
pub fn known(tree: &Path) -> Result<BTreeSet<String>> {
    let path = tree.join(TARGET_SPECS);
    let text = fs_err::read_to_string(&path)?;
    let targets = parse_supported_targets(&text);
    if targets.is_empty() {
        bail!("{}: found no `supported_targets!` entries", path.display());
    }
    Ok(targets)
}

/// The triples of `supported_targets! { ("triple", module), … }`.
fn parse_supported_targets(text: &str) -> BTreeSet<String> {
    let Some((_, rest)) = text.split_once("supported_targets! {") else { return BTreeSet::new() };
    let body = rest.split_once("\n}").map_or(rest, |(body, _)| body);
    body.lines()
        .filter_map(|line| line.trim().strip_prefix("(\"")?.split_once('"').map(|(triple, _)| triple.to_owned()))
        .collect()
}

/// Each target must be one the base's rustc knows: x.py would otherwise stop
/// after building the compiler, or earlier with a less direct message.
pub fn check_known(tree: &Path, targets: &[String]) -> Result<()> {
    if targets.is_empty() {
        return Ok(());
    }
    let known = known(tree).context("reading the base's target list")?;
    let unknown: Vec<&str> = targets.iter().filter(|t| !known.contains(*t)).map(|t| t.as_str()).collect();
    if !unknown.is_empty() {
        bail!(
            "[toolchain] targets in patchq.toml: {} {} not a built-in target of this rustc \
             ({TARGET_SPECS} in {} lists {} targets)",
            unknown.join(", "),
            if unknown.len() == 1 { "is" } else { "are" },
            tree.display(),
            known.len()
        );
    }
    Ok(())
}

/// What stage1 lacks for the targets: each missing file (relative to
/// stage1) with why it should be there. Empty when nothing is missing.
pub fn missing_in_sysroot(stage1: &Path, targets: &[String]) -> Vec<String> {
    let mut missing = Vec::new();
    for target in targets {
        let lib = format!("lib/rustlib/{target}/lib");
        let has_core = match fs_err::read_dir(stage1.join(&lib)) {
            Ok(entries) => entries.filter_map(|e| e.ok()).any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("libcore-") && name.ends_with(".rlib")
            }),
            Err(_) => false,
        };
        if !has_core {
            missing.push(format!("{lib}/libcore-*.rlib (x.py builds it when build.target lists {target})"));
        }
    }
    if targets.iter().any(|t| uses_llvm_bitcode_linker(t)) {
        let bin = format!("lib/rustlib/{HOST}/bin");
        if !stage1.join(&bin).join("llvm-bitcode-linker").is_file() {
            missing.push(format!("{bin}/llvm-bitcode-linker (x.py builds it with rust.llvm-bitcode-linker = true)"));
        }
        for tool in BITCODE_LINKER_TOOLS {
            if !stage1.join(&bin).join(tool).is_file() {
                missing.push(format!(
                    "{bin}/{tool} (x.py copies it from `llvm-config --bindir` with rust.llvm-tools = true; \
                     Debian's package llvm-19 ships it)"
                ));
            }
        }
    }
    missing
}

/// `missing_in_sysroot`, as an error listing everything missing.
pub fn check_sysroot(stage1: &Path, targets: &[String]) -> Result<()> {
    let missing = missing_in_sysroot(stage1, targets);
    if !missing.is_empty() {
        bail!("{} lacks what [toolchain] targets need:\n  {}", stage1.display(), missing.join("\n  "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_triples_of_supported_targets() {
        let text = r#"
macro_rules! supported_targets {
    ( $(($tuple:literal, $module:ident),)+ ) => {};
}

supported_targets! {
    ("x86_64-unknown-linux-gnu", x86_64_unknown_linux_gnu),
    // A comment between entries.
    ("nvptx64-nvidia-cuda", nvptx64_nvidia_cuda),
    ("thumbv7em-none-eabihf", thumbv7em_none_eabihf),
}

fn elsewhere() { let _ = ("not-a-target", 1); }
"#;
        let targets: Vec<String> = parse_supported_targets(text).into_iter().collect();
        assert_eq!(targets, ["nvptx64-nvidia-cuda", "thumbv7em-none-eabihf", "x86_64-unknown-linux-gnu"]);
    }

    #[test]
    fn the_cpu_goes_through_bootstraps_per_target_rustflags() {
        assert_eq!(
            cpu_rustflags("amdgcn-amd-amdhsa", "gfx90a"),
            ("CARGO_TARGET_AMDGCN_AMD_AMDHSA_RUSTFLAGS".to_owned(), "-Ctarget-cpu=gfx90a".to_owned())
        );
        assert!(needs_explicit_cpu("amdgcn-amd-amdhsa"));
        assert!(!needs_explicit_cpu("nvptx64-nvidia-cuda"));
    }

    #[test]
    fn unknown_targets_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join(TARGET_SPECS);
        fs_err::create_dir_all(spec.parent().unwrap()).unwrap();
        fs_err::write(
            &spec,
            "supported_targets! {\n    (\"x86_64-unknown-linux-gnu\", a),\n    (\"nvptx64-nvidia-cuda\", b),\n}\n",
        )
        .unwrap();
        check_known(dir.path(), &["nvptx64-nvidia-cuda".to_owned()]).unwrap();
        let err = check_known(dir.path(), &["nvptx64-nvidia-cuda".to_owned(), "amdgcn-amd-amdhsa".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "[toolchain] targets in patchq.toml: amdgcn-amd-amdhsa is not a built-in target of this rustc"
            ),
            "{err}"
        );
        assert!(err.ends_with("lists 2 targets)"), "{err}");
    }

    #[test]
    fn sysroot_check_names_each_missing_piece() {
        let dir = tempfile::tempdir().unwrap();
        let stage1 = dir.path();
        let nvptx = ["nvptx64-nvidia-cuda".to_owned()];
        let missing = missing_in_sysroot(stage1, &nvptx);
        assert_eq!(missing.len(), 5, "{missing:#?}");
        assert!(missing[0].starts_with("lib/rustlib/nvptx64-nvidia-cuda/lib/libcore-*.rlib"), "{missing:#?}");
        assert!(missing[1].starts_with("lib/rustlib/x86_64-unknown-linux-gnu/bin/llvm-bitcode-linker"));
        assert!(missing[4].contains("/bin/llc (x.py copies it from `llvm-config --bindir`"), "{missing:#?}");

        let lib = stage1.join("lib/rustlib/nvptx64-nvidia-cuda/lib");
        fs_err::create_dir_all(&lib).unwrap();
        fs_err::write(lib.join("libcore-0123abcd.rlib"), "").unwrap();
        let bin = stage1.join("lib/rustlib/x86_64-unknown-linux-gnu/bin");
        fs_err::create_dir_all(&bin).unwrap();
        for tool in ["llvm-bitcode-linker", "llvm-link", "opt"] {
            fs_err::write(bin.join(tool), "").unwrap();
        }
        let err = check_sysroot(stage1, &nvptx).unwrap_err().to_string();
        assert!(
            err.contains("lacks what [toolchain] targets need:\n  lib/rustlib/x86_64-unknown-linux-gnu/bin/llc ("),
            "{err}"
        );
        fs_err::write(bin.join("llc"), "").unwrap();
        check_sysroot(stage1, &nvptx).unwrap();

        // A target without the bitcode linker needs only its libraries.
        let thumb = ["thumbv7em-none-eabihf".to_owned()];
        assert_eq!(missing_in_sysroot(stage1, &thumb).len(), 1);
        check_sysroot(stage1, &[]).unwrap();
    }
}
