//! `cargo xtask lint`: clippy on the host crates and on the eBPF crate for its bpf target, and rustfmt, with a summary of what failed.

use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result};

use crate::cargo::{cargo, target_dir, workspace_root};

/// The eBPF crate and the target aya-build builds it for (edge-userspace/build.rs).
const EBPF_PACKAGE: &str = "edge-ebpf";
const EBPF_TARGET: &str = "bpfel-unknown-none";

/// Runs every step, even after one fails, then says which failed.
pub fn lint() -> Result<ExitCode> {
    let steps: [(&str, Command); 3] = [
        ("clippy (host crates)", clippy_host()),
        ("clippy (edge-ebpf, bpfel-unknown-none)", clippy_ebpf()),
        ("rustfmt --check (nightly)", fmt_check()),
    ];
    let mut failed = Vec::new();
    for (name, mut cmd) in steps {
        eprintln!("xtask lint: {name}: {}", shown(&cmd));
        let status = cmd
            .status()
            .with_context(|| format!("running {}", shown(&cmd)))?;
        if !status.success() {
            failed.push(format!("  {name}: FAILED ({status})\n    {}", shown(&cmd)));
        }
    }
    if failed.is_empty() {
        eprintln!("xtask lint: ok (clippy host, clippy eBPF, rustfmt)");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask lint: FAILED\n{}", failed.join("\n"));
        Ok(ExitCode::FAILURE)
    }
}

/// `cargo clippy --workspace --all-targets -- -D warnings`: every host
/// crate (edge-ebpf is not a default member and the workspace never builds
/// it for the host).
fn clippy_host() -> Command {
    let mut cmd = cargo();
    cmd.args([
        "clippy",
        "--workspace",
        "--exclude",
        EBPF_PACKAGE,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    cmd
}

/// Clippy on the eBPF crate the way aya-build compiles it: nightly,
/// `--target bpfel-unknown-none -Z build-std=core --release`, with the
/// `bpf_target_arch` cfg aya-ebpf expects; its own target dir, so that the
/// flags never invalidate the workspace's host builds.
fn clippy_ebpf() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.current_dir(workspace_root())
        .args(["run", "nightly", "cargo", "clippy"])
        .args([
            "--package",
            EBPF_PACKAGE,
            "--release",
            "--target",
            EBPF_TARGET,
        ])
        .args(["-Z", "build-std=core", "--target-dir"])
        .arg(target_dir().join("lint-ebpf"))
        .args(["--", "-D", "warnings"])
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            format!("--cfg=bpf_target_arch=\"{}\"", std::env::consts::ARCH),
        );
    // As aya-build does: the nightly's own rustc, not the one running xtask.
    for key in ["RUSTC", "RUSTC_WORKSPACE_WRAPPER", "RUSTUP_TOOLCHAIN"] {
        cmd.env_remove(key);
    }
    cmd
}

/// `cargo fmt --all --check` with the nightly's rustfmt: rustfmt.toml sets
/// `imports_granularity` and `group_imports`, which a stable rustfmt
/// ignores (with a warning), so only the nightly checks the style the
/// code is written in.
fn fmt_check() -> Command {
    let mut cmd = Command::new("rustup");
    cmd.current_dir(workspace_root())
        .args(["run", "nightly", "cargo", "fmt", "--all", "--check"])
        .env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

/// A command as one would type it.
fn shown(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
