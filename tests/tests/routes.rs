//! Route sync tests (tier 3): edged follows kernel routing tables, filled
//! by `ip route` and by a real BGP session between two BIRD 2 instances.

use std::{
    collections::BTreeSet,
    path::PathBuf,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use edge_tests::{netns::netns_command, topology::*};
use serde_json::{Value, json};

/// The lab config plus route sources: table 200 cold potato toward pop-a
/// (northwind's policy), table 201 hot potato with DSCP EF.
fn config_with_sources() -> String {
    format!(
        "{LAB_CONFIG}
[[route_sources]]
table = 200
registration = \"bgp-cold\"
policy = \"northwind-nearest\"

[[route_sources]]
table = 201
registration = \"bgp-hot\"
preference = \"internet\"
dscp = \"ef\"
"
    )
}

fn write_config(lab: &EdgeLab, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&path, text).unwrap();
    path
}

/// (prefix, registration, source) of every prefix edgectl lists that came
/// from a route.
fn synced(edged: &Edged) -> BTreeSet<(String, String, String)> {
    edged
        .ctl_ok(&["prefix", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["source"].as_str().unwrap().starts_with("route"))
        .map(|p| {
            (
                p["prefix"].as_str().unwrap().to_string(),
                p["registration"].as_str().unwrap().to_string(),
                p["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    t.elapsed()
}

fn entry(prefix: &str, registration: &str, table: u32) -> (String, String, String) {
    (
        prefix.to_string(),
        registration.to_string(),
        format!("route table {table}"),
    )
}

/// The networks of a kernel table, as `ip -j route show table N` lists them.
fn table(lab: &EdgeLab, family: &str, n: u32) -> BTreeSet<String> {
    let out = lab.lab.ip(
        &lab.edge,
        &[family, "-j", "route", "show", "table", &n.to_string()],
    );
    let v: Value = serde_json::from_str(&out).unwrap_or(json!([]));
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let dst = r["dst"].as_str().unwrap();
            if dst.contains('/') {
                dst.to_string()
            } else if dst.contains(':') {
                format!("{dst}/128")
            } else {
                format!("{dst}/32")
            }
        })
        .collect()
}

#[test]
fn routes_in_a_table_become_prefixes_and_follow_every_change() {
    let lab = EdgeLab::build("rt");
    let ip = |args: &[&str]| lab.lab.ip(&lab.edge, args);
    // Present before edged starts: loaded by the dump at start.
    ip(&[
        "route",
        "add",
        "blackhole",
        "203.0.113.0/28",
        "table",
        "200",
    ]);
    ip(&[
        "-6",
        "route",
        "add",
        "blackhole",
        "2001:db8:70::/48",
        "table",
        "200",
    ]);
    ip(&[
        "route",
        "add",
        "blackhole",
        "203.0.113.16/28",
        "table",
        "201",
    ]);
    // Other tables are not followed.
    ip(&[
        "route",
        "add",
        "blackhole",
        "203.0.113.32/28",
        "table",
        "202",
    ]);
    let config = write_config(&lab, &config_with_sources());
    let mut edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    assert_eq!(
        synced(&edged),
        BTreeSet::from([
            entry("203.0.113.0/28", "bgp-cold", 200),
            entry("2001:db8:70::/48", "bgp-cold", 200),
            entry("203.0.113.16/28", "bgp-hot", 201),
        ])
    );
    let v = edged.ctl_ok(&["prefix", "lookup", "203.0.113.5"]);
    assert_eq!(
        (&v["registration"], &v["preference"], &v["policy"]),
        (
            &json!("bgp-cold"),
            &json!("microsoft"),
            &json!("northwind-nearest")
        ),
        "{v}"
    );
    let v = edged.ctl_ok(&["prefix", "lookup", "203.0.113.20"]);
    assert_eq!(
        (&v["preference"], &v["dscp"]),
        (&json!("internet"), &json!(46)),
        "{v}"
    );

    // Traffic to the synced prefixes is forwarded by XDP as their
    // preference says: cold toward pop-a (tunnelled), hot to transit.
    let at_popa = Capture::open(&lab.pop_a, "eth0");
    let at_transit = Capture::open(&lab.transit, "eth0");
    let s = udp_socket(&lab.pop_b, sock(POPB_V4, 0));
    s.send_to(b"cold", sock("203.0.113.5", 6001)).unwrap();
    let f = at_popa
        .next_matching(Duration::from_secs(3), |f| {
            f.len() > 14 + 20 + 20 + 8
                && f[14 + 9] == 4
                && f[14 + 20 + 20 + 2..14 + 20 + 20 + 4] == 6001u16.to_be_bytes()
        })
        .expect("cold-potato route traffic tunnelled to pop-a");
    assert_eq!(&f[14 + 16..14 + 20], &[203, 0, 113, 1], "tunnel endpoint");
    s.send_to(b"hot", sock("203.0.113.20", 6002)).unwrap();
    let f = at_transit
        .next_matching(Duration::from_secs(3), |f| {
            f.len() > 14 + 20 + 8 && f[14 + 20 + 2..14 + 20 + 4] == 6002u16.to_be_bytes()
        })
        .expect("hot-potato route traffic to transit");
    assert_eq!(f[15] >> 2, 46, "DSCP EF");

    // Add, move between tables (a community change does exactly that),
    // change the metric, delete: the maps follow.
    ip(&[
        "route",
        "add",
        "blackhole",
        "198.51.100.128/25",
        "table",
        "200",
    ]);
    wait_until("an added route", Duration::from_secs(5), || {
        synced(&edged).contains(&entry("198.51.100.128/25", "bgp-cold", 200))
    });
    ip(&[
        "route",
        "del",
        "blackhole",
        "203.0.113.0/28",
        "table",
        "200",
    ]);
    ip(&[
        "route",
        "add",
        "blackhole",
        "203.0.113.0/28",
        "table",
        "201",
    ]);
    wait_until("a route moved to table 201", Duration::from_secs(5), || {
        synced(&edged).contains(&entry("203.0.113.0/28", "bgp-hot", 201))
    });
    assert_eq!(
        edged.ctl_ok(&["prefix", "lookup", "203.0.113.5"])["preference"],
        "internet"
    );
    ip(&[
        "-6",
        "route",
        "del",
        "blackhole",
        "2001:db8:70::/48",
        "table",
        "200",
    ]);
    wait_until("a deleted route", Duration::from_secs(5), || {
        !synced(&edged).iter().any(|e| e.0 == "2001:db8:70::/48")
    });
    let o = edged.ctl(&["prefix", "lookup", "2001:db8:70::1"]);
    assert_eq!(o.code, Some(3), "{o:?}");

    // A route for a network the config registers: the config's entry wins.
    ip(&["route", "add", "blackhole", "192.0.2.0/25", "table", "200"]);
    std::thread::sleep(Duration::from_millis(500));
    let v = edged.ctl_ok(&["prefix", "show", "192.0.2.0/25"]);
    assert_eq!(
        (&v["registration"], &v["source"]),
        (&json!("contoso"), &json!("config"))
    );
    // A synced prefix cannot be deleted by hand: withdraw the route.
    let o = edged.ctl(&["prefix", "del", "198.51.100.128/25"]);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(
        o.json["error"]
            .as_str()
            .unwrap()
            .contains("route table 200"),
        "{o:?}"
    );
    let status = edged.ctl_ok(&["status"]);
    assert_eq!(status["routes"]["resyncs"], 1, "no overrun here: {status}");

    // Churn while edged is killed and restarted: the maps end equal to the
    // tables.
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (ns, stop) = (lab.edge.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) && i < 2000 {
                let net = format!("2001:db8:71:{:x}::/64", i % 97);
                let verb = if (i / 97) % 2 == 0 { "add" } else { "del" };
                let _ = Command::new("ip")
                    .args([
                        "-n",
                        &ns,
                        "-6",
                        "route",
                        verb,
                        "blackhole",
                        &net,
                        "table",
                        "200",
                    ])
                    .output();
                i += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    edged.kill();
    std::thread::sleep(Duration::from_millis(300));
    edged.restart();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    let want = |lab: &EdgeLab| -> BTreeSet<String> {
        let mut t = table(lab, "-4", 200);
        t.extend(table(lab, "-6", 200));
        t.extend(table(lab, "-4", 201));
        t.remove("192.0.2.0/25"); // the config's
        t
    };
    let settle = wait_until(
        "the maps to equal the tables",
        Duration::from_secs(10),
        || {
            let have: BTreeSet<String> = synced(&edged).into_iter().map(|e| e.0).collect();
            have == want(&lab)
        },
    );
    println!("after kill -9 during churn, maps equal the tables {settle:?} after the churn ended");
    // And the kernel's map agrees for every one of them.
    for net in want(&lab) {
        let addr = net.split('/').next().unwrap();
        let o = edged.ctl(&["prefix", "lookup", addr]);
        assert_eq!(o.code, Some(0), "{net} in the kernel's map: {o:?}");
    }
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

#[test]
fn a_hundred_thousand_routes_sync_within_a_measured_time() {
    let lab = EdgeLab::build("rt100k");
    let config = write_config(&lab, &config_with_sources());
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    const N: u32 = 100_000;
    let batch = std::env::temp_dir().join(format!("{}.batch", lab.edge));
    let mut text = String::with_capacity(N as usize * 48);
    for i in 0..N {
        // 2001:db8::/32 split into /56s.
        text += &format!(
            "route add blackhole 2001:db8:{:x}:{:x}00::/56 table 200\n",
            0x100 + i / 256,
            i % 256
        );
    }
    std::fs::write(&batch, text).unwrap();
    let t = Instant::now();
    let out = netns_command(&lab.edge, std::path::Path::new("ip"))
        .arg("-batch")
        .arg(&batch)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = t.elapsed();
    let mut last = 0;
    let synced = wait_until(
        "100,000 routes in the maps",
        Duration::from_secs(60),
        || {
            let s = edged.ctl_ok(&["status"]);
            let used = s["maps"]["prefixes_v6"]["used"].as_u64().unwrap();
            if used / 10_000 != last / 10_000 {
                println!("  {used} IPv6 prefixes in the maps after {:?}", t.elapsed());
            }
            last = used;
            used == u64::from(N) + 3
        },
    );
    let status = edged.ctl_ok(&["status"]);
    println!(
        "{N} routes: ip -batch took {installed:?}; all in the maps {:?} after the batch started ({:?} after it ended); full resyncs: {}",
        t.elapsed(),
        synced,
        status["routes"]["resyncs"]
    );
    // Spot-check the kernel's map: first, last and a middle one.
    for i in [0, N / 2, N - 1] {
        let addr = format!("2001:db8:{:x}:{:x}00::1", 0x100 + i / 256, i % 256);
        let v = edged.ctl_ok(&["prefix", "lookup", &addr]);
        assert_eq!(v["registration"], "bgp-cold", "{addr}: {v}");
    }
    std::fs::remove_file(batch).unwrap();
    drop(edged);
    std::fs::remove_file(config).unwrap();
}
