//! edged: loads the forwarder (or takes over the one an earlier run left
//! pinned), applies the config as a diff, and serves the control socket and
//! the metrics endpoint. Stopping edged leaves the data plane forwarding;
//! `edged --detach` or `edgectl teardown` removes it.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Parser;
use edge_userspace::{
    analytics,
    control::{self, Request},
    daemon::{self, Daemon, Overrides, logging, notify},
    dataplane::{events, loader},
    desired::state::State,
    metrics,
};
use log::{error, info, warn};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
    task::block_in_place,
};

/// The edge forwarder daemon.
#[derive(Debug, Parser)]
#[command(name = "edged", version = env!("EDGE_VERSION"))]
struct Args {
    /// Config file (TOML); see docs/config.md.
    #[arg(short, long, default_value = "/etc/edge/edge.toml")]
    config: PathBuf,
    /// Pin path to use instead of the config's `daemon.pin_path`.
    #[arg(long)]
    pin_path: Option<PathBuf>,
    /// Control socket to use instead of the config's `daemon.socket_path`.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// State file to use instead of the config's `daemon.state_path`.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Validate the config, print any problems, and exit without touching
    /// anything (exit code 2 when the config is invalid, 1 when anything
    /// else fails: the file cannot be read, the state file is invalid).
    #[arg(long)]
    check: bool,
    /// Remove the forwarder: detach from every port, remove the pins and the
    /// state file (through the running edged if there is one), then exit.
    #[arg(long, conflicts_with = "check")]
    detach: bool,
    /// Run even when the pin directory is visible only in edged's own mount
    /// namespace (started with `ip netns exec`, say): the data plane then
    /// stops whenever edged stops. Without it, edged refuses to start there.
    #[arg(long)]
    private_pins: bool,
    /// Attach an XDP_PASS program to the far end of every egress veth port
    /// whose far end would drop what XDP redirects into it (no XDP program
    /// in native mode, GRO off), in the far end's namespace: for veth labs.
    /// Pinned with the ports' links; removed on teardown, when the port
    /// leaves the config, and at a start or reload without this flag.
    #[arg(long)]
    veth_peer_pass: bool,
    // Hidden, for `cargo xtask package`: xtask cannot link edge-userspace
    // to render the page itself (its build script needs the eBPF toolchain
    // that `cargo xtask setup` installs), and a page from the binary
    // describes exactly the binary that is packaged.
    /// Write the man page (edged.8) into DIR and exit.
    #[arg(long, hide = true, value_name = "DIR")]
    man_pages: Option<PathBuf>,
}

// Two workers: the daemon's own work (compiling and writing a change,
// resolving a next hop, reading a settling config file) blocks, and runs in
// `block_in_place` so that the probes, the control socket and the metrics
// keep running on the other worker meanwhile.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    logging::init();
    let args = Args::parse();
    let check = args.check;
    if let Err(e) = run(args).await {
        error!("{e:#}");
        notify::stopping(&format!("failed: {e:#}"));
        // `--check` of an invalid config exits with 2, as `edgectl config
        // check` does; anything else that fails (an unreadable file, a
        // start) with 1.
        let invalid = e.chain().any(|c| {
            c.downcast_ref::<edge_userspace::config::Invalid>()
                .is_some()
        });
        std::process::exit(if check && invalid { 2 } else { 1 });
    }
}

async fn run(args: Args) -> Result<()> {
    if let Some(dir) = &args.man_pages {
        use clap::CommandFactory as _;
        let path = clap_mangen::Man::new(Args::command())
            .section("8")
            .generate_to(dir)
            .with_context(|| format!("writing the man page into {}", dir.display()))?;
        println!("{}", path.display());
        return Ok(());
    }
    let overrides = Overrides {
        pin_path: args.pin_path,
        socket_path: args.socket,
        state_path: args.state,
        private_pins: args.private_pins,
        veth_peer_pass: args.veth_peer_pass,
    };
    daemon::warn_if_writable(&args.config);
    if args.check {
        let loaded = daemon::load(&args.config, &overrides)?;
        edge_userspace::desired::layout(&loaded.plan)
            .with_context(|| format!("config {}", args.config.display()))?;
        for name in daemon::missing_interfaces(&loaded.plan) {
            warn!(
                "interface {name} does not exist in this network namespace: edged started here with this config fails (interface {name} not found)"
            );
        }
        info!("{}: ok", args.config.display());
        return Ok(());
    }
    if args.detach {
        return detach(&args.config, &overrides);
    }
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;

    // The config and state files, read once.
    let loaded = block_in_place(|| daemon::load(&args.config, &overrides))?;
    let socket_path = loaded.plan.socket_path.clone();
    // Bind first: a second edged fails here, before touching the maps.
    let (listener, readers) = control::bind(&socket_path, loaded.plan.read_group.as_deref())?;
    let (mut daemon, mut events) =
        match block_in_place(|| Daemon::start(&args.config, overrides, loaded)) {
            Ok(d) => d,
            Err(e) => {
                let _ = std::fs::remove_file(&socket_path);
                return Err(e);
            }
        };
    let plan = daemon.plan().clone();
    info!(
        "forwarding; maps pinned under {}, control socket {}",
        plan.pin_path.display(),
        plan.socket_path.display()
    );
    metrics::raise_fd_limit();
    if let Some(addr) = plan.metrics_address {
        metrics::serve(
            addr,
            plan.pin_path.clone(),
            daemon.view(),
            daemon.host_facts(),
            plan.bmp_listen.map(|_| daemon.analytics()),
            daemon.customer_facts(),
        )?;
        info!("metrics on http://{addr}/metrics");
    }
    // Route analytics: BMP sessions ingested on a thread of their own;
    // their events come back here (bounded).
    let (route_tx, mut route_rx) = mpsc::channel(analytics::listener::EVENTS);
    if let Some(addr) = plan.bmp_listen {
        let bound = analytics::listener::listen(addr, daemon.analytics(), route_tx)
            .with_context(|| format!("binding the BMP listener [bmp] listen = \"{addr}\""))?;
        info!("route analytics: BMP on {bound}");
    } else {
        drop(route_tx);
    }
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(control::serve(listener, tx, readers));
    let mut flush = tokio::time::interval(events::LOG_INTERVAL);
    let mut host_check = tokio::time::interval_at(
        tokio::time::Instant::now() + daemon::HOST_CHECK_INTERVAL,
        daemon::HOST_CHECK_INTERVAL,
    );
    // Customer latency reads the kernel's histograms every `[latency]
    // period_ms`; the tick only checks whether one is due.
    let mut latency_tick = tokio::time::interval(std::time::Duration::from_millis(100));
    latency_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut link_check = tokio::time::interval_at(
        tokio::time::Instant::now() + daemon::LINK_CHECK_INTERVAL,
        daemon::LINK_CHECK_INTERVAL,
    );
    let stops = if daemon.pins().scope == loader::Scope::Private {
        "the data plane stops with it (--private-pins)"
    } else {
        "the data plane keeps forwarding"
    };
    // Readiness line for supervisors and tests.
    println!("edged: ready");
    notify::ready(&format!(
        "forwarding; control socket {}",
        plan.socket_path.display()
    ));
    let mut farewell = format!("exiting; {stops}");

    loop {
        tokio::select! {
            Some((request, caller, reply)) = rx.recv() => {
                let teardown = matches!(request, Request::Teardown {});
                let reload = matches!(request, Request::ConfigReload { .. });
                if reload {
                    notify::reloading("reloading the config (control socket)");
                }
                let (response, exit) = block_in_place(|| {
                    let r = daemon.handle(request, Some(caller));
                    daemon.sync_analytics();
                    r
                });
                if reload && response.ok {
                    // Ports may have changed.
                    block_in_place(|| {
                        daemon.check_veth_peers(true);
                        daemon.check_links();
                    });
                }
                if reload {
                    notify::reloaded(&if response.ok {
                        "forwarding; config reloaded".to_string()
                    } else {
                        format!(
                            "forwarding; reload rejected, running state kept: {}",
                            response.error.as_deref().unwrap_or("")
                        )
                    });
                }
                if !response.ok && !teardown {
                    warn!("request failed: {}", response.error.as_deref().unwrap_or(""));
                }
                let _ = reply.send(response);
                if exit {
                    if teardown {
                        farewell = "torn down (detached, unpinned); exiting".into();
                    }
                    // Let the reply reach the client before exiting.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    break;
                }
            }
            Some(event) = events.routes.recv() => block_in_place(|| {
                daemon.routes_changed(event, &mut events.routes);
                daemon.sync_analytics();
            }),
            Some(event) = route_rx.recv() => block_in_place(|| {
                daemon.route_event(event);
                daemon.sync_holds();
            }),
            Some(event) = events.health.recv() => block_in_place(|| daemon.health_event(event)),
            Some(()) = events.links.recv() => block_in_place(|| daemon.check_links()),
            Some(()) = events.neighbours.recv() => block_in_place(|| daemon.neighbours_changed(&mut events.neighbours)),
            Some(event) = events.protection.recv() => daemon.protection_event(event),
            _ = flush.tick() => {
                daemon.flush_events();
                daemon.analytics_tick();
            }
            _ = host_check.tick() => block_in_place(|| daemon.check_veth_peers(false)),
            _ = link_check.tick() => block_in_place(|| daemon.check_links()),
            _ = latency_tick.tick() => block_in_place(|| daemon.latency_tick()),
            _ = sighup.recv() => {
                notify::reloading("reloading the config (SIGHUP)");
                let reloaded = block_in_place(|| daemon.reload(false));
                daemon.sync_analytics();
                match reloaded {
                    Ok(c) => {
                        info!("SIGHUP: reloaded ({} written, {} removed)", c.written, c.removed);
                        block_in_place(|| {
                            daemon.check_veth_peers(true);
                            daemon.check_links();
                        });
                        notify::reloaded("forwarding; config reloaded (SIGHUP)");
                    }
                    Err(e) => {
                        error!("SIGHUP: reload rejected, running state kept: {e:#}");
                        notify::reloaded(&format!(
                            "forwarding; reload (SIGHUP) rejected, running state kept: {e:#}"
                        ));
                    }
                }
            }
            _ = sigint.recv() => { info!("SIGINT: exiting; {stops}"); break }
            _ = sigterm.recv() => { info!("SIGTERM: exiting; {stops}"); break }
        }
    }
    notify::stopping(&farewell);
    let _ = std::fs::remove_file(&plan.socket_path);
    Ok(())
}

/// `--detach`: through the running edged if it answers, else directly.
fn detach(config: &std::path::Path, overrides: &Overrides) -> Result<()> {
    let plan = daemon::paths(config, overrides)?;
    match control::call::<control::TornDown>(
        &plan.socket_path,
        &Request::Teardown {},
        std::time::Duration::from_secs(30),
    ) {
        Ok(r) if r.ok => {
            info!("the running edged tore the forwarder down");
            return Ok(());
        }
        Ok(r) => warn!(
            "edged refused the teardown: {}",
            r.error.unwrap_or_default()
        ),
        Err(_) => info!("no edged answers; tearing down directly"),
    }
    loader::teardown(&plan.pin_path);
    State::remove(&plan.state_path);
    let _ = std::fs::remove_file(&plan.socket_path);
    info!(
        "detached, {} unpinned, state removed",
        plan.pin_path.display()
    );
    Ok(())
}
