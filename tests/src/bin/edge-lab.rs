//! edge-lab: the forwarder's main job on a small lab, run by `cargo xtask run`.
//!
//! Builds a customer, a rogue peer, the edge host, two backbone PoPs and a
//! transit host in network namespaces, starts edged with the embedded
//! example config (tests/lab.toml), sends sequence-numbered UDP streams in
//! both IP families (customer → backbone, customer → transit, backbone →
//! customer) plus spoofed traffic from the rogue peer, prints what arrived
//! where and edged's counters, and tears everything down (also on Ctrl-C).

use std::{
    process::{Command, ExitCode},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use edge_tests::{netns::require_root, topology::*};

/// Run the edge forwarder on a namespace lab and show what it forwarded.
#[derive(Debug, Parser)]
struct Args {
    /// How long to send traffic, in seconds.
    #[arg(long, default_value_t = 3)]
    seconds: u32,
    /// Datagrams per second on each stream.
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

    println!(
        "edge-lab: building namespaces: customer, rogue peer, edge (XDP), pop-a, pop-b, transit"
    );
    let lab = EdgeLab::build("lab");
    let config = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&config, LAB_CONFIG).expect("write config");
    let mut edged = Edged::start(&lab.edge, &config, &lab.pin_path());

    let mut streams = lab_streams(&lab);
    // Spoofed contoso traffic from another peering port: must never arrive.
    streams.push(LabStream {
        what: "rogue peer spoofing contoso (protection)",
        stream: Stream {
            ns: lab.rogue.clone(),
            from: sock(CONTOSO_V4, 0),
            to: sock(POPB_V4, 5002),
        },
        at: lab.pop_b.clone(),
    });
    let done = Arc::new(AtomicBool::new(false));
    let receivers: Vec<_> = streams
        .iter()
        .map(|l| spawn_counter(udp_socket(&l.at, l.stream.to), done.clone()))
        .collect();
    println!(
        "edge-lab: sending {} s at {} datagrams/s on each of {} streams",
        args.seconds,
        args.rate,
        streams.len()
    );
    let list: Vec<Stream> = streams.iter().map(|l| l.stream.clone()).collect();
    let sent = send_streams(&list, args.seconds * args.rate, args.rate, &|| {
        stop.load(Ordering::Relaxed)
    });
    done.store(true, Ordering::Relaxed);
    let received: Vec<u32> = receivers
        .into_iter()
        .map(|h| h.join().unwrap_or(0))
        .collect();

    println!(
        "\n{:<42} {:<22} {:<26} {:>6} {:>9}",
        "stream", "from", "to", "sent", "received"
    );
    for (l, (s, r)) in streams.iter().zip(sent.iter().zip(&received)) {
        println!(
            "{:<42} {:<22} {:<26} {s:>6} {r:>9}",
            l.what,
            l.stream.from.ip().to_string(),
            l.stream.to.to_string()
        );
    }

    println!(
        "\nedged counters (edgectl --socket {} stats):",
        edged.socket.display()
    );
    let _ = Command::new(workspace_bin("edgectl"))
        .arg("--socket")
        .arg(&edged.socket)
        .arg("stats")
        .status();

    if args.hold > 0 && !stop.load(Ordering::Relaxed) {
        println!(
            "edge-lab: holding the lab for {} s (Ctrl-C to end early)",
            args.hold
        );
        let until = Instant::now() + Duration::from_secs(args.hold);
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    edged.teardown();
    let _ = std::fs::remove_file(&config);
    drop(lab);
    println!("edge-lab: torn down (namespaces deleted, program detached, pins removed)");
    let n = streams.len() - 1;
    let complete = sent[..n] == received[..n] && sent.iter().all(|&s| s > 0) && received[n] == 0;
    if complete || stop.load(Ordering::Relaxed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
