//! edgectl: the operator CLI.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use edge_userspace::{config, maps::Counters};

/// Operate an edge forwarder.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// bpffs directory where edged pinned its maps.
    #[arg(long, global = true, default_value = edge_userspace::config::DEFAULT_PIN_PATH)]
    pin_path: PathBuf,
    /// Print machine-readable JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show packet and byte counters per action, reason, prefix, PoP and port.
    Stats {
        /// The config edged runs with, to name prefixes, PoPs and ports.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Config file operations.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file without touching anything; prints every problem with its line.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edgectl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Stats { config } => {
            let plan = match config {
                Some(file) => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    Some(
                        config::parse(&text)
                            .with_context(|| format!("config {}", file.display()))?,
                    )
                }
                None => None,
            };
            let counters = Counters::open(&cli.pin_path).with_context(|| {
                format!("is edged running with pin path {}?", cli.pin_path.display())
            })?;
            let slots = plan
                .as_ref()
                .map_or(edge_common::limits::MAX_PREFIX_SLOTS, |p| {
                    p.prefixes.len() as u32 + 1
                });
            let stats = counters.read(slots)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                print!(
                    "{}",
                    edge_userspace::maps::render_stats(&stats, plan.as_ref())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            match config::parse(&text) {
                Ok(plan) => {
                    if cli.json {
                        println!("{}", serde_json::json!({"ok": true, "problems": []}));
                    } else {
                        println!(
                            "{}: ok ({} ports, {} PoPs, {} prefixes)",
                            file.display(),
                            plan.ports.len(),
                            plan.pops.len(),
                            plan.prefixes.len()
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(invalid) => {
                    if cli.json {
                        let problems: Vec<_> = invalid
                            .0
                            .iter()
                            .map(|p| serde_json::json!({"line": p.line, "message": p.message}))
                            .collect();
                        println!("{}", serde_json::json!({"ok": false, "problems": problems}));
                    } else {
                        for p in &invalid.0 {
                            eprintln!("{}: {p}", file.display());
                        }
                    }
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}
