//! `cargo xtask`: setup, build, run, test, lint, bench, reliability, fuzz, package.
//!
//! xtask itself builds on a machine that has neither rust-src nor bpf-linker
//! (it installs them), so it never depends on edge-userspace, whose build
//! script compiles the eBPF object.

mod bench;
mod cargo;
mod fuzz;
mod lint;
mod package;
mod setup;
mod test;

use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use crate::{
    cargo::{build, exit_code, require_root, target_dir, workspace_root},
    setup::setup,
};

/// Project tasks for edge.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install what is missing (idempotent): nightly rust-src, clippy and
    /// rustfmt for the nightly and the workspace's toolchain, bpf-linker
    /// built against the nightly's own LLVM, cargo-nextest, cargo-fuzz,
    /// Debian packages.
    Setup,
    /// Setup, then clippy (`-D warnings`) on the host crates and on the
    /// eBPF crate for its bpf target, and `cargo fmt --all --check` with
    /// the nightly's rustfmt (rustfmt.toml uses nightly options).
    Lint,
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
    /// Setup, build edged and edgectl in release, and make the Debian
    /// package: target/debian/edge_VERSION_ARCH.deb (its path is printed on
    /// stdout). See docs/packaging.md.
    Package,
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
        Task::Lint => {
            setup()?;
            lint::lint()
        }
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
        Task::Bench { args } => bench::bench(&args),
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
        Task::Test { args } => test::test(&args),
        Task::Fuzz {
            seconds,
            frames,
            seed,
        } => fuzz::fuzz(seconds, frames, seed),
        Task::Package => {
            setup()?;
            let deb = package::package()?;
            println!("{}", deb.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
