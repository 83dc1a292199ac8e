//! Path MTU discovery through an encapsulated PoP (issue 14, item 3), with
//! real TCP through network namespaces and edged:
//!
//! ```text
//!  client:eth0 ── edge:tr0 (transit)   edge:bb0 (backbone) ── far:eth0
//!  198.51.100.10                        198.51.100.1        198.51.100.2, tunnel end 203.0.113.1
//!  2001:db8:ff:f::2                     2001:db8:ff:a::1    2001:db8:ff:a::2, 2001:db8:ff::2
//!                                                           server 203.0.113.200, 2001:db8:e::200
//! ```
//!
//! Every link is a veth with MTU 1500. Toward the server, edge wraps the
//! client's packets in IP-in-IP / IPv6-in-IPv6 to PoP `far` on bb0; the far
//! end strips the outer header with the test decapsulator (XDP,
//! `edge_test_decap`: the lab has no tunnel devices) and its stack answers
//! through edge (prefix `client`, XDP too: the edge kernel forwards
//! nothing). A full-size segment (1500 bytes, MSS 1460) is 1520 / 1540
//! bytes in the tunnel: the veth drops it.
//!
//! First, edge's end of the link says 3000 bytes while the far end takes
//! 1500 (a path narrower than the interface, which edged cannot see): the
//! transfer stalls, nothing reaches the server and no ICMP error is
//! counted, while edge counts the packets as forwarded. Then the config
//! says `mtu = 1500` and a reload: edge answers the full-size segments with ICMP "fragmentation needed" (1480) /
//! "packet too big" (1460), the client's kernel caches the path MTU, TCP
//! sends smaller segments and 1 MB arrives intact in each family.

use std::{
    io::{ErrorKind, Read as _, Write as _},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    time::{Duration, Instant},
};

use aya::programs::{Xdp, XdpMode};
use edge_common::prog_names;
use edge_tests::{
    harness::loader,
    netns::{Lab, in_netns},
    topology::{Edged, sock},
};

const CLIENT_MAC: &str = "02:00:00:00:1c:01";
const EDGE_TR_MAC: &str = "02:00:00:00:1c:fe";
const FAR_MAC: &str = "02:00:00:00:1f:01";
const EDGE_BB_MAC: &str = "02:00:00:00:1f:fe";

const SERVER_V4: &str = "203.0.113.200";
const SERVER_V6: &str = "2001:db8:e::200";

/// Bytes each transfer sends.
const BYTES: usize = 1 << 20;

/// edged's config; `{mtu}` is replaced by an `mtu` line or nothing.
const CONFIG: &str = r#"
[[ports]]
interface = "tr0"
role = "transit"

[[ports]]
interface = "bb0"
role = "backbone"

[[pops]]
name = "far"
interface = "bb0"
mac = "02:00:00:00:1f:01"
encap_ipv4 = { source = "198.51.100.1", destination = "203.0.113.1" }
encap_ipv6 = { source = "2001:db8:ff:a::1", destination = "2001:db8:ff::2" }
{mtu}

[[pops]]
name = "client"
interface = "tr0"
mac = "02:00:00:00:1c:01"

[[prefixes]]
prefix = "203.0.113.128/25"
registration = "server"
pop = "far"

[[prefixes]]
prefix = "2001:db8:e::/48"
registration = "server"
pop = "far"

[[prefixes]]
prefix = "198.51.100.8/30"
registration = "client"
pop = "client"

[[prefixes]]
prefix = "2001:db8:ff:f::/64"
registration = "client"
pop = "client"
"#;

struct MtuLab {
    client: String,
    edge: String,
    far: String,
    /// XDP on the far ends of the edge's veths: `edge_pass` at the client
    /// (a veth takes redirected and XDP_TX frames only when its peer runs
    /// XDP), the decapsulator at the far end. Detached on drop.
    _xdp: Vec<aya::Ebpf>,
    /// Dropped last: deletes the namespaces.
    lab: Lab,
}

impl MtuLab {
    fn build() -> Self {
        let mut lab = Lab::new("mtu");
        let client = lab.add_ns("cli");
        let edge = lab.add_ns("edge");
        let far = lab.add_ns("far");
        lab.veth((&client, "eth0", CLIENT_MAC), (&edge, "tr0", EDGE_TR_MAC));
        lab.veth((&far, "eth0", FAR_MAC), (&edge, "bb0", EDGE_BB_MAC));
        for ns in [&client, &far] {
            // Senders fill in their checksums: XDP forwarding drops a
            // veth's CHECKSUM_PARTIAL (see topology.rs).
            lab.exec(ns, "ethtool", &["--offload", "eth0", "tx", "off"]);
        }
        for (ns, dev, addrs) in [
            (
                &client,
                "eth0",
                &["198.51.100.10/30", "2001:db8:ff:f::2/64"][..],
            ),
            (&edge, "tr0", &["198.51.100.9/30", "2001:db8:ff:f::1/64"]),
            (&edge, "bb0", &["198.51.100.1/30", "2001:db8:ff:a::1/64"]),
            (&far, "eth0", &["198.51.100.2/30", "2001:db8:ff:a::2/64"]),
            (
                &far,
                "lo",
                &[
                    "203.0.113.1/32",
                    "2001:db8:ff::2/128",
                    "203.0.113.200/32",
                    "2001:db8:e::200/128",
                ],
            ),
        ] {
            for a in addrs {
                lab.addr(ns, dev, a);
            }
        }
        for (ns, via4, via6) in [
            (&client, "198.51.100.9", "2001:db8:ff:f::1"),
            (&far, "198.51.100.1", "2001:db8:ff:a::1"),
        ] {
            lab.ip(ns, &["route", "add", "default", "via", via4]);
            lab.ip(ns, &["-6", "route", "add", "default", "via", via6]);
        }
        // Only XDP forwards; path MTU discovery is what the client has
        // (no MTU probing that could get around a black hole).
        lab.sysctl(&edge, "net.ipv4.ip_forward", "0");
        lab.sysctl(&edge, "net.ipv6.conf.all.forwarding", "0");
        lab.sysctl(&client, "net.ipv4.tcp_mtu_probing", "0");
        lab.sysctl(&client, "net.ipv4.ip_no_pmtu_disc", "0");
        let xdp = vec![
            attach(&client, "eth0", prog_names::PASS),
            attach(&far, "eth0", prog_names::TEST_DECAP),
        ];
        Self {
            client,
            edge,
            far,
            _xdp: xdp,
            lab,
        }
    }
}

/// Loads the object and attaches its program `name` to `ifname` in `ns`.
fn attach(ns: &str, ifname: &str, name: &str) -> aya::Ebpf {
    in_netns(ns, || {
        let mut ebpf = loader::load().expect("load object");
        let prog: &mut Xdp = ebpf
            .program_mut(name)
            .unwrap_or_else(|| panic!("program {name} missing from the object"))
            .try_into()
            .unwrap();
        prog.load()
            .unwrap_or_else(|e| panic!("verifier rejected {name}: {e}"));
        prog.attach(ifname, XdpMode::Driver)
            .unwrap_or_else(|e| panic!("attach {name} to {ns}/{ifname}: {e}"));
        ebpf
    })
}

/// The byte at offset `i` of a transfer.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// Sends `BYTES` from the client to `server` over TCP within `limit`;
/// returns how many arrived in order and intact.
fn transfer(lab: &MtuLab, server: SocketAddr, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    let listener = in_netns(&lab.far, || TcpListener::bind(server))
        .unwrap_or_else(|e| panic!("listen on {server}: {e}"));
    listener.set_nonblocking(true).unwrap();
    // The handshake is small: it passes in any case.
    let client = in_netns(&lab.client, || {
        TcpStream::connect_timeout(&server, Duration::from_secs(5))
    })
    .unwrap_or_else(|e| panic!("connect to {server}: {e}"));
    let writer = std::thread::spawn(move || {
        let mut client = client;
        // Short timeouts, so the writer gives up at the deadline (a
        // timeout restarts with every write that moves some bytes).
        client
            .set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let data: Vec<u8> = (0..BYTES).map(pattern).collect();
        let mut sent = 0;
        while sent < BYTES && Instant::now() < deadline {
            match client.write(&data[sent..]) {
                Ok(n) => sent += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("write to the server: {e}"),
            }
        }
        if sent == BYTES {
            let _ = client.shutdown(Shutdown::Write);
        }
        // Kept open until the server is done: the caller drops it.
        client
    });
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept on {server}: {e}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut received = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < deadline {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                for (k, b) in buf[..n].iter().enumerate() {
                    assert_eq!(*b, pattern(received + k), "byte {} corrupted", received + k);
                }
                received += n;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read from the client: {e}"),
        }
    }
    drop(writer.join().expect("writer"));
    received
}

/// The client's route toward `dst` as `ip route get` shows it (a cached
/// path MTU appears as `mtu N`).
fn route(lab: &MtuLab, dst: &str) -> String {
    lab.lab.ip(&lab.client, &["route", "get", dst])
}

/// The packets edge counted for `reason`.
fn reason(edged: &Edged, name: &str) -> u64 {
    let stats = edged.ctl_ok(&["stats"]);
    stats["reasons"][name]["packets"]
        .as_u64()
        .unwrap_or_else(|| panic!("no reason {name} in {stats}"))
}

/// PoP `far`'s MTU in `edgectl pop list`.
fn far_mtu(edged: &Edged) -> u64 {
    let list = edged.ctl_ok(&["pop", "list"]);
    list.as_array()
        .expect("pop list")
        .iter()
        .find(|p| p["name"] == "far")
        .and_then(|p| p["mtu"].as_u64())
        .unwrap_or_else(|| panic!("no MTU for far in {list}"))
}

/// The config file, removed when dropped.
struct ConfigFile(PathBuf);

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn tcp_through_an_encapsulated_pop_converges_by_path_mtu_discovery() {
    let lab = MtuLab::build();
    let config = ConfigFile(std::env::temp_dir().join(format!("{}.toml", lab.edge)));
    let write = |mtu: &str| std::fs::write(&config.0, CONFIG.replace("{mtu}", mtu)).unwrap();
    // A PoP's `mtu` is never above its interface's (the device would drop
    // the larger packets itself, unseen).
    write("mtu = 9000");
    let pin = PathBuf::from(format!("/sys/fs/bpf/{}", lab.edge));
    let edged = Edged::start(&lab.edge, &config.0, &pin);
    assert_eq!(far_mtu(&edged), 1500, "held to the interface's MTU");

    // A path narrower than the interface: edge's end takes 3000 bytes, the
    // far end 1500. Without `mtu` edged checks against 3000; the far end
    // drops every full-size tunnel packet, edge counts them as forwarded.
    write("");
    lab.lab
        .ip(&lab.edge, &["link", "set", "bb0", "mtu", "3000"]);
    edged.ctl_ok(&["config", "reload"]);
    assert_eq!(far_mtu(&edged), 3000, "the interface's MTU");
    let forwarded = reason(&edged, "policy");
    for (server, port) in [(SERVER_V4, 7001), (SERVER_V6, 7002)] {
        let got = transfer(&lab, sock(server, port), Duration::from_secs(3));
        println!("{server}, link MTU unchecked: {got} of {BYTES} bytes in 3 s");
        assert!(got < BYTES, "{server}: the transfer cannot complete");
        assert!(
            !route(&lab, server).contains(" mtu "),
            "{server}: no path MTU learnt"
        );
    }
    assert_eq!(reason(&edged, "too_big"), 0);
    assert!(
        reason(&edged, "policy") > forwarded + 10,
        "the dropped segments count as forwarded"
    );

    // With the path's MTU in the config (1500): ICMP errors, the client
    // learns the path MTU, 1 MB arrives in each family.
    write("mtu = 1500");
    edged.ctl_ok(&["config", "reload"]);
    assert_eq!(far_mtu(&edged), 1500, "the config's MTU");
    for (server, port, mtu) in [(SERVER_V4, 7003, 1480), (SERVER_V6, 7004, 1460)] {
        let t = Instant::now();
        let got = transfer(&lab, sock(server, port), Duration::from_secs(30));
        println!(
            "{server}: {got} of {BYTES} bytes in {:.2} s",
            t.elapsed().as_secs_f64()
        );
        assert_eq!(got, BYTES, "{server}: the whole transfer arrives");
        let r = route(&lab, server);
        println!("{}", r.trim_end());
        assert!(
            r.contains(&format!(" mtu {mtu} ")) || r.trim_end().ends_with(&format!(" mtu {mtu}")),
            "{server}: the client's path MTU is {mtu}: {r}"
        );
    }
    let too_big = reason(&edged, "too_big");
    println!("ICMP errors sent: {too_big}");
    assert!(too_big > 0, "edge sent the ICMP errors");
    assert_eq!(reason(&edged, "too_big_limited"), 0);
    assert_eq!(reason(&edged, "too_big_no_icmp"), 0);
}
