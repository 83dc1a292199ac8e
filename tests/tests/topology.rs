//! Topology tests (tier 3): real traffic through the edge namespace, where
//! the kernel's forwarding is off so only the XDP program can carry it.

use std::{
    path::PathBuf,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use edge_tests::{frames::ipv4_checksum_ok, netns::in_netns, topology::*};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};

fn mac(s: &str) -> [u8; 6] {
    s.parse::<macaddr::MacAddr6>().unwrap().into_array()
}

fn write_config(lab: &EdgeLab) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&path, LAB_CONFIG).unwrap();
    path
}

/// The UDP datagram to `port` in `frame` (possibly inside an IP-in-IP
/// tunnel): (inner TTL / hop limit, DS byte, payload).
fn udp_to(frame: &[u8], port: u16) -> Option<(u8, u8, Vec<u8>)> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let inner;
    let p = match &p.net {
        Some(NetSlice::Ipv4(ip)) if ip.header().protocol().0 == 4 => {
            inner = SlicedPacket::from_ip(ip.payload().payload).ok()?;
            &inner
        }
        Some(NetSlice::Ipv6(ip)) if ip.header().next_header().0 == 41 => {
            inner = SlicedPacket::from_ip(ip.payload().payload).ok()?;
            &inner
        }
        _ => &p,
    };
    let Some(TransportSlice::Udp(udp)) = &p.transport else {
        return None;
    };
    if udp.destination_port() != port {
        return None;
    }
    match p.net.as_ref()? {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            assert!(ipv4_checksum_ok(h.slice()), "inner IPv4 checksum");
            Some((
                h.ttl(),
                (h.dcp().value() << 2) | h.ecn().value(),
                udp.payload().to_vec(),
            ))
        }
        NetSlice::Ipv6(ip) => Some((
            ip.header().hop_limit(),
            ip.header().traffic_class(),
            udp.payload().to_vec(),
        )),
        _ => None,
    }
}

fn counter(stats: &serde_json::Value, group: &str, name: &str) -> u64 {
    stats[group][name]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("{group}/{name} missing in {stats}"))
}

/// Sends one datagram from `ns` (bound to `from`) to `to:port` and returns
/// the frame captured on `capture` carrying it, if it arrives within 3 s.
fn send_and_capture(
    ns: &str,
    from: &str,
    to: &str,
    port: u16,
    capture: &Capture,
) -> Option<Vec<u8>> {
    let s = udp_socket(ns, sock(from, 0));
    s.send_to(format!("to port {port}").as_bytes(), sock(to, port))
        .unwrap();
    capture.next_matching(Duration::from_secs(3), |f| udp_to(f, port).is_some())
}

#[test]
fn preferences_policies_protection_and_encapsulation_end_to_end() {
    let lab = EdgeLab::build("dp");
    let forwarding = in_netns(&lab.edge, || {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap()
    });
    assert_eq!(forwarding.trim(), "0", "the edge kernel must not forward");
    let config = write_config(&lab);
    let mut edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let at_popa = Capture::open(&lab.pop_a, "eth0");
    let at_popb = Capture::open(&lab.pop_b, "eth0");
    let at_transit = Capture::open(&lab.transit, "eth0");
    let at_cust = Capture::open(&lab.cust, "eth0");

    // contoso (microsoft) from the customer: enters the backbone here (pop-b).
    for (from, to, port) in [(CONTOSO_V4, POPB_V4, 7001), (CONTOSO_V6, POPB_V6, 7002)] {
        let f = send_and_capture(&lab.cust, from, to, port, &at_popb)
            .unwrap_or_else(|| panic!("{from} → pop-b"));
        assert_eq!(
            (&f[0..6], &f[6..12]),
            (&mac(POPB_MAC)[..], &mac(EDGE_BBB_MAC)[..]),
            "MACs rewritten"
        );
        let (ttl, ds, payload) = udp_to(&f, port).unwrap();
        assert_eq!((ttl, ds & !3), (63, 0), "TTL decremented, DS untouched");
        assert_eq!(payload, format!("to port {port}").as_bytes());
    }
    // fabrikam (internet) from the customer: handed to transit, DSCP AF41.
    for (from, to, port) in [
        (FABRIKAM_V4, TRANSIT_V4, 7003),
        (FABRIKAM_V6, TRANSIT_V6, 7004),
    ] {
        let f = send_and_capture(&lab.cust, from, to, port, &at_transit)
            .unwrap_or_else(|| panic!("{from} → transit"));
        assert_eq!(&f[0..6], &mac(TRANSIT_MAC)[..]);
        let (ttl, ds, _) = udp_to(&f, port).unwrap();
        assert_eq!((ttl, ds >> 2), (63, 34), "TTL decremented, DSCP af41");
    }
    // Toward contoso from the backbone: its policy picks the direct link.
    for (to, port) in [(CONTOSO_V4, 7005), (CONTOSO_V6, 7006)] {
        let from = if to.contains(':') { POPB_V6 } else { POPB_V4 };
        let f = send_and_capture(&lab.pop_b, from, to, port, &at_cust)
            .unwrap_or_else(|| panic!("pop-b → {to}"));
        assert_eq!(
            (&f[0..6], &f[6..12]),
            (&mac(CUST_MAC)[..], &mac(EDGE_PEER0_MAC)[..])
        );
    }
    // Toward fabrikam from the backbone: hot potato, out through transit.
    let f = send_and_capture(&lab.pop_b, POPB_V4, FABRIKAM_V4, 7007, &at_transit)
        .expect("pop-b → fabrikam via transit");
    assert_eq!(&f[0..6], &mac(TRANSIT_MAC)[..]);
    // Toward northwind: to pop-a through the tunnel, outer header checked.
    let f = send_and_capture(&lab.pop_b, POPB_V4, NORTHWIND_V4, 7008, &at_popa)
        .expect("northwind via pop-a");
    assert_eq!(&f[12..14], &[0x08, 0x00]);
    assert_eq!(f[14], 0x45);
    assert_eq!(f[14 + 9], 4, "outer protocol IP-in-IP");
    assert_eq!(f[14 + 8], 64, "outer TTL = encap_ttl");
    assert_eq!(
        &f[14 + 12..14 + 20],
        &[198, 51, 100, 1, 203, 0, 113, 1],
        "tunnel source and endpoint"
    );
    assert!(ipv4_checksum_ok(&f[14..34]), "outer checksum");
    assert_eq!(
        u16::from_be_bytes([f[16], f[17]]) as usize,
        f.len() - 14,
        "outer total length"
    );
    assert_eq!(
        udp_to(&f, 7008).unwrap().0,
        63,
        "inner TTL decremented once"
    );
    let f = send_and_capture(&lab.pop_b, POPB_V6, NORTHWIND_V6, 7009, &at_popa)
        .expect("northwind v6 via pop-a");
    assert_eq!(&f[12..14], &[0x86, 0xdd]);
    assert_eq!(
        (f[14 + 6], f[14 + 7]),
        (41, 64),
        "next header IPv6, hop limit = encap_ttl"
    );
    assert_eq!(
        &f[14 + 24..14 + 40],
        &"2001:db8:ff::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets()
    );
    assert_eq!(udp_to(&f, 7009).unwrap().0, 63);

    // The rogue peer spoofs contoso on peer1: dropped, counted, never forwarded.
    let rogue = udp_socket(&lab.rogue, sock(CONTOSO_V4, 0));
    for _ in 0..5 {
        rogue.send_to(b"spoofed", sock(POPB_V4, 7010)).unwrap();
    }
    assert!(
        at_popb
            .next_matching(Duration::from_millis(700), |f| udp_to(f, 7010).is_some())
            .is_none(),
        "spoofed traffic forwarded"
    );

    let stats = edged.ctl_ok(&["stats"]);
    assert_eq!(counter(&stats, "reasons", "protection"), 5, "{stats}");
    // The violation reaches edged through the ring buffer: logged once
    // (not five times), counted five times.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let events = loop {
        let e = edged.ctl_ok(&["events"]);
        if e["received"] == 5 || std::time::Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(events["received"], 5, "{events}");
    let protection: Vec<&serde_json::Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "protection")
        .collect();
    assert_eq!(protection.len(), 1, "{events}");
    assert_eq!(
        protection[0]["message"],
        "traffic of 192.0.2.0/25 (contoso) from 192.0.2.1 arrived on peer1; it is registered on peer0: dropped"
    );
    // At least the datagrams above; the receivers' ICMP port-unreachable
    // replies are forwarded too (by the same rules), so not exactly.
    assert!(counter(&stats, "reasons", "backbone") >= 2, "{stats}");
    assert!(counter(&stats, "reasons", "transit") >= 3, "{stats}");
    assert!(counter(&stats, "reasons", "policy") >= 4, "{stats}");
    assert_eq!(counter(&stats, "actions", "drop"), 5, "{stats}");

    // What the operator sees for an address, from the running maps.
    let lookup = |addr: &str| {
        let o = edged.ctl(&["prefix", "lookup", addr]);
        (o.code, o.json["data"].clone())
    };
    let (code, v) = lookup("192.0.2.77");
    assert_eq!(code, Some(0));
    assert_eq!(
        (v["prefix"].as_str(), v["registration"].as_str()),
        (Some("192.0.2.0/25"), Some("contoso")),
        "{v}"
    );
    assert_eq!(
        v["toward_customer"],
        serde_json::json!([{"pop": "contoso-direct", "slots": 1021, "share": 1.0}]),
        "{v}"
    );
    // The backbone exit, given as the PoP pop-b: its policy pop:pop-b,
    // all of whose flows go to pop-b while it is up.
    assert_eq!(v["from_customer"], "pop:pop-b", "{v}");
    assert_eq!(
        v["from_customer_pops"],
        serde_json::json!([{"pop": "pop-b", "slots": 1021, "share": 1.0}]),
        "{v}"
    );
    let (_, v) = lookup("2001:db8:e::9");
    assert_eq!(
        v["toward_customer"],
        serde_json::json!([{"pop": "pop-a", "slots": 1021, "share": 1.0}]),
        "{v}"
    );
    let (_, v) = lookup("192.0.2.200");
    assert_eq!(
        (v["preference"].as_str(), v["dscp"].as_u64()),
        (Some("internet"), Some(34)),
        "{v}"
    );
    let (code, v) = lookup("198.51.100.77");
    assert_eq!(
        (code, &v["registered"]),
        (Some(3), &serde_json::json!(false))
    );

    let pin_path = edged.pin_path.clone();
    edged.teardown();
    assert!(!pin_path.exists(), "teardown removes the pins");
    let links = lab.lab.ip(&lab.edge, &["link", "show"]);
    assert!(!links.contains("xdp"), "XDP left attached:\n{links}");
    std::fs::remove_file(config).unwrap();
}

#[test]
fn sequence_numbered_streams_arrive_complete_in_both_families() {
    let lab = EdgeLab::build("stream");
    // Per-prefix series as well as per registration.
    let config = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(
        &config,
        LAB_CONFIG.replacen("[daemon]\n", "[daemon]\nprefix_metrics = \"prefix\"\n", 1),
    )
    .unwrap();
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let done = Arc::new(AtomicBool::new(false));
    let streams = lab_streams(&lab);
    let counters: Vec<_> = streams
        .iter()
        .map(|l| spawn_counter(udp_socket(&l.at, l.stream.to), done.clone()))
        .collect();
    let list: Vec<Stream> = streams.iter().map(|l| l.stream.clone()).collect();
    let sent = send_streams(&list, 500, 1000, &|| false);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let received: Vec<u32> = counters.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(sent, vec![500; streams.len()]);
    assert_eq!(received, sent, "every datagram arrives, none twice");
    let stats = edged.ctl_ok(&["stats"]);
    let forwarded: u64 = ["backbone", "transit", "policy"]
        .iter()
        .map(|r| counter(&stats, "reasons", r))
        .sum();
    assert_eq!(forwarded, 500 * streams.len() as u64, "{stats}");

    // The Prometheus endpoint, scraped over HTTP: per-prefix and per-PoP
    // counters equal what was sent, exactly.
    let text = http_get(&lab.edge, "127.0.0.1:9477".parse().unwrap(), "/metrics");
    let packets = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("{series} missing in:\n{text}"))
    };
    for (series, n) in [
        // contoso: 500 from the customer and 500 toward it, per family.
        (
            "edge_prefix_packets_total{prefix=\"192.0.2.0/25\",registration=\"contoso\"}",
            1000.0,
        ),
        (
            "edge_prefix_packets_total{prefix=\"2001:db8:c::/48\",registration=\"contoso\"}",
            1000.0,
        ),
        (
            "edge_prefix_packets_total{prefix=\"192.0.2.128/25\",registration=\"fabrikam\"}",
            500.0,
        ),
        (
            "edge_prefix_packets_total{prefix=\"2001:db8:d::/48\",registration=\"fabrikam\"}",
            500.0,
        ),
        (
            "edge_registration_packets_total{registration=\"contoso\"}",
            2000.0,
        ),
        (
            "edge_registration_packets_total{registration=\"fabrikam\"}",
            1000.0,
        ),
        ("edge_pop_packets_total{pop=\"pop-b\"}", 1000.0),
        ("edge_pop_packets_total{pop=\"transit\"}", 1000.0),
        ("edge_pop_packets_total{pop=\"contoso-direct\"}", 1000.0),
        ("edge_action_packets_total{action=\"redirect\"}", 3000.0),
        (
            "edge_policy_share{policy=\"contoso-nearest\",pop=\"contoso-direct\"}",
            1.0,
        ),
        ("edge_map_entries{map=\"EDGE_PFX_V4\"}", 3.0),
        ("edge_config_generation", 1.0),
    ] {
        assert_eq!(packets(series), n, "{series}");
    }
    // promtool (Debian package prometheus) lints the classic text format
    // (served without an OpenMetrics Accept header); both carry the same samples.
    assert!(
        text.contains("# TYPE edge_action_packets_total counter"),
        "{text}"
    );
    promtool_check(&text);
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

#[test]
fn a_failed_start_says_why_and_leaves_nothing_behind() {
    let lab = EdgeLab::build("fail");
    // A valid config naming an interface the edge does not have.
    let config = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(
        &config,
        LAB_CONFIG.replace("interface = \"tr0\"", "interface = \"missing0\""),
    )
    .unwrap();
    let pin_path = lab.pin_path();
    let out = edge_tests::netns::netns_command(&lab.edge, &workspace_bin("edged"))
        .arg("--config")
        .arg(&config)
        .arg("--pin-path")
        .arg(&pin_path)
        .arg("--socket")
        .arg(std::env::temp_dir().join(format!("{}.sock", lab.edge)))
        .arg("--state")
        .arg(std::env::temp_dir().join(format!("{}.state", lab.edge)))
        .output()
        .expect("run edged");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interface missing0 not found"), "{stderr}");
    assert!(!pin_path.exists(), "pins left behind after a failed start");
    let links = lab.lab.ip(&lab.edge, &["link", "show"]);
    assert!(
        !links.contains("xdp"),
        "XDP left attached after a failed start:\n{links}"
    );
    std::fs::remove_file(config).unwrap();
}
