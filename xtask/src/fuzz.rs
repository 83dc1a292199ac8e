//! `cargo xtask fuzz` and the short fuzz pass of `cargo xtask test`: the cargo-fuzz targets, then the packet fuzzer.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, ExitCode, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result};

use crate::{
    cargo::{build, cargo, require_root, run_checked, workspace_root},
    setup::setup,
};

/// The cargo-fuzz targets for `seconds` each, then the packet fuzzer for
/// `frames` (from `seed`, or one from the clock).
pub fn fuzz(seconds: u64, frames: u64, seed: Option<String>) -> Result<ExitCode> {
    setup()?;
    build(false)?;
    require_root("cargo xtask fuzz")?;
    let fuzzed = fuzz_targets(seconds)?;
    eprintln!("xtask fuzz: packet fuzzer, {frames} frames through BPF_PROG_TEST_RUN");
    let mut cmd = cargo();
    cmd.args([
        "nextest",
        "run",
        "--cargo-quiet",
        "--no-capture",
        "--package",
        "edge-tests",
        "--test",
        "fuzz",
        "packet_fuzz",
    ])
    .env("EDGE_FUZZ_FRAMES", frames.to_string());
    if let Some(seed) = seed {
        cmd.env("EDGE_FUZZ_SEED", seed);
    }
    let status = cmd.status().context("running the packet fuzzer")?;
    Ok(if status.success() && fuzzed {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "xtask fuzz: FAILED (packet fuzzer: {status}; cargo-fuzz: {})",
            if fuzzed { "ok" } else { "failed" }
        );
        ExitCode::FAILURE
    })
}

/// Seconds per cargo-fuzz target in `cargo xtask test`.
pub const TEST_FUZZ_SECONDS: u64 = 3;

/// The cargo-fuzz targets (fuzz/Cargo.toml) and their dictionaries.
const FUZZ_TARGETS: [(&str, Option<&str>); 6] = [
    ("config_parse", Some("config.dict")),
    ("config_parse_with", Some("config.dict")),
    ("live_strings", None),
    ("change_pipeline", None),
    ("control_decode", Some("control.dict")),
    ("bmp_decode", None),
];

/// Runs every cargo-fuzz target for `seconds` (nightly, libFuzzer), from
/// its seeds (fuzz/seeds, committed) and working corpus (fuzz/corpus, kept
/// between runs). Shows libFuzzer's progress lines and a summary; returns
/// whether every target ran clean. A crash leaves its input in
/// fuzz/artifacts/<target>/ and the command to reproduce it in the output.
pub fn fuzz_targets(seconds: u64) -> Result<bool> {
    let fuzz = workspace_root().join("fuzz");
    let started = Instant::now();
    eprintln!("xtask fuzz: building the cargo-fuzz targets (nightly, libFuzzer)");
    run_checked(fuzz_command(&fuzz).args(["build", "--sanitizer", "none", "--debug-assertions"]))?;
    let mut clean = true;
    let mut summary = Vec::new();
    for (target, dict) in FUZZ_TARGETS {
        let corpus = fuzz.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        eprintln!("xtask fuzz: {target} for {seconds} s");
        let mut cmd = fuzz_command(&fuzz);
        cmd.args(["run", "--sanitizer", "none", "--debug-assertions", target])
            .arg(&corpus)
            .arg(fuzz.join("seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .args(["-print_final_stats=1", "-timeout=10", "-rss_limit_mb=4096"]);
        if let Some(dict) = dict {
            cmd.arg(format!("-dict={}", fuzz.join("dict").join(dict).display()));
        }
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running cargo fuzz run {target}"))?;
        let (mut execs, mut rate) = (String::from("?"), String::from("?"));
        for line in BufReader::new(child.stderr.take().expect("stderr")).lines() {
            let line = line.context("reading libFuzzer's output")?;
            if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
                execs = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("stat::average_exec_per_sec:") {
                rate = v.trim().to_string();
            }
            // Progress and results; not every new-coverage line.
            let chatter = line.starts_with("INFO:")
                || line.starts_with("stat::")
                || line.starts_with("\tNEW_FUNC")
                || line.starts_with('"')
                || line.starts_with("######")
                || line.starts_with("WARNING: Failed to find function")
                || (line.starts_with('#') && !line.contains("pulse") && !line.contains("DONE"));
            if !chatter {
                eprintln!("  {target}: {line}");
            }
        }
        let status = child.wait().context("waiting for cargo fuzz")?;
        clean &= status.success();
        summary.push(format!(
            "  {target:<20} {:>12} execs {:>8} execs/s  {}",
            execs,
            rate,
            if status.success() {
                "ok".to_string()
            } else {
                format!("FAILED ({status})")
            }
        ));
    }
    eprintln!(
        "xtask fuzz: cargo-fuzz done in {:.0} s\n{}",
        started.elapsed().as_secs_f64(),
        summary.join("\n")
    );
    Ok(clean)
}

fn fuzz_command(fuzz_dir: &Path) -> Command {
    // Through rustup's cargo, so that `+nightly` picks the toolchain.
    let mut cmd = Command::new("cargo");
    cmd.current_dir(fuzz_dir).args(["+nightly", "fuzz"]);
    cmd
}
