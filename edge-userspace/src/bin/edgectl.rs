//! edgectl: the operator CLI. Talks to edged over its control socket.
//!
//! Exit codes: 0 success; 1 failure (edged not reachable, a write failed);
//! 2 invalid input (bad config, bad CIDR, unknown name); 3 not found (no
//! such prefix / PoP / policy, address not registered); 4 a map is full.

use std::{
    io::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use clap::{CommandFactory as _, Parser, Subcommand};
use edge_userspace::{
    config::{self, PrefixSpec},
    control::{self, Request, Response},
};
use ipnet::IpNet;
use serde_json::Value;

/// Operate an edge forwarder.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// edged's control socket.
    #[arg(long, global = true, default_value = edge_userspace::plan::DEFAULT_SOCKET_PATH)]
    socket: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// How long to wait for edged's reply (seconds).
    #[arg(long, global = true, default_value_t = 120)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The daemon: version, uptime, config generation, ports, map fill.
    Status,
    /// Packet and byte counters per action, reason, prefix, PoP and port,
    /// with rates when watching.
    Stats {
        /// Refresh in place every interval until interrupted.
        #[arg(long)]
        watch: bool,
        /// Seconds between samples (rates are per second over it).
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        #[command(subcommand)]
        focus: Option<StatsFocus>,
    },
    /// Registered prefixes.
    #[command(subcommand)]
    Prefix(PrefixCommand),
    /// PoPs (next hops).
    #[command(subcommand)]
    Pop(PopCommand),
    /// Policies and their selection tables.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Config file operations.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Recent events: protection violations, PoP state changes, fallbacks.
    Events {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Remove the forwarder: detach from every port, remove pins and state;
    /// edged exits.
    Teardown,
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
enum StatsFocus {
    /// Only one registered prefix.
    Prefix { prefix: IpNet },
}

#[derive(Debug, Subcommand)]
enum PrefixCommand {
    /// Register a prefix live (kept across restarts; replaces the config's
    /// entry for the same prefix).
    Add {
        prefix: String,
        #[arg(long)]
        registration: Option<String>,
        /// microsoft (cold potato) or internet (hot potato).
        #[arg(long)]
        preference: Option<String>,
        #[arg(long, conflicts_with = "pop")]
        policy: Option<String>,
        /// Shorthand for a one-member policy.
        #[arg(long)]
        pop: Option<String>,
        /// DSCP class name or number.
        #[arg(long)]
        dscp: Option<String>,
        /// Peering ports the prefix is registered on (comma separated).
        #[arg(long, value_delimiter = ',')]
        protect: Vec<String>,
    },
    /// Remove a prefix (a config prefix stays removed until `prefix add`).
    Del { prefix: IpNet },
    /// Every registered prefix and where it came from.
    List,
    /// One registered prefix.
    Show { prefix: IpNet },
    /// What a packet to or from ADDRESS gets right now: prefix, preference,
    /// policy and the PoPs of its selection table.
    Lookup { address: IpAddr },
}

#[derive(Debug, Subcommand)]
enum PopCommand {
    List,
    /// Take a PoP out of every policy (counts as down).
    Drain {
        pop: String,
    },
    Undrain {
        pop: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    List,
    /// A policy's members and its selection table summary.
    Show {
        policy: String,
    },
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// RTT percentiles per PoP from the health probes.
    Latency {
        /// Seconds of history (at most 3600).
        #[arg(long, default_value_t = 300)]
        window: u64,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file without touching anything; prints every
    /// problem with its line.
    Check { file: PathBuf },
    /// Make edged re-read its config file and apply it as a diff (a bad
    /// config is rejected whole; the running state stays).
    Reload,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": format!("{e:#}")})
                );
            } else {
                eprintln!("edgectl: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn exit_code(kind: Option<&str>) -> ExitCode {
    match kind {
        Some("invalid") => ExitCode::from(2),
        Some("not_found") => ExitCode::from(3),
        Some("map_full") => ExitCode::from(4),
        _ => ExitCode::FAILURE,
    }
}

fn call(cli: &Cli, request: &Request) -> Result<Response> {
    control::call(&cli.socket, request, Duration::from_secs(cli.timeout))
}

/// Sends `request`; prints the reply as JSON or with `text`.
fn simple(cli: &Cli, request: Request, text: impl Fn(&Value) -> String) -> Result<ExitCode> {
    let r = call(cli, &request)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if r.ok {
        print!("{}", text(&r.data));
    } else {
        eprintln!("edgectl: {}", r.error.as_deref().unwrap_or("failed"));
    }
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        exit_code(r.kind.as_deref())
    })
}

fn changes(v: &Value) -> String {
    format!(
        "ok: {} map entries written, {} removed\n",
        v["changes"]["written"], v["changes"]["removed"]
    )
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "edgectl",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file }) => config_check(cli, file),
        Command::Config(ConfigCommand::Reload) => simple(cli, Request::ConfigReload {}, changes),
        Command::Events { limit } => simple(cli, Request::Events { limit: *limit }, |v| {
            let mut out = String::new();
            for e in v["events"].as_array().into_iter().flatten() {
                let t = e["time"].as_f64().unwrap_or(0.0);
                out += &format!("{t:>16.3}  {:<10} {}\n", s(&e["kind"]), s(&e["message"]));
            }
            out += &format!("({} protection events received in all)\n", v["received"]);
            out
        }),
        Command::Report(ReportCommand::Latency { window }) => simple(
            cli,
            Request::ReportLatency {
                window_seconds: *window,
            },
            |v| {
                let ms = |x: &Value| x.as_f64().map_or("-".into(), |m| format!("{m:.2}"));
                let mut out = format!(
                    "RTT over the last {} s, milliseconds\n{:<18} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
                    v["window_seconds"], "pop", "samples", "min", "p50", "p90", "p99", "max"
                );
                for p in v["pops"].as_array().into_iter().flatten() {
                    out += &format!(
                        "{:<18} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
                        s(&p["pop"]),
                        p["samples"],
                        ms(&p["min_ms"]),
                        ms(&p["p50_ms"]),
                        ms(&p["p90_ms"]),
                        ms(&p["p99_ms"]),
                        ms(&p["max_ms"])
                    );
                }
                out
            },
        ),
        Command::Status => simple(cli, Request::Status {}, status_text),
        Command::Teardown => simple(cli, Request::Teardown {}, |v| {
            format!("torn down: {} unpinned; edged exits\n", s(&v["torn_down"]))
        }),
        Command::Stats {
            watch,
            interval,
            focus,
        } => stats(cli, *watch, *interval, focus.as_ref()),
        Command::Prefix(p) => match p {
            PrefixCommand::Add {
                prefix,
                registration,
                preference,
                policy,
                pop,
                dscp,
                protect,
            } => {
                let spec = PrefixSpec {
                    prefix: prefix.clone(),
                    registration: registration.clone(),
                    preference: preference.clone(),
                    policy: policy.clone(),
                    pop: pop.clone(),
                    dscp: dscp.clone(),
                    protect: protect.clone(),
                };
                simple(cli, Request::PrefixAdd { spec }, changes)
            }
            PrefixCommand::Del { prefix } => {
                simple(cli, Request::PrefixDel { prefix: *prefix }, changes)
            }
            PrefixCommand::List => simple(cli, Request::PrefixList {}, |v| {
                let mut out = format!(
                    "{:<22} {:<20} {:<10} {:<18} {:<6} {:<7} {}\n",
                    "prefix", "registration", "preference", "policy", "dscp", "source", "protect"
                );
                for p in v.as_array().into_iter().flatten() {
                    out += &format!(
                        "{:<22} {:<20} {:<10} {:<18} {:<6} {:<7} {}\n",
                        s(&p["prefix"]),
                        s(&p["registration"]),
                        s(&p["preference"]),
                        s(&p["policy"]),
                        s(&p["dscp"]),
                        s(&p["source"]),
                        p["protect"]
                            .as_array()
                            .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
                            .filter(|x| !x.is_empty())
                            .unwrap_or_else(|| "-".into()),
                    );
                }
                out
            }),
            PrefixCommand::Show { prefix } => {
                simple(cli, Request::PrefixShow { prefix: *prefix }, |v| {
                    let mut out = String::new();
                    for (k, val) in v.as_object().into_iter().flatten() {
                        out += &format!("{k:<14} {}\n", s(val));
                    }
                    out
                })
            }
            PrefixCommand::Lookup { address } => lookup(cli, *address),
        },
        Command::Pop(p) => match p {
            PopCommand::List => simple(cli, Request::PopList {}, |v| {
                let mut out = format!(
                    "{:<4} {:<18} {:<12} {:<18} {:<8} {}\n",
                    "id", "pop", "interface", "next hop", "state", "encapsulation"
                );
                for p in v.as_array().into_iter().flatten() {
                    out += &format!(
                        "{:<4} {:<18} {:<12} {:<18} {:<8} {}\n",
                        s(&p["id"]),
                        s(&p["name"]),
                        s(&p["interface"]),
                        s(&p["mac"]),
                        if p["drained"] == true {
                            "drained"
                        } else {
                            "up"
                        },
                        p["encap"]
                            .as_array()
                            .map(|a| a.iter().map(s).collect::<Vec<_>>().join("; "))
                            .filter(|x| !x.is_empty())
                            .unwrap_or_else(|| "-".into()),
                    );
                }
                out
            }),
            PopCommand::Drain { pop } => {
                simple(cli, Request::PopDrain { pop: pop.clone() }, changes)
            }
            PopCommand::Undrain { pop } => {
                simple(cli, Request::PopUndrain { pop: pop.clone() }, changes)
            }
        },
        Command::Policy(p) => match p {
            PolicyCommand::List => simple(cli, Request::PolicyList {}, |v| {
                let mut out = format!(
                    "{:<4} {:<24} {:<11} {}\n",
                    "id", "policy", "method", "members"
                );
                for p in v.as_array().into_iter().flatten() {
                    let members: Vec<String> = p["members"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|m| {
                            format!(
                                "{}(w{} p{}{})",
                                s(&m["member"]),
                                m["weight"],
                                m["priority"],
                                if m["up"] == true { "" } else { " down" }
                            )
                        })
                        .collect();
                    let ids: Vec<String> = p["tables"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|t| t["id"].to_string())
                        .collect();
                    out += &format!(
                        "{:<4} {:<24} {:<11} {}\n",
                        ids.join(","),
                        s(&p["name"]),
                        s(&p["method"]),
                        members.join(" ")
                    );
                }
                out
            }),
            PolicyCommand::Show { policy } => simple(
                cli,
                Request::PolicyShow {
                    policy: policy.clone(),
                },
                |v| {
                    let p = &v["policy"];
                    let mut out = format!(
                        "policy {}, method {}, used by {} prefixes\n",
                        s(&p["name"]),
                        s(&p["method"]),
                        v["prefixes"]
                    );
                    for t in v["tables"].as_array().into_iter().flatten() {
                        out += &format!(
                            "selection table {} (id {}, {} slots){}:\n",
                            s(&t["key"]),
                            t["id"],
                            v["slots"],
                            t["fallback"]
                                .as_str()
                                .map(|f| format!(", ALL MEMBERS DOWN: fallback {f}"))
                                .unwrap_or_default()
                        );
                        out += &table_text(&t["table"]);
                    }
                    out
                },
            ),
        },
    }
}

fn table_text(rows: &Value) -> String {
    let mut out = String::new();
    for r in rows.as_array().into_iter().flatten() {
        out += &format!(
            "  {:<24} {:>5} slots ({:.1}% of flows)\n",
            s(&r["pop"]),
            r["slots"],
            100.0 * r["share"].as_f64().unwrap_or(0.0)
        );
    }
    out
}

fn status_text(v: &Value) -> String {
    let mut out = format!(
        "edged {} (pid {}), up {} s, config {} (generation {})\n",
        s(&v["version"]),
        v["pid"],
        v["uptime_seconds"],
        s(&v["config"]),
        v["generation"]
    );
    out += &format!(
        "pins {}, state {}\n",
        s(&v["pin_path"]),
        s(&v["state_path"])
    );
    out += &format!(
        "default action {}, backbone exit {}, transit exit {}\n",
        s(&v["default_action"]),
        s(&v["backbone_exit"]),
        s(&v["transit_exit"])
    );
    out += "ports:\n";
    for p in v["ports"].as_array().into_iter().flatten() {
        out += &format!(
            "  {:<12} {:<9} ifindex {}\n",
            s(&p["interface"]),
            s(&p["role"]),
            p["ifindex"]
        );
    }
    out += "maps:\n";
    for (k, m) in v["maps"].as_object().into_iter().flatten() {
        let used = m["used"].as_f64().unwrap_or(0.0);
        let limit = m["limit"].as_f64().unwrap_or(1.0);
        out += &format!(
            "  {k:<12} {:>9} / {:<9} ({:.1}%)\n",
            m["used"],
            m["limit"],
            100.0 * used / limit
        );
    }
    if let Some(d) = v["drained"].as_array().filter(|d| !d.is_empty()) {
        out += &format!(
            "drained: {}\n",
            d.iter().map(s).collect::<Vec<_>>().join(", ")
        );
    }
    out
}

fn lookup(cli: &Cli, address: IpAddr) -> Result<ExitCode> {
    let r = call(cli, &Request::PrefixLookup { address })?;
    if !r.ok {
        if cli.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            eprintln!("edgectl: {}", r.error.as_deref().unwrap_or("failed"));
        }
        return Ok(exit_code(r.kind.as_deref()));
    }
    let v = &r.data;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if v["registered"] == true {
        println!(
            "{address}: {} ({}, {})",
            s(&v["prefix"]),
            s(&v["registration"]),
            s(&v["source"])
        );
        println!("  preference       {}", s(&v["preference"]));
        println!("  policy           {}", s(&v["policy"]));
        println!(
            "  dscp             {}",
            v["dscp"].as_u64().map_or("keep".into(), |d| d.to_string())
        );
        let protect = v["protect"].as_array().cloned().unwrap_or_default();
        println!(
            "  protected on     {}",
            if protect.is_empty() {
                "any peering port".to_string()
            } else {
                protect.iter().map(s).collect::<Vec<_>>().join(", ")
            }
        );
        println!("  from customer    {}", s(&v["from_customer"]));
        println!("  toward customer, by flow:");
        print!("{}", table_text(&v["toward_customer"]));
    } else {
        println!(
            "{address}: no registered prefix (default action {})",
            s(&v["default_action"])
        );
    }
    Ok(if v["registered"] == true {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn config_check(cli: &Cli, file: &Path) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match config::parse(&text) {
        Ok(plan) => {
            if cli.json {
                println!("{}", serde_json::json!({"ok": true, "problems": []}));
            } else {
                println!(
                    "{}: ok ({} ports, {} PoPs, {} policies, {} prefixes)",
                    file.display(),
                    plan.ports.len(),
                    plan.pops.len(),
                    plan.policies.len(),
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

/// One stats sample: (taken at, data).
fn sample(
    cli: &Cli,
    focus: Option<&StatsFocus>,
) -> Result<std::result::Result<(Instant, Value), Response>> {
    let prefix = focus.map(|StatsFocus::Prefix { prefix }| *prefix);
    let r = call(cli, &Request::Stats { prefix })?;
    Ok(if r.ok {
        Ok((Instant::now(), r.data))
    } else {
        Err(r)
    })
}

/// Rows (section, name, packets, bytes) of a stats reply.
fn rows(v: &Value) -> Vec<(String, String, u64, u64)> {
    let mut out = Vec::new();
    let n = |c: &Value, k: &str| c[k].as_u64().unwrap_or(0);
    for section in ["actions", "reasons"] {
        for (name, c) in v[section].as_object().into_iter().flatten() {
            out.push((section.into(), name.clone(), n(c, "packets"), n(c, "bytes")));
        }
    }
    for (section, key) in [("prefixes", "prefix"), ("pops", "pop"), ("ports", "port")] {
        for c in v[section].as_array().into_iter().flatten() {
            let mut name = s(&c[key]);
            if section == "prefixes" {
                name = format!("{name} ({})", s(&c["registration"]));
            }
            out.push((section.into(), name, n(c, "packets"), n(c, "bytes")));
        }
    }
    out
}

fn stats(cli: &Cli, watch: bool, interval: f64, focus: Option<&StatsFocus>) -> Result<ExitCode> {
    let interval = Duration::from_secs_f64(interval.clamp(0.1, 3600.0));
    let (mut t0, mut v0) = match sample(cli, focus)? {
        Ok(s) => s,
        Err(r) => {
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                eprintln!("edgectl: {}", r.error.as_deref().unwrap_or("failed"));
            }
            return Ok(exit_code(r.kind.as_deref()));
        }
    };
    if !watch {
        if cli.json {
            println!("{}", serde_json::to_string_pretty(&Response::ok(v0))?);
        } else {
            print!("{}", stats_text(&v0, None));
        }
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        std::thread::sleep(interval);
        let (t1, v1) = match sample(cli, focus)? {
            Ok(s) => s,
            Err(r) => {
                eprintln!("edgectl: {}", r.error.as_deref().unwrap_or("failed"));
                return Ok(exit_code(r.kind.as_deref()));
            }
        };
        let secs = (t1 - t0).as_secs_f64();
        if cli.json {
            let rates: Vec<Value> = rates(&v0, &v1, secs)
                .into_iter()
                .map(|(sec, name, p, b, pps, bps)| {
                    serde_json::json!({"section": sec, "name": name, "packets": p, "bytes": b,
                        "packets_per_second": pps, "bits_per_second": bps})
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"interval_seconds": secs, "rows": rates})
            );
        } else {
            // Clear the screen and home the cursor: refresh in place.
            print!("\x1b[2J\x1b[H{}", stats_text(&v1, Some((&v0, secs))));
        }
        std::io::stdout().flush()?;
        (t0, v0) = (t1, v1);
    }
}

/// (section, name, packets, bytes, packets/s, bits/s) between two samples.
fn rates(v0: &Value, v1: &Value, secs: f64) -> Vec<(String, String, u64, u64, f64, f64)> {
    let before = rows(v0);
    rows(v1)
        .into_iter()
        .map(|(sec, name, p, b)| {
            let (p0, b0) = before
                .iter()
                .find(|r| r.0 == sec && r.1 == name)
                .map_or((p, b), |r| (r.2, r.3));
            let pps = p.saturating_sub(p0) as f64 / secs;
            let bps = 8.0 * b.saturating_sub(b0) as f64 / secs;
            (sec, name, p, b, pps, bps)
        })
        .collect()
}

fn stats_text(v: &Value, previous: Option<(&Value, f64)>) -> String {
    let watching = previous.is_some();
    let rows = match previous {
        Some((v0, secs)) => rates(v0, v, secs),
        None => rows(v)
            .into_iter()
            .map(|(a, b, c, d)| (a, b, c, d, 0.0, 0.0))
            .collect(),
    };
    let mut out = String::new();
    let mut section = String::new();
    for (sec, name, p, b, pps, bps) in rows {
        if sec != section {
            out += &format!("\n{:<36} {:>14} {:>16}", sec, "packets", "bytes");
            if watching {
                out += &format!(" {:>12} {:>12}", "pkt/s", "bit/s");
            }
            out.push('\n');
            section = sec;
        }
        out += &format!("  {name:<34} {p:>14} {b:>16}");
        if watching {
            out += &format!(" {pps:>12.0} {bps:>12.0}");
        }
        out.push('\n');
    }
    out
}
