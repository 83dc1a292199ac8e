//! edge-lab: the forwarder's main job on a small lab, run by `cargo xtask run`.
//!
//! Builds a customer, the edge host and two PoP hosts in network namespaces,
//! starts edged with the embedded example config (tests/lab.toml), sends a
//! sequence-numbered UDP stream from the customer to both PoPs in both IP
//! families, prints what arrived where and edged's counters, and tears
//! everything down (also on Ctrl-C).

use std::{
    process::{Command, ExitCode},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use clap::Parser;
use edge_tests::{
    netns::require_root,
    topology::{
        EdgeLab, Edged, LAB_CONFIG, POPA_V4, POPA_V6, POPB_V4, POPB_V6, send_stream, sock,
        spawn_counter, udp_socket, workspace_bin,
    },
};

/// Run the edge forwarder on a namespace lab and show what it forwarded.
#[derive(Debug, Parser)]
struct Args {
    /// How long to send traffic, in seconds.
    #[arg(long, default_value_t = 3)]
    seconds: u32,
    /// Datagrams per second to each of the four destinations.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Keep the lab up this many seconds after the traffic, for a look
    /// around (`ip netns list`, `edgectl stats --pin-path ...`).
    #[arg(long, default_value_t = 0)]
    hold: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    require_root();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            eprintln!("\nedge-lab: interrupted; tearing down");
            stop.store(true, Ordering::Relaxed);
        })
        .expect("SIGINT handler");
    }

    println!("edge-lab: building namespaces: customer, edge (XDP), pop-a, pop-b");
    let lab = EdgeLab::build("lab");
    let config = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&config, LAB_CONFIG).expect("write config");
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());

    let dests = [
        ("pop-a", "IPv4", sock(POPA_V4, 5000), &lab.pop_a),
        ("pop-a", "IPv6", sock(POPA_V6, 5000), &lab.pop_a),
        ("pop-b", "IPv4", sock(POPB_V4, 5000), &lab.pop_b),
        ("pop-b", "IPv6", sock(POPB_V6, 5000), &lab.pop_b),
    ];
    let done = Arc::new(AtomicBool::new(false));
    let receivers: Vec<_> = dests
        .iter()
        .map(|(_, _, d, ns)| spawn_counter(udp_socket(ns, *d), done.clone()))
        .collect();
    println!(
        "edge-lab: sending {} s at {} datagrams/s to each of {} destinations",
        args.seconds,
        args.rate,
        dests.len()
    );
    let addrs: Vec<_> = dests.iter().map(|d| d.2).collect();
    let sent = send_stream(
        &lab.cust,
        &addrs,
        args.seconds * args.rate,
        args.rate,
        &|| stop.load(Ordering::Relaxed),
    );
    done.store(true, Ordering::Relaxed);
    let received: Vec<u32> = receivers
        .into_iter()
        .map(|h| h.join().unwrap_or(0))
        .collect();

    println!(
        "\n{:<8} {:<6} {:<24} {:>8} {:>9}",
        "PoP", "family", "destination", "sent", "received"
    );
    for ((pop, family, dest, _), (s, r)) in dests.iter().zip(sent.iter().zip(&received)) {
        println!(
            "{pop:<8} {family:<6} {:<24} {s:>8} {r:>9}",
            dest.to_string()
        );
    }

    println!(
        "\nedged counters (edgectl stats --pin-path {}):",
        edged.pin_path.display()
    );
    let _ = Command::new(workspace_bin("edgectl"))
        .arg("stats")
        .arg("--pin-path")
        .arg(&edged.pin_path)
        .status();

    if args.hold > 0 && !stop.load(Ordering::Relaxed) {
        println!(
            "edge-lab: holding the lab for {} s (Ctrl-C to end early)",
            args.hold
        );
        let until = std::time::Instant::now() + std::time::Duration::from_secs(args.hold);
        while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    edged.stop();
    let _ = std::fs::remove_file(&config);
    drop(lab);
    println!("edge-lab: torn down (namespaces deleted, program detached, pins removed)");
    let complete = sent == received && sent.iter().all(|&s| s > 0);
    if complete || stop.load(Ordering::Relaxed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
