//! edged: loads the forwarder, attaches it to the configured ports, fills
//! the maps from the config, and detaches cleanly on SIGINT/SIGTERM.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Parser;
use edge_userspace::{config, loader::Dataplane};
use log::{error, info};
use tokio::signal::unix::{SignalKind, signal};

/// The edge forwarder daemon.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Config file (TOML); see docs/config.md.
    #[arg(short, long, default_value = "/etc/edge/edge.toml")]
    config: PathBuf,
    /// Pin path to use instead of the config's `daemon.pin_path`.
    #[arg(long)]
    pin_path: Option<PathBuf>,
    /// Validate the config, print any problems, and exit without touching anything.
    #[arg(long)]
    check: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = run(Args::parse()).await {
        error!("{e:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading config {}", args.config.display()))?;
    let mut plan =
        config::parse(&text).with_context(|| format!("config {}", args.config.display()))?;
    if let Some(pin_path) = args.pin_path {
        plan.pin_path = pin_path;
    }
    if args.check {
        info!("{}: ok", args.config.display());
        return Ok(());
    }
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;

    let dataplane = Dataplane::start(&plan)?;
    info!(
        "forwarding; maps pinned under {}",
        dataplane.pin_dir().display()
    );
    // Readiness line for supervisors and tests.
    println!("edged: ready");

    tokio::select! {
        _ = sigint.recv() => info!("SIGINT: stopping"),
        _ = sigterm.recv() => info!("SIGTERM: stopping"),
    }
    let stats = dataplane.counters.read(plan.prefixes.len() as u32 + 1)?;
    for (name, c) in &stats.actions {
        info!("total {name}: {} packets, {} bytes", c.packets, c.bytes);
    }
    dataplane.stop()
}
