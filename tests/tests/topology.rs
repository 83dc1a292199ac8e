//! Topology tests (tier 3): real traffic through the edge namespace, where
//! the kernel's forwarding is off so only the XDP program can carry it.

use std::{
    path::PathBuf,
    process::Command,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use edge_tests::{
    frames::ipv4_checksum_ok,
    netns::in_netns,
    topology::{
        Capture, EDGE_POPA_MAC, EDGE_POPB_MAC, EdgeLab, Edged, LAB_CONFIG, POPA_MAC, POPA_V4,
        POPA_V6, POPB_MAC, POPB_V4, POPB_V6, send_stream, sock, spawn_counter, udp_socket,
        workspace_bin,
    },
};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

fn mac(s: &str) -> [u8; 6] {
    s.parse::<macaddr::MacAddr6>().unwrap().into_array()
}

fn write_config(lab: &EdgeLab) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&path, LAB_CONFIG).unwrap();
    path
}

/// The UDP datagram to `port` in `frame`, if any: (ttl, payload, ipv4 header bytes).
fn udp_to(frame: &[u8], port: u16) -> Option<(u8, Vec<u8>, Option<Vec<u8>>)> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(TransportSlice::Udp(udp)) = &p.transport else {
        return None;
    };
    if udp.destination_port() != port {
        return None;
    }
    match p.net? {
        NetSlice::Ipv4(ip) => Some((
            ip.header().ttl(),
            udp.payload().to_vec(),
            Some(ip.header().slice().to_vec()),
        )),
        NetSlice::Ipv6(ip) => Some((ip.header().hop_limit(), udp.payload().to_vec(), None)),
        _ => None,
    }
}

fn edgectl_stats(pin_path: &std::path::Path) -> serde_json::Value {
    let out = Command::new(workspace_bin("edgectl"))
        .args(["--json", "stats", "--pin-path"])
        .arg(pin_path)
        .output()
        .expect("run edgectl");
    assert!(
        out.status.success(),
        "edgectl stats: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("edgectl --json output")
}

fn counter(stats: &serde_json::Value, group: &str, name: &str) -> u64 {
    stats[group]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[0] == name)
        .unwrap_or_else(|| panic!("{group}/{name} missing"))[1]["packets"]
        .as_u64()
        .unwrap()
}

#[test]
fn customer_traffic_reaches_the_pops_through_xdp_only() {
    let lab = EdgeLab::build("e2e");
    let forwarding = in_netns(&lab.edge, || {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap()
    });
    assert_eq!(forwarding.trim(), "0", "the edge kernel must not forward");
    let config = write_config(&lab);
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());

    let cap_a = Capture::open(&lab.pop_a, "eth0");
    let cap_b = Capture::open(&lab.pop_b, "eth0");
    let v4 = udp_socket(&lab.cust, "0.0.0.0:0".parse().unwrap());
    let v6 = udp_socket(&lab.cust, "[::]:0".parse().unwrap());
    v4.set_ttl(64).unwrap();
    // IPv4 to pop-a, IPv6 to pop-b: each arrives once, TTL / hop limit 63,
    // MACs rewritten by the edge, payload untouched.
    v4.send_to(b"v4 through xdp", sock(POPA_V4, 7001)).unwrap();
    let frame = cap_a
        .next_matching(Duration::from_secs(5), |f| udp_to(f, 7001).is_some())
        .expect("IPv4 datagram at pop-a");
    assert_eq!(&frame[0..6], &mac(POPA_MAC), "destination MAC = pop-a");
    assert_eq!(
        &frame[6..12],
        &mac(EDGE_POPA_MAC),
        "source MAC = edge's pop-a port"
    );
    let (ttl, payload, header) = udp_to(&frame, 7001).unwrap();
    assert_eq!(ttl, 63, "TTL decremented once");
    assert_eq!(payload, b"v4 through xdp");
    assert!(ipv4_checksum_ok(&header.unwrap()), "IPv4 header checksum");

    v6.send_to(b"v6 through xdp", sock(POPB_V6, 7002)).unwrap();
    let frame = cap_b
        .next_matching(Duration::from_secs(5), |f| udp_to(f, 7002).is_some())
        .expect("IPv6 datagram at pop-b");
    assert_eq!(&frame[0..6], &mac(POPB_MAC));
    assert_eq!(&frame[6..12], &mac(EDGE_POPB_MAC));
    let (hops, payload, _) = udp_to(&frame, 7002).unwrap();
    assert_eq!(hops, 63, "hop limit decremented once");
    assert_eq!(payload, b"v6 through xdp");

    // TTL 1: XDP passes it to the kernel, which does not forward.
    v4.set_ttl(1).unwrap();
    v4.send_to(b"ttl one", sock(POPA_V4, 7003)).unwrap();
    assert!(
        cap_a
            .next_matching(Duration::from_millis(700), |f| udp_to(f, 7003).is_some())
            .is_none(),
        "a TTL-1 packet must not be forwarded"
    );

    let stats = edgectl_stats(&edged.pin_path);
    assert_eq!(counter(&stats, "reasons", "forwarded"), 2, "{stats}");
    assert_eq!(counter(&stats, "actions", "redirect"), 2, "{stats}");
    assert_eq!(counter(&stats, "reasons", "ttl_exceeded"), 1, "{stats}");

    let pin_path = edged.pin_path.clone();
    edged.stop();
    assert!(!pin_path.exists(), "edged removes its pins on exit");
    std::fs::remove_file(config).unwrap();
}

#[test]
fn a_sequence_numbered_stream_arrives_complete_in_both_families() {
    let lab = EdgeLab::build("stream");
    let config = write_config(&lab);
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let done = Arc::new(AtomicBool::new(false));
    let dests = [
        sock(POPA_V4, 5000),
        sock(POPA_V6, 5000),
        sock(POPB_V4, 5000),
        sock(POPB_V6, 5000),
    ];
    let counters: Vec<_> = [&lab.pop_a, &lab.pop_a, &lab.pop_b, &lab.pop_b]
        .iter()
        .zip(&dests)
        .map(|(ns, d)| spawn_counter(udp_socket(ns, *d), done.clone()))
        .collect();
    let sent = send_stream(&lab.cust, &dests, 500, 1000, &|| false);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let received: Vec<u32> = counters.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(sent, vec![500; 4]);
    assert_eq!(
        received, sent,
        "every datagram arrives, none twice (to {dests:?})"
    );
    let stats = edgectl_stats(&edged.pin_path);
    assert_eq!(counter(&stats, "reasons", "forwarded"), 2000, "{stats}");
    edged.stop();
    std::fs::remove_file(config).unwrap();
}
