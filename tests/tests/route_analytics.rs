//! Route analytics with real FRR instances (tier 3): a customer AS
//! announcing its registered prefix, a hijacker announcing the same prefix
//! and a more-specific, a leaker whose path passes through an AS the
//! registration does not allow; the edge's FRR streams BMP to edged. Each
//! anomaly is reported within 2 s (measured and printed), withdrawals clear
//! them, the legitimate path raises nothing, and neither a BMP session
//! reset nor an edged restart loses an anomaly that is still present.
//! With `hold_on_hijack`, an origin hijack holds the registered prefix's
//! traffic to its registered peering port until the hijack is withdrawn
//! (frames sent and captured byte for byte, counters read back).

use std::{
    io::Write as _,
    os::fd::AsRawFd as _,
    time::{Duration, Instant},
};

use edge_tests::{
    delayline::bound_packet_socket,
    frames::{L4, Pkt},
    frr::Frr,
    netns::in_netns,
    topology::*,
};
use serde_json::Value;

const EDGE_AS: u32 = 64496;
const CUSTOMER_AS: u32 = 64500;
const LEAKER_AS: u32 = 64502;
const HIJACKER_AS: u32 = 64511;
/// contoso's registered prefix in tests/lab.toml.
const PREFIX: &str = "192.0.2.0/25";
const MORE_SPECIFIC: &str = "192.0.2.0/26";
/// A more-specific the edge announces itself (its echoes are dropped).
const ECHOED: &str = "192.0.2.64/26";
const BMP_PORT: u16 = 11019;
/// The bound on reporting an anomaly.
const REPORT_WITHIN: Duration = Duration::from_secs(2);

/// The lab config, with contoso's origin and upstream declared and BMP on.
fn config() -> String {
    format!(
        "{LAB_CONFIG}
[bmp]
listen = \"127.0.0.1:{BMP_PORT}\"

[[registrations]]
name = \"contoso\"
origin_asns = [{CUSTOMER_AS}]
upstream_asns = [64501]
"
    )
}

/// A bgpd announcing `networks` to the edge at `edge_addr` (AS 64496),
/// through `route_map_out` when given.
fn announcer(asn: u32, me: &str, edge_addr: &str, route_map: &str) -> String {
    format!(
        "frr defaults traditional
hostname as{asn}
log stdout informational
{route_map}
router bgp {asn}
 bgp router-id {me}
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {edge_addr} remote-as {EDGE_AS}
 neighbor {edge_addr} timers connect 1
 neighbor {edge_addr} advertisement-interval 0
 address-family ipv4 unicast
{out}
 exit-address-family
",
        out = if route_map.is_empty() {
            String::new()
        } else {
            format!("  neighbor {edge_addr} route-map OUT out")
        }
    )
}

/// The edge's bgpd: a session to each announcer, BMP to edged. It
/// announces nothing to them (so that no announcer re-advertises another's
/// route: each path is the one its test step sets up).
fn edge_frr(peers: &[(&str, u32)]) -> String {
    let mut out = format!(
        "frr defaults traditional
hostname edge
log stdout informational
route-map NOTHING deny 10
router bgp {EDGE_AS}
 bgp router-id 198.18.0.1
 no bgp ebgp-requires-policy
"
    );
    for (addr, asn) in peers {
        out += &format!(
            " neighbor {addr} remote-as {asn}\n neighbor {addr} timers connect 1\n neighbor {addr} advertisement-interval 0\n"
        );
    }
    out += " address-family ipv4 unicast\n";
    for (addr, _) in peers {
        // Pre-policy monitoring of the initial table needs the Adj-RIB-In.
        out += &format!(
            "  neighbor {addr} soft-reconfiguration inbound\n  neighbor {addr} route-map NOTHING out\n"
        );
    }
    out += &format!(
        " exit-address-family
 bmp targets edged
  {BMP_CONNECT}
  bmp monitor ipv4 unicast pre-policy
  bmp monitor ipv4 unicast post-policy
 exit
"
    );
    out
}

const BMP_CONNECT: &str = "bmp connect 127.0.0.1 port 11019 min-retry 100 max-retry 500";

/// `edgectl routes anomalies`: (active, cleared).
fn anomalies(edged: &Edged) -> (Vec<Value>, Vec<Value>) {
    let v = edged.ctl_ok(&["routes", "anomalies"]);
    (
        v["active"].as_array().unwrap().clone(),
        v["cleared"].as_array().unwrap().clone(),
    )
}

fn is(a: &Value, kind: &str, prefix: &str, asn: u32) -> bool {
    a["kind"] == kind && a["prefix"] == prefix && a["asn"] == asn
}

/// Polls until `f` holds (every 20 ms, at most `limit`); the time it took.
fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

/// Runs `change`, then measures until the anomaly shows as active.
fn reported(edged: &Edged, what: &str, change: impl FnOnce(), kind: &str, prefix: &str, asn: u32) {
    let t = Instant::now();
    change();
    wait_for(what, Duration::from_secs(10), || {
        anomalies(edged).0.iter().any(|a| is(a, kind, prefix, asn))
    });
    // From before vtysh configured the announcement: an upper bound.
    let took = t.elapsed();
    println!("{what}: reported {took:?} after the announcement");
    assert!(
        took <= REPORT_WITHIN,
        "{what}: reported after {took:?}, more than {REPORT_WITHIN:?}"
    );
}

fn cleared(edged: &Edged, what: &str, change: impl FnOnce(), kind: &str, prefix: &str, asn: u32) {
    let t = Instant::now();
    change();
    wait_for(what, Duration::from_secs(10), || {
        let (active, cleared) = anomalies(edged);
        !active.iter().any(|a| is(a, kind, prefix, asn))
            && cleared.iter().any(|a| is(a, kind, prefix, asn))
    });
    println!("{what}: cleared {:?} after the withdrawal", t.elapsed());
}

#[test]
fn hijacks_and_leaks_from_real_frr_over_bmp() {
    let mut lab = EdgeLab::build("bmp");
    // Three announcers, each on a veth of its own to the edge namespace
    // (not a forwarding port): 198.18.N.0/30, the edge .2.
    let mut names = Vec::new();
    for (i, who) in ["customer", "hijacker", "leaker"].iter().enumerate() {
        let ns = lab.lab.add_ns(&format!("as-{who}"));
        let n = i + 1;
        lab.lab.veth(
            (&ns, "eth0", &format!("02:00:00:00:1{n}:01")),
            (
                &lab.edge,
                &format!("bmp{n}"),
                &format!("02:00:00:00:1{n}:02"),
            ),
        );
        lab.lab.addr(&ns, "eth0", &format!("198.18.{n}.1/30"));
        lab.lab
            .addr(&lab.edge, &format!("bmp{n}"), &format!("198.18.{n}.2/30"));
        names.push(ns);
    }
    let config_path = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&config_path, config()).unwrap();
    let (mut edged, log) = Edged::start_logged(&lab.edge, &config_path, &lab.pin_path(), &[]);

    let customer = Frr::start(
        &names[0],
        &format!("{}-frr", names[0]),
        &announcer(CUSTOMER_AS, "198.18.1.1", "198.18.1.2", ""),
    );
    let hijacker = Frr::start(
        &names[1],
        &format!("{}-frr", names[1]),
        &announcer(HIJACKER_AS, "198.18.2.1", "198.18.2.2", ""),
    );
    // The leaker announces the customer's prefix as if it had learnt it
    // from the customer: its path is 64502 64500 (origin allowed, 64502
    // not an allowed upstream).
    let leaker = Frr::start(
        &names[2],
        &format!("{}-frr", names[2]),
        &announcer(
            LEAKER_AS,
            "198.18.3.1",
            "198.18.3.2",
            &format!("route-map OUT permit 10\n set as-path prepend {CUSTOMER_AS}\n"),
        ),
    );
    let edge = Frr::start(
        &lab.edge,
        &format!("{}-frr", lab.edge),
        &edge_frr(&[
            ("198.18.1.1", CUSTOMER_AS),
            ("198.18.2.1", HIJACKER_AS),
            ("198.18.3.1", LEAKER_AS),
        ]),
    );
    let up = edge.wait_established(3, Duration::from_secs(30));
    println!("BGP sessions established after {up:?}");

    // The legitimate path: seen, nothing raised.
    customer.configure(&[
        "router bgp 64500",
        "address-family ipv4 unicast",
        &format!("network {PREFIX}"),
    ]);
    wait_for(
        "the customer's path over BMP",
        Duration::from_secs(15),
        || {
            let v = edged.ctl_ok(&["routes", "show", PREFIX]);
            v["paths"].as_array().unwrap().iter().any(|p| {
                p["peer"]["asn"] == CUSTOMER_AS && p["as_path"] == serde_json::json!([CUSTOMER_AS])
            })
        },
    );
    let show = edged.ctl_ok(&["routes", "show", PREFIX]);
    assert_eq!(show["registration"], "contoso");
    assert!(
        show["paths"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["anomaly"].is_null()),
        "{show:#}"
    );
    assert_eq!(
        anomalies(&edged),
        (vec![], vec![]),
        "nothing for the legitimate path"
    );

    // Origin hijack, sub-prefix hijack, leak: each within 2 s.
    let bgp = |f: &Frr, asn: u32, cmd: &str| {
        f.configure(&[
            &format!("router bgp {asn}"),
            "address-family ipv4 unicast",
            cmd,
        ])
    };
    reported(
        &edged,
        "origin hijack",
        || bgp(&hijacker, HIJACKER_AS, &format!("network {PREFIX}")),
        "origin_hijack",
        PREFIX,
        HIJACKER_AS,
    );
    reported(
        &edged,
        "sub-prefix hijack",
        || bgp(&hijacker, HIJACKER_AS, &format!("network {MORE_SPECIFIC}")),
        "sub_prefix_hijack",
        MORE_SPECIFIC,
        HIJACKER_AS,
    );
    reported(
        &edged,
        "route leak",
        || bgp(&leaker, LEAKER_AS, &format!("network {PREFIX}")),
        "route_leak",
        PREFIX,
        LEAKER_AS,
    );
    // As events too, and in the metrics' terms.
    let events = edged.ctl_ok(&["events"]);
    let route_events: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "route")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    for needle in [
        "origin hijack: 192.0.2.0/25",
        "sub-prefix hijack: 192.0.2.0/26",
        "route leak: 192.0.2.0/25",
    ] {
        assert!(
            route_events.iter().any(|m| m.starts_with(needle)),
            "no event {needle:?} in {route_events:#?}"
        );
    }
    assert!(
        log.wait_for("origin hijack: 192.0.2.0/25", Duration::from_secs(1))
            .is_some()
    );

    // The sub-prefix hijack and the leak are withdrawn: they clear.
    cleared(
        &edged,
        "sub-prefix hijack",
        || {
            bgp(
                &hijacker,
                HIJACKER_AS,
                &format!("no network {MORE_SPECIFIC}"),
            )
        },
        "sub_prefix_hijack",
        MORE_SPECIFIC,
        HIJACKER_AS,
    );
    cleared(
        &edged,
        "route leak",
        || bgp(&leaker, LEAKER_AS, &format!("no network {PREFIX}")),
        "route_leak",
        PREFIX,
        LEAKER_AS,
    );

    // The origin hijack stays. A BMP session reset (the edge's FRR stops
    // and starts its BMP connection): it never goes, and keeps its start.
    let origin = |edged: &Edged| {
        anomalies(edged)
            .0
            .into_iter()
            .find(|a| is(a, "origin_hijack", PREFIX, HIJACKER_AS))
    };
    let before = origin(&edged).expect("the origin hijack is active");
    let sessions = |edged: &Edged| {
        edged.ctl_ok(&["routes", "anomalies"])["bmp"]["totals"]["sessions_total"]
            .as_u64()
            .unwrap()
    };
    let opened = sessions(&edged);
    edge.configure(&[
        "router bgp 64496",
        "bmp targets edged",
        &format!("no {BMP_CONNECT}"),
    ]);
    std::thread::sleep(Duration::from_millis(500));
    edge.configure(&["router bgp 64496", "bmp targets edged", BMP_CONNECT]);
    let t = Instant::now();
    wait_for(
        "the BMP session to come back",
        Duration::from_secs(15),
        || {
            assert_eq!(
                origin(&edged).map(|a| a["since"].clone()),
                Some(before["since"].clone()),
                "the origin hijack went (or restarted) during the BMP session reset"
            );
            sessions(&edged) > opened
                && edged.ctl_ok(&["routes", "show", PREFIX])["paths"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|p| p["stale"] == false)
        },
    );
    println!(
        "BMP session reset: back and resent after {:?}; the origin hijack stayed",
        t.elapsed()
    );

    // A malformed message closes only its own session.
    in_netns(&lab.edge, || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", BMP_PORT)).unwrap();
        // Version 3, length 48, Route Monitoring, and a per-peer header
        // followed by no BGP message.
        let mut msg = vec![3, 0, 0, 0, 48, 0];
        msg.extend_from_slice(&[0u8; 42]);
        s.write_all(&msg).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        // edged closes it.
        assert_eq!(std::io::Read::read(&mut s, &mut buf).unwrap_or(0), 0);
    });
    assert!(
        log.wait_for("malformed BMP message", Duration::from_secs(2))
            .is_some(),
        "no log line for the malformed message"
    );
    assert!(
        origin(&edged).is_some(),
        "the malformed session took the FRR view with it"
    );

    // An edged restart: the FRR reconnects and the hijack is back.
    edged.stop();
    let t = Instant::now();
    let _log = edged.restart_logged(&[]);
    wait_for(
        "the origin hijack after an edged restart",
        Duration::from_secs(15),
        || origin(&edged).is_some(),
    );
    println!(
        "edged restart: the origin hijack reported again {:?} after the restart",
        t.elapsed()
    );

    // Withdrawn: it clears; visibility stays (the customer announces).
    cleared(
        &edged,
        "origin hijack",
        || bgp(&hijacker, HIJACKER_AS, &format!("no network {PREFIX}")),
        "origin_hijack",
        PREFIX,
        HIJACKER_AS,
    );
    let (active, cleared) = anomalies(&edged);
    assert_eq!(active, Vec::<Value>::new(), "nothing active once withdrawn");
    // Nothing ever named the customer's session.
    for a in &cleared {
        assert_ne!(a["kind"], "visibility_loss", "{a:#}");
        assert_ne!(a["kind"], "as_hops", "{a:#}");
    }
    let metrics = http_get(&lab.edge, "127.0.0.1:9477".parse().unwrap(), "/metrics");
    assert_eq!(
        sample(
            &metrics,
            "edge_route_anomalies{registration=\"contoso\",kind=\"origin_hijack\"}"
        ),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "edge_route_visible_prefixes{registration=\"contoso\"}"
        ),
        Some(1.0)
    );
    // Raised once since this edged started (counters start afresh).
    assert_eq!(
        sample(
            &metrics,
            "edge_route_anomalies_raised_total{registration=\"contoso\",kind=\"origin_hijack\"}"
        ),
        Some(1.0)
    );
    // promtool (Debian package prometheus) lints the route families too.
    promtool_check(&metrics);

    // Echoes: the edge announces a more-specific of its own and lets the
    // hijacker have its routes; the hijacker sends them back (its own AS
    // in front of the edge's). BGP loop detection rejects them but the
    // pre-policy Adj-RIB-In keeps them, and FRR never withdraws them over
    // BMP: edged drops them (counted), so they raise nothing (else: a
    // sub-prefix hijack by AS64496 and a route leak through AS64511).
    bgp(&edge, EDGE_AS, &format!("network {ECHOED}"));
    bgp(
        &edge,
        EDGE_AS,
        "no neighbor 198.18.2.1 route-map NOTHING out",
    );
    let echoed = || {
        edged.ctl_ok(&["routes", "anomalies"])["bmp"]["totals"]["echoed"]
            .as_u64()
            .unwrap_or(0)
    };
    wait_for("the hijacker's echoes", Duration::from_secs(15), || {
        echoed() >= 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let (active, _) = anomalies(&edged);
    assert_eq!(active, Vec::<Value>::new(), "echoes raise nothing");
    let show = edged.ctl_ok(&["routes", "show", ECHOED]);
    assert_eq!(show["paths"], serde_json::json!([]), "{show:#}");
    println!("echoes: {} dropped, nothing raised", echoed());
    let metrics = http_get(&lab.edge, "127.0.0.1:9477".parse().unwrap(), "/metrics");
    assert_eq!(
        sample(&metrics, "edge_bmp_echoed_total"),
        Some(echoed() as f64),
        "{metrics}"
    );
    drop(edge);
    drop(leaker);
    drop(hijacker);
    drop(customer);
    drop(edged);
    std::fs::remove_file(config_path).unwrap();
}

/// fabrikam's registered prefix in tests/lab.toml (no `protect` of its own).
const FABRIKAM_PREFIX: &str = "192.0.2.128/25";

fn mac(s: &str) -> [u8; 6] {
    let b: Vec<u8> = s
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    b.try_into().unwrap()
}

/// Sends `frame` as is from `ns`'s eth0 (AF_PACKET): it arrives on the
/// edge port at the other end of the veth.
fn send_frame(ns: &str, frame: &[u8]) {
    let fd = bound_packet_socket(ns, "eth0");
    // SAFETY: a valid socket and buffer.
    let sent = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
    assert_eq!(
        sent,
        frame.len() as isize,
        "send on {ns}: {}",
        std::io::Error::last_os_error()
    );
}

/// `stats` packets dropped because a protected prefix's traffic came in
/// on another peering port.
fn protection_drops(edged: &Edged) -> u64 {
    let stats = edged.ctl_ok(&["stats"]);
    stats["reasons"]["protection"]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("reasons/protection missing in {stats}"))
}

/// `status.bmp.held`'s prefixes.
fn held(edged: &Edged) -> Vec<String> {
    let s = edged.ctl_ok(&["status"]);
    s["bmp"]["held"]
        .as_array()
        .unwrap_or_else(|| panic!("status.bmp.held missing in {s}"))
        .iter()
        .map(|h| h["prefix"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_hijack_holds_the_prefix_to_its_registered_port_until_withdrawn() {
    let mut lab = EdgeLab::build("hold");
    let ns = lab.lab.add_ns("as-hijacker");
    lab.lab.veth(
        (&ns, "eth0", "02:00:00:00:21:01"),
        (&lab.edge, "bmp1", "02:00:00:00:21:02"),
    );
    lab.lab.addr(&ns, "eth0", "198.18.1.1/30");
    lab.lab.addr(&lab.edge, "bmp1", "198.18.1.2/30");
    let config_path = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(
        &config_path,
        format!(
            "{LAB_CONFIG}
[bmp]
listen = \"127.0.0.1:{BMP_PORT}\"

[[registrations]]
name = \"fabrikam\"
origin_asns = [{CUSTOMER_AS}]
hold_on_hijack = [\"peer0\"]
"
        ),
    )
    .unwrap();
    let (edged, log) = Edged::start_logged(&lab.edge, &config_path, &lab.pin_path(), &[]);
    let hijacker = Frr::start(
        &ns,
        &format!("{ns}-frr"),
        &announcer(HIJACKER_AS, "198.18.1.1", "198.18.1.2", ""),
    );
    let edge = Frr::start(
        &lab.edge,
        &format!("{}-frr", lab.edge),
        &edge_frr(&[("198.18.1.1", HIJACKER_AS)]),
    );
    edge.wait_established(1, Duration::from_secs(30));
    // The hijacker's session as the BMP feed reports it (a session that
    // FRR resets once at the start shows up again), so that the time
    // measured below is the announcement's.
    assert!(
        log.wait_for(
            &format!("peer 198.18.1.1 AS{HIJACKER_AS} of router 127.0.0.1 up"),
            Duration::from_secs(15)
        )
        .is_some(),
        "no BMP Peer Up for the hijacker"
    );
    assert_eq!(edged.ctl_ok(&["status"])["bmp"]["totals"]["sessions"], 1);
    let status = edged.ctl_ok(&["status"]);
    assert_eq!(
        status["bmp"]["listen"],
        format!("127.0.0.1:{BMP_PORT}"),
        "{status}"
    );
    assert!(
        status["bmp"]["totals"]["messages"].as_u64().unwrap() > 0,
        "{status}"
    );
    assert!(
        edged
            .ctl_text(&["status"])
            .contains(&format!("BMP on 127.0.0.1:{BMP_PORT}: 1 sessions open"))
    );

    // fabrikam's traffic (internet preference, DSCP af41) to transit, from
    // the customer on peer0 and from the other peer on peer1.
    let at_transit = Capture::open(&lab.transit, "eth0");
    let from_peer0 = |dport: u16| {
        Pkt::udp(FABRIKAM_V4, TRANSIT_V4).with(|p| {
            p.src_mac = mac(CUST_MAC);
            p.dst_mac = mac(EDGE_PEER0_MAC);
            p.l4 = L4::Udp {
                sport: 40000,
                dport,
            };
        })
    };
    let from_peer1 = |dport: u16| {
        from_peer0(dport).with(|p| {
            p.src_mac = mac(ROGUE_MAC);
            p.dst_mac = mac(EDGE_PEER1_MAC);
        })
    };
    let forwarded = |pkt: &Pkt| pkt.forwarded(mac(EDGE_TR_MAC), mac(TRANSIT_MAC), Some(34));
    // Sent from `ns`: arrives at transit exactly as forwarded.
    let arrives = |ns: &str, pkt: Pkt| {
        let want = forwarded(&pkt);
        send_frame(ns, &pkt.build());
        at_transit
            .next_matching(Duration::from_secs(3), |f| f == want)
            .is_some()
    };
    // Sent from `ns` `n` times: dropped, each counted as protection.
    let dropped = |ns: &str, pkt: Pkt, n: u64| {
        let before = protection_drops(&edged);
        let want = forwarded(&pkt);
        for _ in 0..n {
            send_frame(ns, &pkt.build());
        }
        wait_for("the drops counted", Duration::from_secs(5), || {
            protection_drops(&edged) >= before + n
        });
        assert_eq!(protection_drops(&edged), before + n, "counted once each");
        assert!(
            at_transit
                .next_matching(Duration::from_millis(300), |f| f == want)
                .is_none(),
            "a dropped frame reached transit"
        );
    };
    assert!(arrives(&lab.cust, from_peer0(7101)), "peer0 before");
    assert!(
        arrives(&lab.rogue, from_peer1(7102)),
        "peer1 before the hijack"
    );
    assert_eq!(protection_drops(&edged), 0);
    assert!(held(&edged).is_empty());

    // The origin hijack: held to peer0 once reported.
    let bgp = |cmd: &str| {
        hijacker.configure(&[
            &format!("router bgp {HIJACKER_AS}"),
            "address-family ipv4 unicast",
            cmd,
        ])
    };
    let t = Instant::now();
    bgp(&format!("network {FABRIKAM_PREFIX}"));
    wait_for("the hold", Duration::from_secs(10), || {
        held(&edged) == [FABRIKAM_PREFIX]
    });
    // From before vtysh configured the announcement (an upper bound that
    // includes BGP and FRR's BMP), and edged's own part: from the anomaly
    // raised to the hold in the maps (both edged's clock).
    let took = t.elapsed();
    let a = edged.ctl_ok(&["routes", "anomalies"]);
    let hijack = a["active"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| is(a, "origin_hijack", FABRIKAM_PREFIX, HIJACKER_AS))
        .unwrap_or_else(|| panic!("no origin hijack in {a:#}"));
    let hold = &a["bmp"]["held"][0];
    assert_eq!(hold["ports"], serde_json::json!(["peer0"]), "{hold}");
    assert_eq!(hold["registration"], "fabrikam");
    let inside = hold["since"].as_f64().unwrap() - hijack["since"].as_f64().unwrap();
    println!(
        "hold in the maps {took:?} after the announcement; {:.1} ms after the anomaly was raised",
        inside * 1e3
    );
    assert!(
        (0.0..1.0).contains(&inside),
        "held {inside} s after the anomaly"
    );
    assert!(took <= Duration::from_secs(5), "held after {took:?}");
    dropped(&lab.rogue, from_peer1(7103), 3);
    assert!(arrives(&lab.cust, from_peer0(7104)), "peer0 while held");
    let prefix = edged.ctl_ok(&["prefix", "show", FABRIKAM_PREFIX]);
    assert_eq!(prefix["protect"], serde_json::json!(["peer0"]), "{prefix}");
    assert!(
        log.wait_for(
            "holding 192.0.2.128/25 (fabrikam) to ports peer0 (origin hijack by AS64511)",
            Duration::from_secs(1)
        )
        .is_some()
    );

    // Withdrawn: released, peer1 forwards again.
    let t = Instant::now();
    bgp(&format!("no network {FABRIKAM_PREFIX}"));
    wait_for("the release", Duration::from_secs(10), || {
        held(&edged).is_empty()
    });
    println!("released {:?} after the withdrawal", t.elapsed());
    let drops = protection_drops(&edged);
    assert!(
        arrives(&lab.rogue, from_peer1(7105)),
        "peer1 after the release"
    );
    assert!(
        arrives(&lab.cust, from_peer0(7106)),
        "peer0 after the release"
    );
    assert_eq!(protection_drops(&edged), drops);
    let prefix = edged.ctl_ok(&["prefix", "show", FABRIKAM_PREFIX]);
    assert_eq!(prefix["protect"], serde_json::json!([]), "{prefix}");
    let events = edged.ctl_ok(&["events"]);
    let route: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "route")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    for needle in [
        "holding 192.0.2.128/25 (fabrikam) to ports peer0",
        "released 192.0.2.128/25 (fabrikam) from ports peer0",
    ] {
        assert!(
            route.iter().any(|m| m.starts_with(needle)),
            "no event {needle:?} in {route:#?}"
        );
    }
    drop(edge);
    drop(hijacker);
    drop(edged);
    std::fs::remove_file(config_path).unwrap();
}
