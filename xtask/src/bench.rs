//! `cargo xtask bench`: builds the benchmark and the daemon in release and runs edge-bench, which writes BENCHMARKS.md and benchmarks.svg.

use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, Result};

use crate::{
    cargo::{cargo, exit_code, output, require_root, run_checked, target_dir, workspace_root},
    setup::setup,
};

pub fn bench(args: &[String]) -> Result<ExitCode> {
    setup()?;
    require_root("cargo xtask bench")?;
    run_checked(cargo().args([
        "build",
        "--release",
        "-p",
        "edge-tests",
        "--bin",
        "edge-bench",
        "-p",
        "edge-userspace",
        "--bin",
        "edged",
        "--bin",
        "edgectl",
    ]))?;
    let root = workspace_root();
    let commit = output(
        "git",
        &[
            "-C",
            &root.to_string_lossy(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    )
    .map(|c| c.trim().to_string())
    .unwrap_or_else(|| "unknown".into());
    let dirty = output(
        "git",
        &[
            "-C",
            &root.to_string_lossy(),
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )
    .is_some_and(|s| !s.trim().is_empty());
    let commit = if dirty {
        format!("{commit} (with uncommitted changes)")
    } else {
        commit
    };
    let status = Command::new(target_dir().join("release").join("edge-bench"))
        .arg("--out")
        .arg(root.join("BENCHMARKS.md"))
        .arg("--plot")
        .arg(root.join("benchmarks.svg"))
        .arg("--commit")
        .arg(commit)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .context("running edge-bench")?;
    Ok(exit_code(status.code()))
}
