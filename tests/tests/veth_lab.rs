//! A veth lab as a user builds it (issue 14, item 4): edged in native mode
//! on veths whose far ends run no XDP program and have GRO off. The kernel
//! drops every frame XDP redirects into such a veth, after the program
//! counted it `redirect`; edged must say so at start, in `edgectl status`
//! and in a metric, and with `--veth-peer-pass` make the lab work by
//! attaching XDP_PASS to those far ends, and detach it again.
//!
//! ```text
//!  cust:eth0 ── edge:peer0 (peering)    edge:bb0 (backbone) ── pop:eth0   198.51.100.6
//!  (XDP_PASS attached by the test)      edge:bb1 (backbone) ── pop2:eth0  198.51.100.2
//! ```
//!
//! contoso 192.0.2.0/25 (microsoft) leaves for the backbone exit `core`
//! (bb0); bb1 becomes a port (PoP `core2`) only on a reload.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use edge_tests::{
    netns::Lab,
    topology::{
        CUST_MAC, EDGE_BBA_MAC, EDGE_BBB_MAC, EDGE_PEER0_MAC, Edged, POPA_MAC, POPB_MAC, Stream,
        attach_pass, http_get, sample, send_streams, sock, spawn_sequence_receiver, udp_socket,
        xdp_prog_id,
    },
};
use serde_json::Value;

struct VethLab {
    cust: String,
    edge: String,
    pop: String,
    pop2: String,
    /// XDP_PASS on the customer's end: only the backbone side is a user's
    /// lab with nothing on the far ends.
    _pass: aya::Ebpf,
    /// Dropped last: deletes the namespaces.
    lab: Lab,
}

impl VethLab {
    fn build(tag: &str) -> Self {
        let mut lab = Lab::new(tag);
        let cust = lab.add_ns("cust");
        let edge = lab.add_ns("edge");
        let pop = lab.add_ns("pop");
        let pop2 = lab.add_ns("pop2");
        lab.veth((&cust, "eth0", CUST_MAC), (&edge, "peer0", EDGE_PEER0_MAC));
        lab.veth((&pop, "eth0", POPB_MAC), (&edge, "bb0", EDGE_BBB_MAC));
        lab.veth((&pop2, "eth0", POPA_MAC), (&edge, "bb1", EDGE_BBA_MAC));
        for ns in [&cust, &pop, &pop2] {
            // Senders compute their checksums (see EdgeLab::build); GRO
            // off, as a veth starts: the far ends of the user's lab.
            lab.exec(ns, "ethtool", &["--offload", "eth0", "tx", "off"]);
            lab.exec(ns, "ethtool", &["-K", "eth0", "gro", "off"]);
        }
        for (ns, dev, cidr) in [
            (&cust, "eth0", "192.0.2.1/25"),
            (&edge, "peer0", "192.0.2.126/25"),
            (&edge, "bb0", "198.51.100.5/30"),
            (&pop, "eth0", "198.51.100.6/30"),
            (&edge, "bb1", "198.51.100.1/30"),
            (&pop2, "eth0", "198.51.100.2/30"),
        ] {
            lab.addr(ns, dev, cidr);
        }
        lab.ip(&cust, &["route", "add", "default", "via", "192.0.2.126"]);
        lab.ip(&pop, &["route", "add", "default", "via", "198.51.100.5"]);
        lab.ip(&pop2, &["route", "add", "default", "via", "198.51.100.1"]);
        lab.sysctl(&edge, "net.ipv4.ip_forward", "0");
        let pass = attach_pass(&cust, "eth0");
        Self {
            cust,
            edge,
            pop,
            pop2,
            _pass: pass,
            lab,
        }
    }

    fn pin_path(&self) -> PathBuf {
        PathBuf::from(format!("/sys/fs/bpf/{}", self.edge))
    }

    /// The config, with bb1 a port and the PoP `core2` behind it when `bb1`.
    fn config(&self, bb1: bool) -> PathBuf {
        let mut text = format!(
            r#"
[daemon]
xdp_mode = "native"

[forwarding]
backbone_exit = "core"

[[ports]]
interface = "peer0"
role = "peering"

[[ports]]
interface = "bb0"
role = "backbone"

[[pops]]
name = "contoso-direct"
interface = "peer0"
mac = "{CUST_MAC}"

[[pops]]
name = "core"
interface = "bb0"
mac = "{POPB_MAC}"

[[prefixes]]
prefix = "192.0.2.0/25"
registration = "contoso"
preference = "microsoft"
pop = "contoso-direct"
"#
        );
        if bb1 {
            text += &format!(
                "\n[[ports]]\ninterface = \"bb1\"\nrole = \"backbone\"\n\n[[pops]]\nname = \"core2\"\ninterface = \"bb1\"\nmac = \"{POPA_MAC}\"\n"
            );
        }
        let path = std::env::temp_dir().join(format!("{}.toml", self.edge));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Sends `n` datagrams from contoso (192.0.2.1) to the PoP behind bb0
    /// (198.51.100.6:5000) at 500/s; how many arrived.
    fn send(&self, n: u32) -> u32 {
        let done = Arc::new(AtomicBool::new(false));
        let receiver = spawn_sequence_receiver(
            udp_socket(&self.pop, sock("198.51.100.6", 5000)),
            done.clone(),
        );
        let stream = Stream {
            ns: self.cust.clone(),
            from: sock("192.0.2.1", 0),
            to: sock("198.51.100.6", 5000),
        };
        let sent = send_streams(&[stream], n, 500, &|| false);
        assert_eq!(sent, [n], "every datagram left the customer");
        std::thread::sleep(Duration::from_millis(300));
        done.store(true, Ordering::Relaxed);
        receiver.join().unwrap().len() as u32
    }

    /// `edge_veth_peer_receives` of `port`, from the metrics endpoint.
    fn metric(&self, port: &str) -> Option<f64> {
        let text = http_get(&self.edge, "127.0.0.1:9477".parse().unwrap(), "/metrics");
        sample(
            &text,
            &format!("edge_veth_peer_receives{{port=\"{port}\",peer=\"eth0\"}}"),
        )
    }
}

/// `status.veth_peers` entry of `port`.
fn peer_of(status: &Value, port: &str) -> Option<Value> {
    status["veth_peers"]
        .as_array()
        .unwrap_or_else(|| panic!("status has no veth_peers: {status}"))
        .iter()
        .find(|p| p["port"] == port)
        .cloned()
}

fn redirected(edged: &Edged) -> u64 {
    edged.ctl_ok(&["stats"])["actions"]["redirect"]["packets"]
        .as_u64()
        .unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_veth_whose_peer_drops_redirected_frames_is_reported() {
    let lab = VethLab::build("vlrep");
    let config = lab.config(false);
    let (edged, log) = Edged::start_logged(&lab.edge, &config, &lab.pin_path(), &[]);

    // At start: a warning naming the port, the peer and the fix.
    let line = log
        .wait_for("veth bb0:", Duration::from_secs(5))
        .expect("a warning about bb0 at start");
    for part in [
        " WARN ",
        "the peer eth0 (netns ",
        "no XDP program in native mode and GRO off",
        "frames XDP redirects into bb0 are dropped",
        &format!("ip netns exec {} ethtool -K eth0 gro on", lab.pop),
        "--veth-peer-pass",
    ] {
        assert!(line.contains(part), "{part:?} missing in: {line}");
    }
    assert!(
        log.matching("veth peer0:")
            .iter()
            .all(|l| l.contains(" INFO ")),
        "the customer's end runs XDP: no warning for peer0: {log:?}"
    );

    // In status...
    let status = edged.ctl_ok(&["status"]);
    let bb0 = peer_of(&status, "bb0").expect("bb0 listed");
    assert_eq!(bb0["receives"], false, "{bb0}");
    assert_eq!(bb0["xdp"], "none", "{bb0}");
    assert_eq!(bb0["gro"], false, "{bb0}");
    assert_eq!(bb0["up"], true, "{bb0}");
    assert_eq!(bb0["peer"], "eth0", "{bb0}");
    assert_eq!(bb0["netns"], lab.pop.as_str(), "{bb0}");
    assert_eq!(bb0["edged_pass"], false, "{bb0}");
    let peer0 = peer_of(&status, "peer0").expect("peer0 listed");
    assert_eq!(peer0["receives"], true, "{peer0}");
    assert_eq!(peer0["xdp"], "native", "{peer0}");
    let warnings: Vec<&str> = status["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("veth bb0: the peer eth0"),
        "{warnings:?}"
    );
    let text = std::process::Command::new(edge_tests::topology::workspace_bin("edgectl"))
        .arg("--socket")
        .arg(&edged.socket)
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("WARNINGS:\n  ! veth bb0: the peer eth0") && text.contains("NO: dropped"),
        "{text}"
    );
    // ...and in the metrics.
    assert_eq!(lab.metric("bb0"), Some(0.0));
    assert_eq!(lab.metric("peer0"), Some(1.0));

    // What the warning is about: counted as redirected, never arrives.
    let before = redirected(&edged);
    assert_eq!(lab.send(200), 0, "the peer drops every redirected frame");
    assert!(redirected(&edged) - before >= 200, "counted as redirect");

    // GRO on at the far end is enough; a reload checks again.
    lab.lab
        .exec(&lab.pop, "ethtool", &["-K", "eth0", "gro", "on"]);
    edged.ctl_ok(&["config", "reload"]);
    let bb0 = peer_of(&edged.ctl_ok(&["status"]), "bb0").unwrap();
    assert_eq!(bb0["receives"], true, "{bb0}");
    assert_eq!(bb0["gro"], true, "{bb0}");
    assert_eq!(lab.metric("bb0"), Some(1.0));
    assert!(
        log.wait_for("GRO is on on the peer eth0", Duration::from_secs(5))
            .is_some(),
        "the change is logged: {log:?}"
    );
    assert_eq!(lab.send(200), 200, "with GRO on every frame arrives");
    assert!(
        edged.ctl_ok(&["status"])["warnings"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Off again: the warning is back (and logged again).
    lab.lab
        .exec(&lab.pop, "ethtool", &["-K", "eth0", "gro", "off"]);
    edged.ctl_ok(&["config", "reload"]);
    assert_eq!(
        peer_of(&edged.ctl_ok(&["status"]), "bb0").unwrap()["receives"],
        false
    );
    assert_eq!(log.matching("veth bb0: the peer eth0").len(), 2, "{log:?}");
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

#[test]
fn with_veth_peer_pass_edged_attaches_xdp_pass_to_the_peers_and_removes_it() {
    let lab = VethLab::build("vlpass");
    let config = lab.config(false);
    let pass = ["--veth-peer-pass"];
    let (mut edged, log) = Edged::start_logged(&lab.edge, &config, &lab.pin_path(), &pass);
    let line = log
        .wait_for("bb0: attached XDP_PASS", Duration::from_secs(5))
        .expect("the attachment is logged");
    assert!(
        line.contains(&format!("its peer eth0 (netns {})", lab.pop)),
        "{line}"
    );
    let prog = xdp_prog_id(&lab.lab, &lab.pop, "eth0").expect("XDP on the far end of bb0");
    let status = edged.ctl_ok(&["status"]);
    let bb0 = peer_of(&status, "bb0").unwrap();
    assert_eq!(bb0["receives"], true, "{bb0}");
    assert_eq!(bb0["xdp"], "native", "{bb0}");
    assert_eq!(bb0["edged_pass"], true, "{bb0}");
    // The customer's end had its own program: left alone.
    let peer0 = peer_of(&status, "peer0").unwrap();
    assert_eq!(peer0["edged_pass"], false, "{peer0}");
    assert!(
        status["warnings"].as_array().unwrap().is_empty(),
        "{status}"
    );
    assert_eq!(lab.metric("bb0"), Some(1.0));
    assert_eq!(lab.send(200), 200, "every frame arrives");

    // A reload that adds a port checks (and fixes) its peer too...
    assert_eq!(xdp_prog_id(&lab.lab, &lab.pop2, "eth0"), None);
    lab.config(true); // the same file, with bb1
    edged.ctl_ok(&["config", "reload"]);
    let bb1 = peer_of(&edged.ctl_ok(&["status"]), "bb1").expect("bb1 listed after the reload");
    assert_eq!(
        (&bb1["receives"], &bb1["edged_pass"]),
        (&true.into(), &true.into())
    );
    assert!(xdp_prog_id(&lab.lab, &lab.pop2, "eth0").is_some());
    // ...and one that removes it detaches what edged attached.
    lab.config(false);
    edged.ctl_ok(&["config", "reload"]);
    assert_eq!(peer_of(&edged.ctl_ok(&["status"]), "bb1"), None);
    assert_eq!(
        xdp_prog_id(&lab.lab, &lab.pop2, "eth0"),
        None,
        "detached from the peer of a port that left"
    );

    // A restart keeps it (pinned with the ports' links).
    edged.stop();
    assert_eq!(xdp_prog_id(&lab.lab, &lab.pop, "eth0"), Some(prog));
    edged.restart_logged(&pass);
    assert_eq!(xdp_prog_id(&lab.lab, &lab.pop, "eth0"), Some(prog));
    assert_eq!(
        peer_of(&edged.ctl_ok(&["status"]), "bb0").unwrap()["edged_pass"],
        true
    );

    // A start without the flag removes it, and warns.
    edged.stop();
    let log = edged.restart_logged(&[]);
    assert_eq!(xdp_prog_id(&lab.lab, &lab.pop, "eth0"), None);
    assert!(
        log.wait_for("veth bb0: the peer eth0", Duration::from_secs(5))
            .is_some_and(|l| l.contains(" WARN ")),
        "{log:?}"
    );
    assert_eq!(
        peer_of(&edged.ctl_ok(&["status"]), "bb0").unwrap()["receives"],
        false
    );

    // Teardown removes it too.
    edged.stop();
    edged.restart_logged(&pass);
    assert!(xdp_prog_id(&lab.lab, &lab.pop, "eth0").is_some());
    edged.teardown();
    wait_until("the far end's XDP_PASS to go", || {
        xdp_prog_id(&lab.lab, &lab.pop, "eth0").is_none()
    });
    drop(edged);
    std::fs::remove_file(config).unwrap();
}
