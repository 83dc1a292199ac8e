//! edge-reliability: sequence-numbered UDP streams through the edge while
//! faults happen, one fault at a time; writes RELIABILITY.md (`cargo xtask
//! reliability`). Needs root.

use std::{
    fmt::Write as _,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use edge_tests::{
    netns::{in_netns, netns_command, require_root},
    three_pops::{
        CUST_INTERNET_V4, CUST_MICROSOFT_V4, CUSTOMER_V4, INTERNET_V4, TRANSIT_V4, ThreePopLab,
        UdpEcho, pop_addrs,
    },
    topology::*,
};

#[derive(Debug, Parser)]
struct Args {
    /// Where to write the report.
    #[arg(long, default_value = "RELIABILITY.md")]
    out: PathBuf,
    /// Datagrams per second per stream.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Run only the metrics endpoint flood on a lab of its own and print
    /// its table row (the report is left alone).
    #[arg(long)]
    only_metrics_flood: bool,
    /// Run only the interface faults (part 5) on a lab of their own and
    /// print their table rows (the report is left alone).
    #[arg(long)]
    only_interfaces: bool,
    /// Run only the failed restarts (part 4) and print their table rows
    /// (the report is left alone).
    #[arg(long)]
    only_failed_restarts: bool,
}

/// One fault's outcome over all its streams.
struct Row {
    fault: String,
    promise: String,
    streams: usize,
    tally: Tally,
    ok: bool,
}

/// Runs `streams` (with receivers `at`) while `fault` happens in the
/// middle; the sum of the streams' tallies.
fn under_fault(
    streams: &[(Stream, Vec<String>)],
    rate: u32,
    fault: impl FnOnce(),
) -> (usize, Tally) {
    let each = under_fault_each(streams, rate, fault);
    (streams.len(), sum(&each))
}

/// The sum of tallies.
fn sum(tallies: &[Tally]) -> Tally {
    let mut total = Tally::default();
    for t in tallies {
        total.sent += t.sent;
        total.received += t.received;
        total.lost += t.lost;
        total.duplicated += t.duplicated;
    }
    total
}

/// [`under_fault`], with each stream's tally.
fn under_fault_each(
    streams: &[(Stream, Vec<String>)],
    rate: u32,
    fault: impl FnOnce(),
) -> Vec<Tally> {
    let done = Arc::new(AtomicBool::new(false));
    // Every receiving namespace of a stream gets a socket; their arrivals
    // are merged (a stream may move between PoPs).
    let receivers: Vec<Vec<_>> = streams
        .iter()
        .map(|(s, at)| {
            at.iter()
                .map(|ns| spawn_sequence_receiver(udp_socket(ns, s.to), done.clone()))
                .collect()
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let list: Vec<Stream> = streams.iter().map(|(s, _)| s.clone()).collect();
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            send_streams(&list, 120_000, rate, &|| stop.load(Ordering::Relaxed))
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    fault();
    std::thread::sleep(Duration::from_millis(600));
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, Ordering::Relaxed);
    receivers
        .into_iter()
        .zip(sent)
        .map(|(rx, n)| {
            let mut seen: Vec<u32> = rx.into_iter().flat_map(|h| h.join().unwrap()).collect();
            seen.sort_unstable(); // merged from several sockets: order is per socket
            Tally::of(n, &seen)
        })
        .collect()
}

/// Reordering within each stream, measured on its own (one receiver).
fn row(fault: &str, promise: &str, (streams, tally): (usize, Tally), zero_loss: bool) -> Row {
    let ok = tally.duplicated == 0 && (!zero_loss || tally.lost == 0);
    eprintln!(
        "edge-reliability: {fault}: sent {}, received {}, lost {}, duplicated {}",
        tally.sent, tally.received, tally.lost, tally.duplicated
    );
    Row {
        fault: fault.into(),
        promise: promise.into(),
        streams,
        tally,
        ok,
    }
}

/// A row of the report's table.
fn table_row(r: &Row) -> String {
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        r.fault,
        r.promise,
        r.streams,
        r.tally.sent,
        r.tally.received,
        r.tally.lost,
        r.tally.duplicated,
        if r.ok { "kept" } else { "**broken**" }
    )
}

/// The metrics endpoint flooded (issue 15) while the streams run: 300
/// silent connections, 50 with half a request line and one pipelining 1000
/// requests without reading, against its limit of 64; ten scrapes
/// meanwhile must each answer within 1 s. The flood is held 2 s, then its
/// clients go away. Kept: zero loss and every scrape answered in time.
fn metrics_flood(lab: &EdgeLab, streams: &[(Stream, Vec<String>)], rate: u32) -> Row {
    use std::{
        io::{Read as _, Write as _},
        net::TcpStream,
    };
    let metrics: std::net::SocketAddr = "127.0.0.1:9477".parse().unwrap();
    let within = Duration::from_secs(1);
    let scrape = || -> Result<Duration, String> {
        in_netns(&lab.edge, || {
            let t = Instant::now();
            let mut s = TcpStream::connect_timeout(&metrics, within).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(within)).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .map_err(|e| e.to_string())?;
            let mut response = String::new();
            s.read_to_string(&mut response).map_err(|e| e.to_string())?;
            let took = t.elapsed();
            if !response.starts_with("HTTP/1.1 200 OK") || !response.contains("edge_uptime_seconds")
            {
                return Err(format!("answered {:?}", response.lines().next()));
            }
            if took > within {
                return Err(format!("answered in {took:?}"));
            }
            Ok(took)
        })
    };
    let mut scrapes: Vec<Result<Duration, String>> = Vec::new();
    let tally = under_fault(streams, rate, || {
        let (held, pipeliner) = in_netns(&lab.edge, || {
            let connect = || TcpStream::connect_timeout(&metrics, Duration::from_secs(2)).unwrap();
            let mut held: Vec<TcpStream> = (0..350).map(|_| connect()).collect();
            for s in &mut held[300..] {
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0")
                    .unwrap();
            }
            (held, connect())
        });
        let writer = {
            let mut w = pipeliner.try_clone().unwrap();
            std::thread::spawn(move || {
                w.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
                let burst = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(1000);
                let _ = w.write_all(burst.as_bytes());
            })
        };
        let t = Instant::now();
        for i in 1..=10 {
            scrapes.push(scrape());
            // One every 200 ms: the flood is held 2 s.
            std::thread::sleep((Duration::from_millis(200) * i).saturating_sub(t.elapsed()));
        }
        writer.join().unwrap();
        drop((held, pipeliner));
    });
    let slowest = scrapes
        .iter()
        .filter_map(|s| s.as_ref().ok())
        .max()
        .copied();
    let failed: Vec<&String> = scrapes.iter().filter_map(|s| s.as_ref().err()).collect();
    let mut r = row(
        &format!(
            "metrics endpoint flood (300 silent and 50 half-sent connections and one pipelining 1000 requests unread, against its limit of 64, held 2 s): 10 scrapes meanwhile, {} answered, the slowest in {} ms",
            scrapes.len() - failed.len(),
            slowest.map_or(0, |d| d.as_millis())
        ),
        "zero loss; every scrape answers within 1 s",
        tally,
        true,
    );
    if !failed.is_empty() {
        eprintln!("edge-reliability: metrics endpoint flood: scrapes failed: {failed:?}");
        r.ok = false;
    }
    r
}

/// Part 4: restarts that fail, on the standard lab (issue 15).
fn failed_restarts(rate: u32) -> Vec<Row> {
    let mut rows = Vec::new();
    let zero = "zero loss";
    // Part 4: restarts that fail, on the standard lab (issue 15): each is
    // refused before it changes anything, the running forwarder forwards
    // on untouched, and a good restart follows; then a restart with other
    // [limits] that completes (a new set of maps built beside the running
    // one, the program swapped on every link). The state directory is a
    // small tmpfs, to fill up.
    eprintln!("edge-reliability: building the lab for failed restarts");
    let lab = EdgeLab::build("relf");
    let config = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&config, LAB_CONFIG).unwrap();
    let tiny = TinyFs::mount(&lab.edge, "16k");
    let mut edged = Edged::unstarted(&lab.edge, &config, &lab.pin_path());
    edged.state = tiny.dir.join("state.json");
    edged
        .spawn_logged(edged.command(&[]))
        .unwrap_or_else(|(s, log)| panic!("edged exited ({s:?}): {log:?}"));
    let streams: Vec<(Stream, Vec<String>)> = lab_streams(&lab)
        .into_iter()
        .map(|l| (l.stream, vec![l.at]))
        .collect();
    let limits = LAB_CONFIG.replace(
        "[forwarding]",
        "[limits]\nprefixes_v4 = 4096\n\n[forwarding]",
    );
    let refused = |edged: &mut Edged, what: &str| match edged.spawn_logged(edged.command(&[])) {
        Ok(log) => panic!("{what}: the restart succeeded: {log:?}"),
        Err((status, log)) => assert_eq!(status.and_then(|s| s.code()), Some(1), "{what}: {log:?}"),
    };
    rows.push(row(
        "restart that fails: other [limits] and a missing interface (refused, the running forwarder left as it was), then a good restart",
        zero,
        under_fault(&streams, rate, || {
            edged.stop();
            std::fs::write(
                &config,
                format!("{limits}\n[[ports]]\ninterface = \"nope0\"\nrole = \"transit\"\n"),
            )
            .unwrap();
            refused(&mut edged, "a missing interface");
            std::fs::write(&config, LAB_CONFIG).unwrap();
            edged.restart();
        }),
        true,
    ));
    rows.push(row(
        "restart that fails: state directory full (ENOSPC), config changed (refused before any write), then a good restart",
        zero,
        under_fault(&streams, rate, || {
            edged.stop();
            tiny.fill();
            std::fs::write(
                &config,
                format!("{LAB_CONFIG}\n[[prefixes]]\nprefix = \"198.51.100.128/25\"\npop = \"pop-b\"\n"),
            )
            .unwrap();
            refused(&mut edged, "a full state directory");
            tiny.free();
            edged.restart();
        }),
        true,
    ));
    rows.push(row(
        "restart with other [limits] (new maps built beside the running ones, the program swapped on every link)",
        zero,
        under_fault(&streams, rate, || {
            edged.stop();
            std::fs::write(&config, &limits).unwrap();
            edged.restart();
        }),
        true,
    ));
    drop(edged);
    drop(tiny);
    drop(lab);
    let _ = std::fs::remove_file(&config);

    rows
}

/// A row for an interface fault: the first `through` streams cross the
/// interface, the others do not. Kept: the others lose nothing, and each
/// stream through it loses no more than the time it was out of service
/// (`out`, as the fault measured it, `out_what` saying from when to when)
/// plus `grace_ms`.
fn interface_row(
    fault: &str,
    out_what: &str,
    out: Duration,
    each: &[Tally],
    through: usize,
    rate: u32,
    grace_ms: u64,
) -> Row {
    let (via, others) = each.split_at(through);
    let worst = via.iter().map(|t| t.lost).max().unwrap_or(0);
    let lost_ms = u64::from(worst) * 1000 / u64::from(rate);
    let out_ms = out.as_millis() as u64;
    let others_lost: u32 = others.iter().map(|t| t.lost).sum();
    let mut r = row(
        &format!(
            "{fault}: out of service {out_ms} ms ({out_what}); the streams through it lost at most {worst} datagrams each ({lost_ms} ms), the {} others {others_lost}",
            others.len()
        ),
        &format!(
            "the other streams: zero loss; through it: loss only while it is out of service, plus ≤ {grace_ms} ms"
        ),
        (each.len(), sum(each)),
        false,
    );
    r.ok &= others_lost == 0 && lost_ms <= out_ms + grace_ms;
    r
}

/// Part 5: interfaces that change under traffic (issue 15), on the
/// standard lab; edged follows netlink link events (docs/operations.md,
/// "Interfaces that change"). Two streams (contoso → pop-b, IPv4 and IPv6)
/// cross bbb0, the backbone exit's port; three do not (fabrikam → transit,
/// IPv4 and IPv6, and pop-a → contoso).
fn interfaces(rate: u32) -> Vec<Row> {
    eprintln!("edge-reliability: building the lab for interface changes");
    let lab = EdgeLab::build("reli");
    let config = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&config, LAB_CONFIG).unwrap();
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let mut streams: Vec<(Stream, Vec<String>)> = lab_streams(&lab)
        .into_iter()
        .take(4)
        .map(|l| (l.stream, vec![l.at]))
        .collect();
    streams.push((
        Stream {
            ns: lab.pop_a.clone(),
            from: sock("198.51.100.2", 0),
            to: sock(CONTOSO_V4, 5002),
        },
        vec![lab.cust.clone()],
    ));
    let through = 2;
    let grace_ms = 250;
    let mut rows = Vec::new();

    let mut out = Duration::ZERO;
    let each = under_fault_each(&streams, rate, || {
        let t = Instant::now();
        lab.lab.ip(&lab.edge, &["link", "del", "bbb0"]);
        std::thread::sleep(Duration::from_millis(300));
        lab.recreate_port("bbb0");
        out = t.elapsed();
        std::thread::sleep(Duration::from_millis(500));
    });
    rows.push(interface_row(
        "interface deleted and created again (bbb0, the backbone exit's port: `ip link del`, 300 ms later the veth created again with the same name, addresses and far end)",
        "from the deletion until it exists again",
        out,
        &each,
        through,
        rate,
        grace_ms,
    ));

    let without_peer1 = LAB_CONFIG.replace(
        "[[ports]]\ninterface = \"peer1\"                 # another peer (the rogue one in the lab)\nrole = \"peering\"\n\n",
        "",
    );
    assert_ne!(without_peer1, LAB_CONFIG, "the lab config's peer1 port");
    rows.push(row(
        "interface deleted and dropped from the config (peer1: `ip link del`, then `edgectl config reload` of the config without it: succeeds, its link pin removed)",
        "zero loss (no stream crosses peer1)",
        under_fault(&streams, rate, || {
            lab.lab.ip(&lab.edge, &["link", "del", "peer1"]);
            std::fs::write(&config, &without_peer1).unwrap();
            edged.ctl_ok(&["config", "reload"]);
            assert!(
                !lab.pin_path().join("link_peer1").exists(),
                "peer1's link pin was left"
            );
        }),
        true,
    ));

    let renamed = without_peer1.replace("\"bbb0\"", "\"bbx0\"");
    let mut out = Duration::ZERO;
    let each = under_fault_each(&streams, rate, || {
        // The config naming bbx0, written beforehand and settled (the
        // reload below does not wait for reload_settle_ms).
        std::fs::write(&config, &renamed).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let t = Instant::now();
        for args in [
            &["link", "set", "bbb0", "down"][..],
            &["link", "set", "bbb0", "name", "bbx0"],
            &["link", "set", "bbx0", "up"],
        ] {
            lab.lab.ip(&lab.edge, args);
        }
        std::thread::sleep(Duration::from_millis(300));
        edged.ctl_ok(&["config", "reload"]);
        out = t.elapsed();
        assert!(lab.pin_path().join("link_bbx0").exists(), "bbx0 not pinned");
        std::thread::sleep(Duration::from_millis(500));
    });
    rows.push(interface_row(
        "interface renamed, config updated (bbb0 set down, renamed bbx0, up; 300 ms later `edgectl config reload` of the config naming bbx0: its pinned link taken over)",
        "from the rename until the reload's reply",
        out,
        &each,
        through,
        rate,
        grace_ms,
    ));
    drop(edged);
    drop(lab);
    let _ = std::fs::remove_file(&config);
    rows
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    require_root();
    if args.only_metrics_flood {
        let lab = EdgeLab::build("relm");
        let config = std::env::temp_dir().join(format!("{}.toml", lab.edge));
        std::fs::write(&config, LAB_CONFIG).unwrap();
        let edged = Edged::start(&lab.edge, &config, &lab.pin_path());
        let streams: Vec<(Stream, Vec<String>)> = lab_streams(&lab)
            .into_iter()
            .map(|l| (l.stream, vec![l.at]))
            .collect();
        let r = metrics_flood(&lab, &streams, args.rate);
        drop(edged);
        drop(lab);
        let _ = std::fs::remove_file(&config);
        println!("{}", table_row(&r));
        return if r.ok {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        };
    }
    if args.only_interfaces || args.only_failed_restarts {
        let rows = if args.only_interfaces {
            interfaces(args.rate)
        } else {
            failed_restarts(args.rate)
        };
        for r in &rows {
            println!("{}", table_row(r));
        }
        return if rows.iter().all(|r| r.ok) {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        };
    }
    let mut rows = Vec::new();

    // Part 1: the standard lab; six streams (both families, all three
    // directions) through edged's data plane.
    eprintln!("edge-reliability: building the lab");
    let lab = EdgeLab::build("rel");
    let config = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    let with_sources = format!(
        "{LAB_CONFIG}\n[[route_sources]]\ntable = 200\nregistration = \"bulk\"\npop = \"pop-b\"\n"
    );
    std::fs::write(&config, &with_sources).unwrap();
    let mut edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let streams: Vec<(Stream, Vec<String>)> = lab_streams(&lab)
        .into_iter()
        .map(|l| (l.stream, vec![l.at]))
        .collect();
    let rate = args.rate;
    let zero = "zero loss";

    rows.push(row(
        "none (baseline)",
        zero,
        under_fault(&streams, rate, || {}),
        true,
    ));
    rows.push(row(
        "edged restarted (SIGTERM, 300 ms down, start: program replaced on the pinned links)",
        zero,
        under_fault(&streams, rate, || {
            edged.stop();
            std::thread::sleep(Duration::from_millis(300));
            edged.restart();
        }),
        true,
    ));
    rows.push(row(
        "edged killed (SIGKILL, 300 ms down, start)",
        zero,
        under_fault(&streams, rate, || {
            edged.kill();
            std::thread::sleep(Duration::from_millis(300));
            edged.restart();
        }),
        true,
    ));
    rows.push(row(
        "config reload, good (edgectl config reload: unrelated prefixes added)",
        zero,
        under_fault(&streams, rate, || {
            std::fs::write(
                &config,
                format!("{with_sources}\n[[prefixes]]\nprefix = \"198.51.100.128/25\"\npop = \"pop-b\"\n"),
            )
            .unwrap();
            edged.ctl_ok(&["config", "reload"]);
        }),
        true,
    ));
    rows.push(row(
        "config reload, good (SIGHUP: unrelated prefixes removed)",
        zero,
        under_fault(&streams, rate, || {
            std::fs::write(&config, &with_sources).unwrap();
            edged.hup();
            std::thread::sleep(Duration::from_millis(200));
        }),
        true,
    ));
    rows.push(row(
        "config reload, bad (syntax error and unknown PoP: rejected whole)",
        zero,
        under_fault(&streams, rate, || {
            std::fs::write(&config, format!("{with_sources}\n[forwarding\n")).unwrap();
            assert_eq!(edged.ctl(&["config", "reload"]).code, Some(2));
            std::fs::write(
                &config,
                with_sources.replace("pop = \"pop-b\"", "pop = \"nowhere\""),
            )
            .unwrap();
            assert_eq!(edged.ctl(&["config", "reload"]).code, Some(2));
            edged.hup();
            std::fs::write(&config, &with_sources).unwrap();
        }),
        true,
    ));
    rows.push(row(
        "live prefix churn (100 edgectl prefix add / del)",
        zero,
        under_fault(&streams, rate, || {
            for i in 0..50 {
                let p = format!("2001:db8:99:{i:x}::/64");
                edged.ctl_ok(&["prefix", "add", &p, "--pop", "pop-a"]);
                edged.ctl_ok(&["prefix", "del", &p]);
            }
        }),
        true,
    ));
    rows.push(row(
        "bulk rewrite of the prefix table (100,000 routes synced in, then flushed)",
        zero,
        under_fault(&streams, rate, || {
            let batch = lab.blackhole_batch(100_000);
            let t = Instant::now();
            let out = netns_command(&lab.edge, std::path::Path::new("ip"))
                .arg("-batch")
                .arg(&batch)
                .output()
                .unwrap();
            assert!(out.status.success());
            while edged.ctl_ok(&["status"])["routes"]["routes"] != 100_000 {
                assert!(
                    t.elapsed() < Duration::from_secs(60),
                    "100,000 routes not synced in 60 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            lab.lab
                .ip(&lab.edge, &["-6", "route", "flush", "table", "200"]);
            while edged.ctl_ok(&["status"])["routes"]["routes"] != 0 {
                assert!(
                    t.elapsed() < Duration::from_secs(90),
                    "the flush not followed in 90 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = std::fs::remove_file(batch);
        }),
        true,
    ));
    rows.push(metrics_flood(&lab, &streams, rate));
    drop(edged);
    drop(lab);
    let _ = std::fs::remove_file(&config);

    // Part 2: three PoPs with probes; one stream toward the customer,
    // received at whichever PoP carries it.
    eprintln!("edge-reliability: building the three-PoP lab");
    let lab = ThreePopLab::build("rel3");
    let echoes: Vec<UdpEcho> = (0..3)
        .map(|i| UdpEcho::start(&lab.pops[i], &format!("{}:7", pop_addrs(i).0)))
        .collect();
    let probe = "{ type = \"udp\", address = \"ADDR\", port = 7, interval_ms = 200, timeout_ms = 100, rise = 2, fall = 3 }";
    let config = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&config, lab.config("priority", Some(probe))).unwrap();
    let pin = PathBuf::from(format!("/sys/fs/bpf/{}", lab.edge));
    let edged = Edged::start(&lab.edge, &config, &pin);
    std::thread::sleep(Duration::from_millis(800));
    let stream = vec![(
        Stream {
            ns: lab.transit.clone(),
            from: sock(TRANSIT_V4, 0),
            to: sock(CUSTOMER_V4, 6200),
        },
        lab.pops.to_vec(),
    )];
    rows.push(row(
        "PoP probe flap (pop1's probe replies dropped 1.5 s, link up): failover to pop2 and back",
        zero,
        under_fault(&stream, rate, || {
            echoes[0].set_silent(true);
            std::thread::sleep(Duration::from_millis(1500));
            echoes[0].set_silent(false);
            std::thread::sleep(Duration::from_millis(800));
        }),
        true,
    ));
    rows.push(row(
        "operator drain and undrain of pop1",
        zero,
        under_fault(&stream, rate, || {
            edged.ctl_ok(&["pop", "drain", "pop1"]);
            std::thread::sleep(Duration::from_millis(500));
            edged.ctl_ok(&["pop", "undrain", "pop1"]);
        }),
        true,
    ));
    let budget_ms = (3 + 2) * 200;
    let flap = under_fault(&stream, rate, || {
        lab.stop_pop(0);
        std::thread::sleep(Duration::from_millis(1500));
        lab.start_pop(0);
        std::thread::sleep(Duration::from_millis(2500));
    });
    let bound = u64::from(rate) * budget_ms / 1000;
    let within = u64::from(flap.1.lost) <= bound;
    let mut r = row(
        "PoP link down 1.5 s (pop1 off the wire, then back)",
        &format!(
            "loss only until detection: ≤ (fall + 2) × interval = {budget_ms} ms of traffic ({bound} datagrams)"
        ),
        flap,
        false,
    );
    r.ok &= within;
    rows.push(r);
    drop(edged);

    // Part 3: the exits on the same lab: a customer on a peering port, the
    // backbone exit pop1 (falling back to the transit exit), the transit
    // exit a priority policy over transit, then pop3.
    let transit_echo = UdpEcho::start(&lab.transit, &format!("{TRANSIT_V4}:7"));
    std::fs::write(&config, lab.exit_config(probe)).unwrap();
    let edged = Edged::start(&lab.edge, &config, &pin);
    std::thread::sleep(Duration::from_millis(800));
    let exit_stream = |from: &str, port: u16, at: Vec<String>| {
        vec![(
            Stream {
                ns: lab.cust.clone(),
                from: sock(from, 0),
                to: sock(INTERNET_V4, port),
            },
            at,
        )]
    };
    let backbone = exit_stream(
        CUST_MICROSOFT_V4,
        6300,
        vec![lab.pops[0].clone(), lab.transit.clone()],
    );
    let transit = exit_stream(
        CUST_INTERNET_V4,
        6301,
        vec![lab.transit.clone(), lab.pops[2].clone()],
    );
    for (fault, stream, down, up) in [
        (
            "backbone exit PoP link down 1.5 s (pop1 off the wire, then back): to the transit exit and back",
            &backbone,
            &(|| lab.stop_pop(0)) as &dyn Fn(),
            &(|| lab.start_pop(0)) as &dyn Fn(),
        ),
        (
            "transit exit PoP link down 1.5 s (transit off the wire, then back): to pop3 and back",
            &transit,
            &(|| lab.stop_transit()) as &dyn Fn(),
            &(|| lab.start_transit()) as &dyn Fn(),
        ),
    ] {
        let t = under_fault(stream, rate, || {
            down();
            std::thread::sleep(Duration::from_millis(1500));
            up();
            std::thread::sleep(Duration::from_millis(2500));
        });
        let within = u64::from(t.1.lost) <= bound;
        let mut r = row(
            fault,
            &format!(
                "loss only until detection: ≤ (fall + 2) × interval = {budget_ms} ms of traffic ({bound} datagrams)"
            ),
            t,
            false,
        );
        r.ok &= within;
        rows.push(r);
    }
    drop(edged);
    drop(transit_echo);
    drop(echoes);
    drop(lab);
    let _ = std::fs::remove_file(&config);

    rows.extend(failed_restarts(rate));
    rows.extend(interfaces(rate));

    // The report.
    let mut md = String::from(
        "# Reliability\n\nOutput of `cargo xtask reliability` (tests/src/bin/edge-reliability.rs).\n\n",
    );
    let _ = writeln!(
        md,
        "Sequence-numbered UDP streams at {} datagrams/s each run through the edge while one fault happens at a time (0.4 s of traffic before it, 0.6 s after). Part 1: the standard lab (tests/src/topology.rs), six streams: contoso → backbone, fabrikam → transit, backbone → contoso, each over IPv4 and IPv6. Part 2: the three-PoP lab (tests/src/three_pops.rs), one stream from transit toward the customer, policy `priority` over pop1 > pop2 > pop3, UDP probes every 200 ms (timeout 100 ms, rise 2, fall 3), received at whichever PoP carries it. Part 3: the same lab with a customer on a peering port (tests/src/three_pops.rs `exit_config`): one stream to the backbone exit (the PoP pop1, falling back to the transit exit) and one to the transit exit (a priority policy over the transit host, then pop3), received wherever the exit sends it. Part 4: the standard lab again, with edged's state directory on a 16 KiB tmpfs: restarts that fail (other `[limits]` and a missing interface; a full state directory with a changed config), each followed by a good restart, and a restart with other `[limits]` that completes. Part 5: the standard lab again, interfaces that change under traffic (edged follows netlink link events): bbb0, the backbone exit's port, deleted and created again, and renamed with the config updated; peer1 deleted and dropped from the config. Two streams (contoso → backbone, IPv4 and IPv6) cross bbb0, three do not (fabrikam → transit, IPv4 and IPv6, and pop-a → contoso). The metrics endpoint flood runs in part 1 (`--only-metrics-flood` runs it alone, on a lab of its own; `--only-failed-restarts` and `--only-interfaces` run parts 4 and 5 alone).\n",
        args.rate
    );
    md += "| fault | promise | streams | sent | received | lost | duplicated | verdict |\n|---|---|---:|---:|---:|---:|---:|---|\n";
    for r in &rows {
        let _ = writeln!(md, "{}", table_row(r));
    }
    md += "\nZero loss holds because the data plane does not depend on the daemon: program, maps and links are pinned in bpffs, a restart replaces the program with `bpf_link_update`, and every change is written as a diff that keeps each intermediate state valid (docs/operations.md). Failover loss is the time to detect the failure plus one table write: at once when the PoP's link loses its carrier (a netlink link event; the \"PoP link down\" rows), else fall × interval of probes (the probe flap row: a link that stays up). A restart that fails changes nothing: it is refused before it touches the running forwarder, or undoes what it did (the old program back on every link); a restart that must replace maps builds the new ones beside the running ones and swaps the program atomically. An interface that changes takes only its own traffic with it: edged follows netlink link events, compiles a vanished port out at once and back in when it returns (attaching XDP again) or when a reload names it by its new name (taking its pinned link over), so the loss through it is the time it is out of service.\n";
    md += "\nHostile input: see docs/fuzzing.md (packet fuzzing through BPF_PROG_TEST_RUN, cargo-fuzz of the config parser and the control-socket decoder) and the control-socket tests in tests/tests/daemon.rs.\n";
    std::fs::write(&args.out, md).expect("write the report");
    eprintln!("edge-reliability: wrote {}", args.out.display());
    if rows.iter().all(|r| r.ok) {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
