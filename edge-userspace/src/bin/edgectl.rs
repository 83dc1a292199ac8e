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
    /// Registered prefixes in the running maps.
    #[command(subcommand)]
    Prefix(PrefixCommand),
}

#[derive(Debug, Subcommand)]
enum PrefixCommand {
    /// What a packet to (from a backbone/transit port) or from (on a peering
    /// port) ADDRESS gets right now: the longest registered prefix, its
    /// preference, DSCP, protection, and the PoPs its policy table holds.
    Lookup {
        address: std::net::IpAddr,
        /// The config edged runs with, to name prefixes and PoPs.
        #[arg(long)]
        config: Option<PathBuf>,
    },
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

fn read_plan(file: &std::path::Path) -> Result<config::Plan> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    config::parse(&text).with_context(|| format!("config {}", file.display()))
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Stats { config } => {
            let plan = config.map(|f| read_plan(&f)).transpose()?;
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
        Command::Prefix(PrefixCommand::Lookup { address, config }) => {
            let plan = config.map(|f| read_plan(&f)).transpose()?;
            let tables = edge_userspace::maps::Tables::open(&cli.pin_path).with_context(|| {
                format!("is edged running with pin path {}?", cli.pin_path.display())
            })?;
            let Some(entry) = tables.lookup(address)? else {
                if cli.json {
                    println!(
                        "{}",
                        serde_json::json!({"address": address, "registered": false})
                    );
                } else {
                    println!("{address}: no registered prefix (the default action applies)");
                }
                return Ok(ExitCode::from(3));
            };
            let planned = plan
                .as_ref()
                .and_then(|p| p.prefixes.get((entry.slot as usize).checked_sub(1)?));
            let pop_name = |id: u16| {
                plan.as_ref()
                    .and_then(|p| p.pops.get(usize::from(id)))
                    .map_or_else(|| format!("pop {id}"), |p| p.name.clone())
            };
            let internet = entry.preference == edge_common::preference::INTERNET;
            let table = if internet {
                None
            } else {
                Some(tables.policy(entry.policy)?)
            };
            let mut shares: Vec<(String, usize)> = Vec::new();
            for &pop in table
                .iter()
                .flat_map(|t| &t.pops[..edge_common::POLICY_SLOTS])
            {
                let name = if pop == edge_common::NO_POP {
                    "none (to the kernel)".into()
                } else {
                    pop_name(pop)
                };
                match shares.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, n)) => *n += 1,
                    None => shares.push((name, 1)),
                }
            }
            let preference = if internet { "internet" } else { "microsoft" };
            let dscp = (entry.dscp != edge_common::DSCP_KEEP).then_some(entry.dscp);
            let protected: Vec<u32> = (0..64)
                .filter(|i| entry.allowed_ports >> i & 1 == 1)
                .collect();
            if cli.json {
                let shares: Vec<_> = shares
                    .iter()
                    .map(|(n, c)| serde_json::json!({"pop": n, "slots": c}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "address": address, "registered": true,
                        "prefix": planned.map(|p| p.net.to_string()),
                        "registration": planned.map(|p| p.registration.clone()),
                        "counter_slot": entry.slot, "preference": preference, "policy": entry.policy,
                        "dscp": dscp, "protected_port_ids": protected, "policy_table": shares,
                    })
                );
            } else {
                match planned {
                    Some(p) => println!("{address}: {} ({})", p.net, p.registration),
                    None => println!("{address}: registered (counter slot {})", entry.slot),
                }
                println!("  preference  {preference}");
                println!(
                    "  dscp        {}",
                    dscp.map_or("keep".into(), |d| d.to_string())
                );
                println!(
                    "  protected   {}",
                    if protected.is_empty() {
                        "no (any peering port)".into()
                    } else {
                        format!("port ids {protected:?}")
                    }
                );
                if internet {
                    println!("  next hop    the transit exit, both directions (hot potato)");
                } else {
                    println!(
                        "  from the customer: the backbone exit; toward the customer: policy {}, by flow:",
                        entry.policy
                    );
                }
                for (name, n) in shares {
                    println!(
                        "    {name:<24} {n:>5} slots ({:.1}% of flows)",
                        100.0 * n as f64 / edge_common::POLICY_SLOTS as f64
                    );
                }
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
