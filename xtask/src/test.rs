//! `cargo xtask test`: every test layer with cargo-nextest, then a short cargo-fuzz pass.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::{
    cargo::{build, cargo, exit_code, require_root},
    fuzz::{TEST_FUZZ_SECONDS, fuzz_targets},
    setup::setup,
};

/// `args` go to cargo nextest (e.g. a filter); the cargo-fuzz pass is
/// skipped when any are given.
pub fn test(args: &[String]) -> Result<ExitCode> {
    setup()?;
    build(false)?;
    require_root("cargo xtask test")?;
    let status = cargo()
        .args(["nextest", "run", "--no-fail-fast", "--cargo-quiet"])
        .args(args)
        .status()
        .context("running cargo nextest")?;
    if !args.is_empty() {
        return Ok(exit_code(status.code()));
    }
    let fuzzed = fuzz_targets(TEST_FUZZ_SECONDS)?;
    Ok(if status.success() && fuzzed {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "xtask test: FAILED (tests: {status}; cargo-fuzz: {})",
            if fuzzed { "ok" } else { "failed" }
        );
        exit_code(status.code().filter(|&c| c != 0).or(Some(1)))
    })
}
