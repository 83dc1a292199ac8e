//! edgectl: the operator CLI. Talks to edged over its control socket.
//!
//! Exit codes: 0 success; 1 failure (edged not reachable, a write failed);
//! 2 invalid input (bad config, bad CIDR, unknown name); 3 not found (no
//! such prefix / PoP / policy, address not registered); 4 a map is full.
//!
//! `main.rs` defines the command line and dispatches; `commands.rs` builds
//! the requests and calls edged; `render.rs` turns typed replies into text.

mod commands;
mod render;

use std::{net::IpAddr, path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::{CommandFactory as _, Parser, Subcommand};
use edge_userspace::{config::PrefixSpec, control::Request};
use ipnet::IpNet;

/// Operate an edge forwarder.
#[derive(Debug, Parser)]
#[command(name = "edgectl", version = env!("EDGE_VERSION"))]
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
        /// How many of the most recent events.
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
        /// Registration name (default: the prefix itself).
        #[arg(long)]
        registration: Option<String>,
        /// microsoft (cold potato) or internet (hot potato).
        #[arg(long)]
        preference: Option<String>,
        /// The policy that picks its PoP (toward the customer).
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
    /// Every PoP: next hop, health (state, since, RTT, loss), encapsulation.
    List,
    /// Take a PoP out of every policy (counts as down).
    Drain { pop: String },
    /// Put a drained PoP back (up again if its probe says so).
    Undrain { pop: String },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Every policy: method, members (up or down), its selection tables.
    List,
    /// A policy's members and its selection table summary.
    Show { policy: String },
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
    Reload {
        /// Apply the file even when it drops more of the file's prefixes
        /// than `[daemon] reload_max_shrink_percent` allows (a guard
        /// against a file caught half-written).
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    // Output piped into `head` and the like ends quietly when the reader
    // goes, as for any Unix filter, not with a panic on EPIPE.
    // SAFETY: restoring the default disposition, before any thread starts.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    // `edgectl --man-pages DIR` writes edgectl.1 and one page per
    // subcommand (clap_mangen) into DIR, for `cargo xtask package`, which
    // cannot link edge-userspace to render them itself: its build script
    // needs the eBPF toolchain that `cargo xtask setup` installs. The pages
    // then describe exactly the binary that is packaged. Not a clap
    // argument: clap_complete would offer it in every shell's completions
    // (hidden or not), and --help would have to hide it.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let [_, flag, dir] = args.as_slice()
        && flag == "--man-pages"
    {
        return match clap_mangen::generate_to(Cli::command(), dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("edgectl: writing the man pages into {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        };
    }
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

fn run(cli: &Cli) -> Result<ExitCode> {
    use commands::simple;
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
        Command::Config(ConfigCommand::Check { file }) => commands::config_check(cli, file),
        Command::Config(ConfigCommand::Reload { force }) => simple(
            cli,
            Request::ConfigReload { force: *force },
            render::changed,
        ),
        Command::Events { limit } => simple(cli, Request::Events { limit: *limit }, render::events),
        Command::Report(ReportCommand::Latency { window }) => simple(
            cli,
            Request::ReportLatency {
                window_seconds: *window,
            },
            render::latency,
        ),
        Command::Status => simple(cli, Request::Status {}, render::status),
        Command::Teardown => simple(cli, Request::Teardown {}, render::torn_down),
        Command::Stats {
            watch,
            interval,
            focus,
        } => {
            let prefix = focus.as_ref().map(|StatsFocus::Prefix { prefix }| *prefix);
            commands::stats(cli, *watch, *interval, prefix)
        }
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
                simple(cli, Request::PrefixAdd { spec }, render::changed)
            }
            PrefixCommand::Del { prefix } => {
                simple(cli, Request::PrefixDel { prefix: *prefix }, render::changed)
            }
            PrefixCommand::List => simple(cli, Request::PrefixList {}, render::prefix_list),
            PrefixCommand::Show { prefix } => {
                simple(cli, Request::PrefixShow { prefix: *prefix }, render::prefix)
            }
            PrefixCommand::Lookup { address } => commands::lookup(cli, *address),
        },
        Command::Pop(p) => match p {
            PopCommand::List => simple(cli, Request::PopList {}, render::pop_list),
            PopCommand::Drain { pop } => {
                simple(cli, Request::PopDrain { pop: pop.clone() }, render::changed)
            }
            PopCommand::Undrain { pop } => simple(
                cli,
                Request::PopUndrain { pop: pop.clone() },
                render::changed,
            ),
        },
        Command::Policy(p) => match p {
            PolicyCommand::List => simple(cli, Request::PolicyList {}, render::policy_list),
            PolicyCommand::Show { policy } => simple(
                cli,
                Request::PolicyShow {
                    policy: policy.clone(),
                },
                render::policy_show,
            ),
        },
    }
}
