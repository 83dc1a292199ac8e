//! Health probes against real sockets in network namespaces (root): ICMP
//! echo (IPv4, IPv6), probes bound to the PoP's interface, unreachable by
//! route and by a router's ICMP error, and timeouts. Refused, bad HTTP
//! status and bad / missing UDP echo are unit tests of `health` (no root).

use std::{
    net::{TcpListener, UdpSocket},
    time::{Duration, Instant},
};

use edge_tests::{
    harness::{
        health::{ProbeError, probe_once},
        plan::{Probe, ProbeKind},
    },
    netns::{Lab, in_netns},
};

const TIMEOUT: Duration = Duration::from_millis(400);

fn probe(kind: ProbeKind, address: &str, device: Option<&str>) -> Probe {
    Probe {
        kind,
        address: address.parse().unwrap(),
        device: device.map(str::to_string),
        interval: Duration::from_secs(1),
        timeout: TIMEOUT,
        rise: 2,
        fall: 3,
    }
}

/// Every probe kind toward `address` (TCP / HTTP / UDP to port 7).
fn every_kind(address: &str, device: Option<&str>) -> Vec<Probe> {
    [
        ProbeKind::Icmp,
        ProbeKind::Tcp { port: 7 },
        ProbeKind::Http {
            port: 7,
            path: "/".into(),
            host: None,
            status: 200,
        },
        ProbeKind::Udp {
            port: 7,
            payload: b"edge-probe".to_vec(),
        },
    ]
    .into_iter()
    .map(|k| probe(k, address, device))
    .collect()
}

/// Runs `f` on a current-thread tokio runtime inside `ns`.
fn in_ns<T: Send>(ns: &str, f: impl AsyncFnOnce() -> T + Send) -> T {
    in_netns(ns, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
}

#[test]
fn icmp_echo_to_loopback_v4_and_v6() {
    let mut lab = Lab::new("pricmp");
    let ns = lab.add_ns("a");
    in_ns(&ns, async || {
        for addr in ["127.0.0.1", "::1"] {
            let rtt = probe_once(&probe(ProbeKind::Icmp, addr, None))
                .await
                .unwrap_or_else(|e| panic!("ICMP echo to {addr}: {e}"));
            assert!(rtt < TIMEOUT, "{addr}: {rtt:?}");
            // Many in a row: each matches its own reply.
            for _ in 0..5 {
                probe_once(&probe(ProbeKind::Icmp, addr, Some("lo")))
                    .await
                    .unwrap();
            }
        }
    });
}

/// An edge namespace and a PoP namespace joined by a veth (`e0` ↔ `p0`),
/// plus a veth `e1` into a sink namespace whose end takes no frames:
/// 192.0.2.9 and 2001:db8:d0::9 sit behind `e1` at a MAC nobody has, so
/// whatever is sent to them vanishes.
fn edge_and_pop(tag: &str) -> (Lab, String, String) {
    let mut lab = Lab::new(tag);
    let edge = lab.add_ns("edge");
    let pop = lab.add_ns("pop");
    let sink = lab.add_ns("sink");
    lab.veth(
        (&edge, "e0", "02:00:00:00:e0:01"),
        (&pop, "p0", "02:00:00:00:e0:02"),
    );
    lab.addr(&edge, "e0", "198.51.100.1/30");
    lab.addr(&pop, "p0", "198.51.100.2/30");
    lab.addr(&edge, "e0", "2001:db8:e0::1/64");
    lab.addr(&pop, "p0", "2001:db8:e0::2/64");
    lab.veth(
        (&edge, "e1", "02:00:00:00:e1:01"),
        (&sink, "s1", "02:00:00:00:e1:02"),
    );
    lab.addr(&edge, "e1", "192.0.2.1/24");
    lab.addr(&edge, "e1", "2001:db8:d0::1/64");
    for addr in ["192.0.2.9", "2001:db8:d0::9"] {
        lab.ip(
            &edge,
            &[
                "neigh",
                "add",
                addr,
                "lladdr",
                "02:00:00:00:99:99",
                "dev",
                "e1",
                "nud",
                "permanent",
            ],
        );
    }
    (lab, edge, pop)
}

#[test]
fn every_probe_reaches_the_pop_through_its_interface() {
    let (_lab, edge, pop) = edge_and_pop("prdev");
    // Servers in the PoP namespace: sockets stay in the namespace they were
    // made in, and are served from the edge's runtime below.
    let (tcp4, tcp6, udp4, udp6) = in_netns(&pop, || {
        (
            TcpListener::bind("198.51.100.2:7").unwrap(),
            TcpListener::bind("[2001:db8:e0::2]:7").unwrap(),
            UdpSocket::bind("198.51.100.2:7").unwrap(),
            UdpSocket::bind("[2001:db8:e0::2]:7").unwrap(),
        )
    });
    in_ns(&edge, async move || {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for l in [tcp4, tcp6] {
            l.set_nonblocking(true).unwrap();
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            tokio::spawn(async move {
                while let Ok((mut s, _)) = l.accept().await {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 1024];
                        // A connect-only probe sends nothing and resets.
                        if let Ok(n @ 1..) = s.read(&mut buf).await
                            && buf[..n].starts_with(b"GET / HTTP/1.1\r\n")
                        {
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
                        }
                    });
                }
            });
        }
        for u in [udp4, udp6] {
            u.set_nonblocking(true).unwrap();
            let u = tokio::net::UdpSocket::from_std(u).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                while let Ok((n, from)) = u.recv_from(&mut buf).await {
                    let _ = u.send_to(&buf[..n], from).await;
                }
            });
        }
        for address in ["198.51.100.2", "2001:db8:e0::2"] {
            for p in every_kind(address, Some("e0")) {
                let rtt = probe_once(&p)
                    .await
                    .unwrap_or_else(|e| panic!("{:?} to {address} via e0: {e}", p.kind));
                assert!(rtt < TIMEOUT);
            }
            // Bound to an interface that does not lead there, no probe gets
            // through: the binding is in force.
            for p in every_kind(address, Some("e1")) {
                let err = probe_once(&p).await.unwrap_err();
                assert!(
                    matches!(err, ProbeError::Unreachable(_) | ProbeError::Timeout(_)),
                    "{:?} to {address} via e1: {err:?}",
                    p.kind
                );
            }
        }
    });
}

#[test]
fn no_route_is_unreachable_for_every_probe() {
    let (lab, edge, _pop) = edge_and_pop("prnoroute");
    lab.ip(&edge, &["route", "add", "unreachable", "203.0.113.0/24"]);
    lab.ip(
        &edge,
        &["-6", "route", "add", "unreachable", "2001:db8:dead::/48"],
    );
    in_ns(&edge, async || {
        for address in ["203.0.113.9", "2001:db8:dead::9"] {
            for p in every_kind(address, None) {
                let started = Instant::now();
                let err = probe_once(&p).await.unwrap_err();
                assert!(
                    matches!(err, ProbeError::Unreachable(_)),
                    "{:?} to {address}: {err:?}",
                    p.kind
                );
                assert!(started.elapsed() < TIMEOUT, "reported at once");
            }
        }
    });
}

#[test]
fn a_routers_icmp_error_is_unreachable() {
    // edge → router (forwarding on) which has no way to 203.0.113.0/24 and
    // answers with ICMP destination unreachable.
    let (lab, edge, router) = edge_and_pop("prrouter");
    lab.sysctl(&router, "net.ipv4.ip_forward", "1");
    lab.sysctl(&router, "net.ipv6.conf.all.forwarding", "1");
    lab.ip(&router, &["route", "add", "unreachable", "203.0.113.0/24"]);
    lab.ip(
        &router,
        &["-6", "route", "add", "unreachable", "2001:db8:dead::/48"],
    );
    lab.ip(
        &edge,
        &["route", "add", "203.0.113.0/24", "via", "198.51.100.2"],
    );
    lab.ip(
        &edge,
        &[
            "-6",
            "route",
            "add",
            "2001:db8:dead::/48",
            "via",
            "2001:db8:e0::2",
        ],
    );
    in_ns(&edge, async || {
        for (address, from) in [
            ("203.0.113.9", "198.51.100.2"),
            ("2001:db8:dead::9", "2001:db8:e0::2"),
        ] {
            // TCP: the kernel turns the ICMP error into a connect error. For
            // IPv6, Linux reports it with the SYN's retransmission (after
            // about 1 s), so that probe gets a longer timeout.
            let mut tcp = probe(ProbeKind::Tcp { port: 7 }, address, Some("e0"));
            if address.contains(':') {
                tcp.timeout = Duration::from_secs(3);
            }
            let err = probe_once(&tcp).await.unwrap_err();
            assert!(
                matches!(err, ProbeError::Unreachable(_)),
                "TCP to {address}: {err:?}"
            );
            // ICMP: the raw socket reads the error quoting our echo.
            let err = probe_once(&probe(ProbeKind::Icmp, address, Some("e0")))
                .await
                .unwrap_err();
            match &err {
                ProbeError::Unreachable(what) => assert!(
                    what.contains("destination unreachable") && what.contains(from),
                    "{what}"
                ),
                other => panic!("ICMP to {address}: {other:?}"),
            }
        }
    });
}

#[test]
fn silence_is_a_timeout_for_every_probe() {
    // Frames to 192.0.2.9 / 2001:db8:d0::9 vanish behind e1.
    let (_lab, edge, _pop) = edge_and_pop("prtimeout");
    in_ns(&edge, async || {
        for address in ["192.0.2.9", "2001:db8:d0::9"] {
            for p in every_kind(address, None) {
                let started = Instant::now();
                let err = probe_once(&p).await.unwrap_err();
                let took = started.elapsed();
                assert!(
                    matches!(err, ProbeError::Timeout(t) if t == TIMEOUT),
                    "{:?} to {address}: {err:?}",
                    p.kind
                );
                assert!(
                    took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(200),
                    "{took:?}"
                );
            }
        }
    });
}
