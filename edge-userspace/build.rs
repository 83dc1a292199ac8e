//! Builds the eBPF object with aya-build (nightly + rust-src + bpf-linker, all
//! installed by `cargo xtask setup`) and leaves it in OUT_DIR for
//! `include_bytes_aligned!`; sets `EDGE_VERSION` for `--version`.
use std::{path::Path, process::Command};

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?;
    version(Path::new(&manifest));
    let root = Path::new(&manifest).join("../edge-ebpf");
    let root = root
        .canonicalize()
        .with_context(|| format!("{} not found", root.display()))?;
    let root = root.to_str().context("edge-ebpf path is not UTF-8")?;
    aya_build::build_ebpf(
        [aya_build::Package { name: "edge-ebpf", root_dir: root, ..Default::default() }],
        aya_build::Toolchain::default(),
    )
    .context("building the eBPF object failed: run `cargo xtask setup` (nightly rust-src and bpf-linker)")
}

/// `EDGE_VERSION`: `0.1.0 (git 1a2b3c4)`, `0.1.0 (git 1a2b3c4, dirty)` when
/// tracked files differ from HEAD, or plain `0.1.0` without git (a source
/// tarball, no git on the machine).
fn version(manifest: &Path) {
    let pkg = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let version = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(sha) if !sha.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{pkg} (git {sha}, dirty)")
            } else {
                format!("{pkg} (git {sha})")
            }
        }
        _ => pkg,
    };
    println!("cargo:rustc-env=EDGE_VERSION={version}");
    // Run again when HEAD moves (a commit, a checkout) or the index changes
    // (a commit, `git add`; git also refreshes it on `git status`). An edit
    // that nothing has staged or stat-refreshed yet can still show as clean.
    let mut watched = Vec::new();
    for what in ["HEAD", "index"] {
        watched.extend(git(&["rev-parse", "--git-path", what]));
    }
    if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.extend(git(&["rev-parse", "--git-path", &head]));
    }
    // Only files that exist: cargo reruns a build script on every build
    // for one that does not (a packed ref has no file of its own).
    for p in watched
        .iter()
        .map(|p| manifest.join(p))
        .filter(|p| p.exists())
    {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
