//! `cargo xtask`: setup, build, run, test, bench, reliability, fuzz.
//!
//! xtask itself builds on a machine that has neither rust-src nor bpf-linker
//! (it installs them), so it never depends on edge-userspace, whose build
//! script compiles the eBPF object.

use std::{
    env,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

/// Project tasks for edge.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install what is missing (idempotent): nightly rust-src, bpf-linker
    /// built against the nightly's own LLVM, cargo-nextest, cargo-fuzz,
    /// Debian packages.
    Setup,
    /// Setup, then build every binary (the eBPF object is built by aya-build).
    Build {
        /// Build with optimisations.
        #[arg(long)]
        release: bool,
    },
    /// Setup, build, and run the forwarder: on a namespace lab by default, or
    /// against real interfaces with `-- --config FILE`.
    Run {
        /// Arguments for edge-lab (`--seconds`, `--rate`, `--hold`), or
        /// `--config FILE [edged args...]` to run edged itself.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Setup, build in release, and run the benchmarks (needs root): writes
    /// BENCHMARKS.md and benchmarks.svg at the workspace root.
    Bench {
        /// Extra arguments for edge-bench (e.g. `--quick`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Setup, build, and run sequence-numbered streams through the edge
    /// while faults happen (needs root): writes RELIABILITY.md.
    Reliability {
        /// Extra arguments for edge-reliability (e.g. `--rate 500`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Setup, build, and run every test layer (needs root). Without
    /// arguments it ends with a short cargo-fuzz pass over every target.
    Test {
        /// Extra arguments for cargo nextest (e.g. a test name filter); the
        /// cargo-fuzz pass is skipped when any are given.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Setup, build, then fuzz: every cargo-fuzz target (config parser and
    /// validator, control-socket decoder) for a while each, and the packet
    /// fuzzer through BPF_PROG_TEST_RUN (needs root).
    Fuzz {
        /// Seconds per cargo-fuzz target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Frames for the packet fuzzer.
        #[arg(long, default_value_t = 1_000_000)]
        frames: u64,
        /// Seed for the packet fuzzer (default: from the clock, printed).
        #[arg(long)]
        seed: Option<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.task {
        Task::Setup => setup().map(|()| ExitCode::SUCCESS),
        Task::Build { release } => {
            setup()?;
            build(release)?;
            Ok(ExitCode::SUCCESS)
        }
        Task::Run { args } => {
            setup()?;
            build(false)?;
            require_root("cargo xtask run")?;
            // Ctrl-C reaches the whole process group: let the child clean up
            // (detach, unpin, delete namespaces) and wait for it.
            ctrlc::set_handler(|| {}).context("installing SIGINT handler")?;
            let bins = target_dir().join("debug");
            let status = if args
                .first()
                .is_some_and(|a| a == "--config" || a.starts_with("--config="))
            {
                Command::new(bins.join("edged")).args(&args).status()
            } else {
                Command::new(bins.join("edge-lab")).args(&args).status()
            }
            .context("starting the forwarder")?;
            Ok(exit_code(status.code()))
        }
        Task::Bench { args } => {
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
                .args(&args)
                .stdout(std::process::Stdio::null())
                .status()
                .context("running edge-bench")?;
            Ok(exit_code(status.code()))
        }
        Task::Reliability { args } => {
            setup()?;
            build(false)?;
            require_root("cargo xtask reliability")?;
            let status = Command::new(target_dir().join("debug").join("edge-reliability"))
                .arg("--out")
                .arg(workspace_root().join("RELIABILITY.md"))
                .args(&args)
                .status()
                .context("running edge-reliability")?;
            Ok(exit_code(status.code()))
        }
        Task::Test { args } => {
            setup()?;
            build(false)?;
            require_root("cargo xtask test")?;
            let status = cargo()
                .args(["nextest", "run", "--no-fail-fast", "--cargo-quiet"])
                .args(&args)
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
        Task::Fuzz {
            seconds,
            frames,
            seed,
        } => {
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
    }
}

/// Seconds per cargo-fuzz target in `cargo xtask test`.
const TEST_FUZZ_SECONDS: u64 = 3;

/// The cargo-fuzz targets (fuzz/Cargo.toml) and their dictionaries.
const FUZZ_TARGETS: [(&str, Option<&str>); 4] = [
    ("config_parse", Some("config.dict")),
    ("config_parse_with", Some("config.dict")),
    ("live_strings", None),
    ("control_decode", Some("control.dict")),
];

/// Runs every cargo-fuzz target for `seconds` (nightly, libFuzzer), from
/// its seeds (fuzz/seeds, committed) and working corpus (fuzz/corpus, kept
/// between runs). Shows libFuzzer's progress lines and a summary; returns
/// whether every target ran clean. A crash leaves its input in
/// fuzz/artifacts/<target>/ and the command to reproduce it in the output.
fn fuzz_targets(seconds: u64) -> Result<bool> {
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

fn exit_code(code: Option<i32>) -> ExitCode {
    ExitCode::from(code.unwrap_or(1).clamp(0, 255) as u8)
}

fn require_root(what: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        bail!("{what} needs root (network namespaces, XDP, BPF_PROG_TEST_RUN)");
    }
    Ok(())
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn build(release: bool) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--bins"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    Ok(())
}

/// Runs a command and returns its stdout, or None if it cannot run or fails.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run_checked(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn setup() -> Result<()> {
    let started = Instant::now();
    let nightly = nightly()?;
    rust_src()?;
    bpf_linker(&nightly)?;
    nextest()?;
    cargo_fuzz()?;
    debian_packages()?;
    eprintln!(
        "xtask setup: ready ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The installed nightly: its sysroot and LLVM major version.
struct Nightly {
    sysroot: PathBuf,
    version: String,
    llvm_major: String,
}

fn nightly() -> Result<Nightly> {
    let vv = match output("rustc", &["+nightly", "-vV"]) {
        Some(vv) => vv,
        None => {
            eprintln!("xtask setup: installing the nightly toolchain");
            run_checked(Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ]))?;
            output("rustc", &["+nightly", "-vV"]).context("rustc +nightly -vV")?
        }
    };
    let field = |key: &str| {
        vv.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .with_context(|| format!("`rustc +nightly -vV` has no {key}"))
    };
    let llvm = field("LLVM version:")?;
    let version = field("release:")?;
    let llvm_major = llvm.split('.').next().unwrap_or_default().to_string();
    let sysroot =
        output("rustc", &["+nightly", "--print", "sysroot"]).context("nightly sysroot")?;
    Ok(Nightly {
        sysroot: PathBuf::from(sysroot.trim()),
        version,
        llvm_major,
    })
}

fn rust_src() -> Result<()> {
    let installed = output(
        "rustup",
        &["component", "list", "--toolchain", "nightly", "--installed"],
    )
    .unwrap_or_default();
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    eprintln!("xtask setup: adding rust-src to nightly");
    run_checked(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
}

fn cargo_home() -> PathBuf {
    env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cargo")
        })
}

/// bpf-linker 0.13 built against the nightly's own libLLVM (no system LLVM):
/// a prefix whose lib/ links to the nightly's libLLVM, kept under
/// CARGO_HOME because the installed binary loads libLLVM from there.
fn bpf_linker(nightly: &Nightly) -> Result<()> {
    const VERSION: &str = "0.13.0";
    let feature = format!("llvm-{}", nightly.llvm_major);
    let record = std::fs::read_to_string(cargo_home().join(".crates2.json")).unwrap_or_default();
    let entry = record.split("\"bpf-linker ").nth(1).unwrap_or_default();
    let built_for_this_llvm = entry.starts_with(VERSION) && {
        let entry = entry.split("},").next().unwrap_or_default();
        entry.contains(&format!("\"{feature}\""))
    };
    if built_for_this_llvm && output("bpf-linker", &["--version"]).is_some() {
        return Ok(());
    }

    let lib = nightly.sysroot.join("lib");
    let libllvm = std::fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| {
            n.starts_with(&format!("libLLVM.so.{}.", nightly.llvm_major)) && n.contains("-rust-")
        })
        .with_context(|| {
            format!(
                "no libLLVM.so.{}.* in {}",
                nightly.llvm_major,
                lib.display()
            )
        })?;
    let prefix = cargo_home().join("edge-llvm").join(&nightly.version);
    let prefix_lib = prefix.join("lib");
    std::fs::create_dir_all(&prefix_lib)
        .with_context(|| format!("creating {}", prefix_lib.display()))?;
    for name in ["libLLVM.so", libllvm.as_str()] {
        let link = prefix_lib.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(lib.join(&libllvm), &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    eprintln!(
        "xtask setup: building bpf-linker {VERSION} against the nightly's LLVM {} (about a minute)",
        nightly.llvm_major
    );
    let install = |locked: bool| {
        let mut cmd = Command::new("cargo");
        cmd.args([
            "install",
            "bpf-linker",
            "--force",
            "--version",
            VERSION,
            "--no-default-features",
            "--features",
            &feature,
        ]);
        if locked {
            cmd.arg("--locked");
        }
        cmd.env("LLVM_PREFIX", &prefix);
        run_checked(&mut cmd)
    };
    install(true).or_else(|e| {
        eprintln!("xtask setup: locked install failed ({e:#}); retrying without --locked");
        install(false)
    })?;
    output("bpf-linker", &["--version"]).context("bpf-linker installed but does not run")?;
    Ok(())
}

fn nextest() -> Result<()> {
    if output("cargo", &["nextest", "--version"]).is_some() {
        return Ok(());
    }
    eprintln!("xtask setup: installing cargo-nextest");
    run_checked(Command::new("cargo").args(["install", "cargo-nextest", "--locked"]))
}

fn cargo_fuzz() -> Result<()> {
    if output("cargo", &["fuzz", "--version"]).is_some() {
        return Ok(());
    }
    eprintln!("xtask setup: installing cargo-fuzz");
    run_checked(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
}

/// Tools the tests and the lab call, and the Debian package of each.
const DEBIAN: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("ethtool", "ethtool"),
    ("setpriv", "util-linux"),
    ("promtool", "prometheus"),
    ("bird", "bird2"),
];

fn debian_packages() -> Result<()> {
    let on_path = |tool: &str| {
        env::var_os("PATH")
            .map(|p| env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
            || ["/usr/sbin", "/sbin", "/usr/bin"]
                .iter()
                .any(|d| Path::new(d).join(tool).is_file())
    };
    let missing: Vec<&str> = DEBIAN
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "xtask setup: installing Debian packages: {}",
        missing.join(" ")
    );
    run_checked(Command::new("apt-get").args(["update", "-q"]))?;
    run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
