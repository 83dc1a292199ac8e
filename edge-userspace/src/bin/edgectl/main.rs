//! edgectl: the operator CLI. Talks to edged over its control socket.
//!
//! Exit codes: 0 success; 1 failure (edged not reachable, a write failed);
//! 2 invalid input (bad config, bad CIDR, unknown name); 3 not found (no
//! such prefix / PoP / policy, address not registered); 4 a map is full.
//!
//! `main.rs` defines the command line and dispatches; `commands.rs` builds
//! the requests and calls edged; `render.rs` turns typed replies into text.

mod batch;
mod commands;
mod list;
mod render;
mod routes;

use std::{net::IpAddr, path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::{CommandFactory as _, Parser, Subcommand};
use edge_userspace::control::{GroupBy, Request};
use ipnet::IpNet;

/// Operate an edge forwarder.
#[derive(Debug, Parser)]
#[command(name = "edgectl", version = env!("EDGE_VERSION"))]
struct Cli {
    /// edged's control socket (`daemon.socket_path` in edged's config).
    #[arg(
        long,
        global = true,
        env = "EDGE_SOCKET",
        default_value = edge_userspace::plan::DEFAULT_SOCKET_PATH
    )]
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
        #[command(flatten)]
        filters: Filters,
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
    /// Live changes: the prefixes added, replaced or removed with edgectl
    /// on top of the config file.
    #[command(subcommand)]
    Live(LiveCommand),
    /// Reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Recent events: protection violations, PoP state changes, fallbacks,
    /// interface changes, operators' changes, route anomalies and holds,
    /// customer latency degradations and recoveries.
    Events {
        /// How many of the most recent events.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Then keep printing new events as they happen (until interrupted);
        /// with --json, one event per line.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Seconds between two looks at edged's events with --follow.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
    },
    /// Route analytics from the BGP speakers' BMP feeds: who announces
    /// the registered prefixes, hijacks, leaks, visibility, AS hops.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Remove the forwarder: detach from every port, remove pins and state;
    /// edged exits.
    Teardown,
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

/// Which prefixes `stats` and `prefix list` show (all given must match).
#[derive(Debug, Clone, Default, clap::Args)]
struct Filters {
    /// Only the N prefixes with the most packets, busiest first.
    #[arg(long, value_name = "N")]
    top: Option<usize>,
    /// Only the prefixes of this registration.
    #[arg(long, value_name = "NAME")]
    registration: Option<String>,
    /// Only the prefixes inside this network (or equal to it).
    #[arg(long, value_name = "CIDR")]
    within: Option<IpNet>,
    /// Only the prefixes from this source (route: any route table's).
    #[arg(long, value_parser = ["config", "live", "route"])]
    source: Option<String>,
    /// A private domain's prefixes, ports and PoPs (`public`: the public
    /// domain's); without it, the public prefixes and every port and PoP.
    #[arg(long, value_name = "NAME", global = true)]
    domain: Option<String>,
}

#[derive(Debug, Subcommand)]
enum StatsFocus {
    /// Only one registered prefix.
    Prefix { prefix: IpNet },
}

#[derive(Debug, Subcommand)]
enum PrefixCommand {
    /// Register a prefix live (kept across restarts; replaces the config's
    /// entry for the same prefix), or every prefix of a file in one
    /// transaction (--file).
    Add {
        /// The prefix (CIDR).
        #[arg(required_unless_present = "file")]
        prefix: Option<String>,
        #[command(flatten)]
        keys: batch::Keys,
        /// Register every prefix of FILE (`-`: standard input) as one
        /// transaction, all or nothing: one per line, written as this
        /// command's arguments (`PREFIX [--pop NAME] [--dscp ef] ...`);
        /// blank lines and `#` comments are skipped.
        #[arg(long, value_name = "FILE", conflicts_with_all = [
            "prefix", "registration", "preference", "policy", "pop", "dscp", "protect",
            "region", "domain"
        ])]
        file: Option<PathBuf>,
        /// Register it in this private domain (`public`: the default):
        /// replaces the domain's entry for the network, always checked and
        /// applied through the whole pipeline.
        #[arg(long, value_name = "NAME")]
        domain: Option<String>,
    },
    /// Remove a prefix (a config prefix stays removed until `prefix add`),
    /// or every prefix of a file in one transaction (--file).
    Del {
        #[arg(required_unless_present = "file")]
        prefix: Option<IpNet>,
        /// Remove every prefix of FILE (`-`: standard input) as one
        /// transaction, all or nothing: one prefix per line; blank lines and
        /// `#` comments are skipped.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["prefix", "domain"])]
        file: Option<PathBuf>,
        /// Remove it from this private domain (its live entry, or the
        /// file's).
        #[arg(long, value_name = "NAME")]
        domain: Option<String>,
    },
    /// Every registered prefix and where it came from.
    List {
        #[command(flatten)]
        filters: Filters,
    },
    /// One registered prefix.
    Show {
        prefix: IpNet,
        /// A private domain's prefix (`public`: the default).
        #[arg(long, value_name = "NAME")]
        domain: Option<String>,
    },
    /// What a packet to or from ADDRESS gets right now: prefix, preference,
    /// policy and the PoPs of its selection table.
    Lookup {
        address: IpAddr,
        /// Look ADDRESS up in this private domain (`public`: the default).
        #[arg(long, value_name = "NAME")]
        domain: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PopCommand {
    /// Every PoP: next hop, health (state, since, RTT, loss), encapsulation.
    List {
        /// Only this domain's PoPs (`public` or a private domain's name).
        #[arg(long, value_name = "NAME")]
        domain: Option<String>,
    },
    /// Take a PoP out of every policy (counts as down).
    Drain { pop: String },
    /// Put a drained PoP back (up again if its probe says so).
    Undrain { pop: String },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Every policy: method, members (up or down), its selection tables.
    List {
        /// Only this domain's policies.
        #[arg(long, value_name = "NAME")]
        domain: Option<String>,
    },
    /// A policy's members and its selection table summary.
    Show { policy: String },
}

#[derive(Debug, Subcommand)]
enum RoutesCommand {
    /// Every path the monitored peers announce for PREFIX and its
    /// more-specifics: peer, RIB, AS path, origin, communities, since
    /// when, and the anomaly it shows.
    Show { prefix: IpNet },
    /// Route anomalies: the active ones, then the cleared ones edged keeps.
    Anomalies {
        /// Only those raised or cleared since: a duration back from now
        /// (90s, 15m, 2h, 1d) or an RFC 3339 time.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
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
    /// Customer round-trip times (edge ↔ customer host, measured passively
    /// from forwarded TCP): samples, min, p50, p90, p99, the objective and
    /// the share above it, per prefix, registration or region.
    Customers {
        /// How rows are grouped.
        #[arg(long, value_enum, default_value_t = By::Registration)]
        by: By,
        /// How far back: a duration (90s, 15m, 2h, 1d) or an RFC 3339 time
        /// (cut to what `[latency] retain_minutes` keeps).
        #[arg(long, value_name = "DURATION", default_value = "15m")]
        since: String,
    },
}

/// `report customers --by`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum By {
    Prefix,
    Registration,
    Region,
}

#[derive(Debug, Subcommand)]
enum LiveCommand {
    /// Every live change: network, kind (added, replaced, removed), when,
    /// by whom, and the live entry.
    List,
    /// Drop live changes from the overlay (destructive: the live entries
    /// are lost): each network goes back to what the config file says,
    /// its entry or nothing. One change, all or nothing.
    Clear {
        /// The networks whose live changes to drop.
        #[arg(required_unless_present = "all", value_name = "NETWORK")]
        networks: Vec<IpNet>,
        /// Drop every live change.
        #[arg(long, conflicts_with = "networks")]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file without touching anything; prints every
    /// problem with its line.
    Check {
        /// The file (default: the packaged config's place).
        #[arg(default_value = "/etc/edge/edge.toml")]
        file: PathBuf,
    },
    /// The config file as edged last applied it; with --effective, the
    /// config edged runs: the file with the live changes merged, as TOML.
    Show {
        /// The file with the live changes merged (the file's entry for a
        /// network a live change names replaced or left out).
        #[arg(long)]
        effective: bool,
    },
    /// What the live changes add, replace and remove relative to the config
    /// file, as a diff of `[[prefixes]]` entries.
    Diff,
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
        // The reader of our output went away (`edgectl ... | head`).
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "error": format!("{e:#}")})
                );
            } else {
                eprintln!("edgectl: {e:#}");
            }
            // The control socket's permissions refused us: denied, as when
            // edged refuses the peer.
            let denied = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
            });
            if denied {
                ExitCode::from(5)
            } else {
                ExitCode::FAILURE
            }
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
        Command::Config(ConfigCommand::Show { effective }) => {
            commands::config_show(cli, *effective)
        }
        Command::Config(ConfigCommand::Diff) => commands::config_diff(cli),
        Command::Live(LiveCommand::List) => simple(cli, Request::LiveList {}, render::live_list),
        Command::Live(LiveCommand::Clear { networks, all }) => simple(
            cli,
            Request::LiveClear {
                networks: networks.clone(),
                all: *all,
            },
            render::changed,
        ),
        Command::Config(ConfigCommand::Reload { force }) => simple(
            cli,
            Request::ConfigReload { force: *force },
            render::changed,
        ),
        Command::Events {
            limit,
            follow: false,
            ..
        } => simple(cli, Request::Events { limit: *limit }, render::events),
        Command::Events {
            limit,
            follow: true,
            interval,
        } => commands::follow_events(cli, *limit, *interval),
        Command::Report(ReportCommand::Latency { window }) => simple(
            cli,
            Request::ReportLatency {
                window_seconds: *window,
            },
            render::latency,
        ),
        Command::Report(ReportCommand::Customers { by, since }) => {
            let now = edge_userspace::analytics::now();
            let since_seconds = match routes::since(since, now) {
                Ok(t) if t <= now => (now - t).round() as u64,
                Ok(_) => return invalid(cli, &format!("--since {since:?} is in the future")),
                Err(e) => return invalid(cli, &format!("{e:#}")),
            };
            let by = match by {
                By::Prefix => GroupBy::Prefix,
                By::Registration => GroupBy::Registration,
                By::Region => GroupBy::Region,
            };
            simple(
                cli,
                Request::ReportCustomers { by, since_seconds },
                render::customers,
            )
        }
        Command::Status => simple(cli, Request::Status {}, render::status),
        Command::Routes(RoutesCommand::Show { prefix }) => {
            simple(cli, Request::RoutesShow { prefix: *prefix }, routes::show)
        }
        Command::Routes(RoutesCommand::Anomalies { since }) => {
            let since = match since {
                Some(s) => match routes::since(s, edge_userspace::analytics::now()) {
                    Ok(t) => Some(t),
                    Err(e) => return invalid(cli, &format!("{e:#}")),
                },
                None => None,
            };
            simple(cli, Request::RoutesAnomalies { since }, routes::anomalies)
        }
        Command::Teardown => simple(cli, Request::Teardown {}, render::torn_down),
        Command::Stats {
            watch,
            interval,
            filters,
            focus,
        } => {
            let prefix = focus.as_ref().map(|StatsFocus::Prefix { prefix }| *prefix);
            let f = filters.clone();
            let request = Request::Stats {
                prefix,
                top: f.top,
                registration: f.registration,
                within: f.within,
                source: f.source,
                domain: f.domain,
            };
            commands::stats(cli, *watch, *interval, request)
        }
        Command::Prefix(p) => match p {
            PrefixCommand::Add {
                prefix,
                keys,
                file,
                domain,
            } => match (prefix, file) {
                (_, Some(file)) => commands::batch(cli, file, batch::Kind::Add),
                (Some(prefix), None) => {
                    let mut spec = keys.spec(prefix.clone());
                    spec.domain = domain.clone();
                    simple(cli, Request::PrefixAdd { spec }, render::changed)
                }
                (None, None) => unreachable!("clap requires one"),
            },
            PrefixCommand::Del {
                prefix,
                file,
                domain,
            } => match (prefix, file) {
                (_, Some(file)) => commands::batch(cli, file, batch::Kind::Del),
                (Some(prefix), None) => simple(
                    cli,
                    Request::PrefixDel {
                        prefix: *prefix,
                        domain: domain.clone(),
                    },
                    render::changed,
                ),
                (None, None) => unreachable!("clap requires one"),
            },
            PrefixCommand::List { filters } => {
                let f = filters.clone();
                let request = Request::PrefixList {
                    top: f.top,
                    registration: f.registration,
                    within: f.within,
                    source: f.source,
                    domain: f.domain,
                };
                list::prefix_list(cli, request)
            }
            PrefixCommand::Show { prefix, domain } => simple(
                cli,
                Request::PrefixShow {
                    prefix: *prefix,
                    domain: domain.clone(),
                },
                render::prefix,
            ),
            PrefixCommand::Lookup { address, domain } => {
                commands::lookup(cli, *address, domain.clone())
            }
        },
        Command::Pop(p) => match p {
            PopCommand::List { domain } => simple(
                cli,
                Request::PopList {
                    domain: domain.clone(),
                },
                render::pop_list,
            ),
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
            PolicyCommand::List { domain } => simple(
                cli,
                Request::PolicyList {
                    domain: domain.clone(),
                },
                render::policy_list,
            ),
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

/// A bad argument edgectl found itself: exit code 2, the error as JSON with
/// `--json`.
fn invalid(cli: &Cli, error: &str) -> Result<ExitCode> {
    if cli.json {
        println!(
            "{}",
            serde_json::json!({"ok": false, "kind": "invalid", "error": error})
        );
    } else {
        eprintln!("edgectl: {error}");
    }
    Ok(ExitCode::from(2))
}
