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
                let verb = if (i / 97).is_multiple_of(2) {
                    "add"
                } else {
                    "del"
                };
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
    // EDGE_ROUTES_N: another count, to investigate.
    let n: u32 = std::env::var("EDGE_ROUTES_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let batch = lab.blackhole_batch(n);
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
            used == u64::from(n) + 3
        },
    );
    let status = edged.ctl_ok(&["status"]);
    println!(
        "{n} routes: ip -batch took {installed:?}; all in the maps {:?} after the batch started ({:?} after it ended); full resyncs: {}",
        t.elapsed(),
        synced,
        status["routes"]["resyncs"]
    );
    // Spot-check the kernel's map: first, last and a middle one.
    for i in [0, n / 2, n - 1] {
        let addr = format!("2001:db8:{:x}:{:x}00::1", 0x100 + i / 256, i % 256);
        let v = edged.ctl_ok(&["prefix", "lookup", &addr]);
        assert_eq!(v["registration"], "bgp-cold", "{addr}: {v}");
    }
    // And all of them withdrawn at once (`ip route flush`).
    let t = Instant::now();
    lab.lab
        .ip(&lab.edge, &["-6", "route", "flush", "table", "200"]);
    let flushed = wait_until(
        "100,000 routes flushed from the maps",
        Duration::from_secs(60),
        || edged.ctl_ok(&["status"])["maps"]["prefixes_v6"]["used"] == 3,
    );
    println!(
        "flush: the maps follow {flushed:?} after `ip route flush` ({:?} in all)",
        t.elapsed()
    );
    std::fs::remove_file(batch).unwrap();
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

/// The announcer: BGP AS 65002, static routes tagged with communities by
/// `communities` (network, community) lines.
fn announcer_config(routes: &[(&str, (u32, u32))]) -> String {
    let mut statics = String::new();
    let mut tags = String::new();
    for (net, (a, b)) in routes {
        statics += &format!("  route {net} blackhole;\n");
        tags += &format!("  if net = {net} then bgp_community.add(({a},{b}));\n");
    }
    format!(
        "log \"LOGFILE\" all;
router id 198.51.100.250;
protocol device {{ }}
protocol static announced {{
  ipv4;
{statics}}}
filter add_communities {{
{tags}  accept;
}}
protocol bgp edge {{
  local 198.51.100.250 as 65002;
  neighbor 198.51.100.249 as 65001;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  ipv4 {{ import none; export filter add_communities; next hop self; }};
}}
"
    )
}

/// The edge's BIRD: BGP AS 65001; communities pick the kernel table:
/// (8075,8001) cold potato → table 200, (8075,8002) hot potato → table 201.
/// The same example is in docs/routes.md.
const EDGE_BIRD: &str = "log \"LOGFILE\" all;
router id 198.51.100.249;
ipv4 table cold4;
ipv4 table hot4;
protocol device { }
protocol bgp upstream {
  local 198.51.100.249 as 65001;
  neighbor 198.51.100.250 as 65002;
  connect delay time 1; connect retry time 1; error wait time 1, 2;
  ipv4 { import all; export none; };
}
protocol pipe cold_potato {
  table master4; peer table cold4;
  import none;
  export where (8075, 8001) ~ bgp_community;
}
protocol pipe hot_potato {
  table master4; peer table hot4;
  import none;
  export where (8075, 8002) ~ bgp_community;
}
protocol kernel table200 {
  ipv4 { table cold4; import none; export all; };
  kernel table 200;
}
protocol kernel table201 {
  ipv4 { table hot4; import none; export all; };
  kernel table 201;
}
";

#[test]
fn a_real_bgp_session_drives_the_maps_through_the_kernel_tables() {
    use edge_tests::bird::Bird;
    let mut lab = EdgeLab::build("bgp");
    let peer = lab.lab.add_ns("bgppeer");
    lab.lab.veth(
        (&peer, "eth0", "02:00:00:00:b6:01"),
        (&lab.edge, "bgp0", "02:00:00:00:b6:fe"),
    );
    lab.lab.addr(&peer, "eth0", "198.51.100.250/30");
    lab.lab.addr(&lab.edge, "bgp0", "198.51.100.249/30");
    const COLD: (u32, u32) = (8075, 8001);
    const HOT: (u32, u32) = (8075, 8002);
    let announcer = Bird::start(
        &peer,
        &format!("{peer}-bird"),
        &announcer_config(&[("203.0.113.0/28", COLD), ("203.0.113.16/28", HOT)]),
    );
    let edge_bird = Bird::start(&lab.edge, &format!("{}-bird", lab.edge), EDGE_BIRD);
    let config = write_config(&lab, &config_with_sources());
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let up = edge_bird.wait_established("upstream", Duration::from_secs(30));
    println!("BGP session established after {up:?}");

    let expect = |want: &[(&str, &str, u32)], what: &str| {
        let want: BTreeSet<_> = want.iter().map(|(p, r, t)| entry(p, r, *t)).collect();
        let took = wait_until(what, Duration::from_secs(15), || synced(&edged) == want);
        println!("{what}: maps follow after {took:?}");
    };
    expect(
        &[
            ("203.0.113.0/28", "bgp-cold", 200),
            ("203.0.113.16/28", "bgp-hot", 201),
        ],
        "announcements",
    );

    // Traffic to the announced prefixes goes as their community says.
    let at_popa = Capture::open(&lab.pop_a, "eth0");
    let at_transit = Capture::open(&lab.transit, "eth0");
    let s = udp_socket(&lab.pop_b, sock(POPB_V4, 0));
    s.send_to(b"cold", sock("203.0.113.5", 6011)).unwrap();
    at_popa
        .next_matching(Duration::from_secs(3), |f| {
            f.len() > 62 && f[14 + 9] == 4 && f[56..58] == 6011u16.to_be_bytes()
        })
        .expect("(8075,8001): cold potato, tunnelled to pop-a");
    s.send_to(b"hot", sock("203.0.113.20", 6012)).unwrap();
    let f = at_transit
        .next_matching(Duration::from_secs(3), |f| {
            f.len() > 42 && f[36..38] == 6012u16.to_be_bytes()
        })
        .expect("(8075,8002): hot potato, to transit");
    assert_eq!(f[15] >> 2, 46, "DSCP EF of the hot-potato source");

    // A new announcement; then the communities swap; then a withdrawal.
    announcer.reconfigure(&announcer_config(&[
        ("203.0.113.0/28", COLD),
        ("203.0.113.16/28", HOT),
        ("198.51.100.128/25", COLD),
    ]));
    expect(
        &[
            ("203.0.113.0/28", "bgp-cold", 200),
            ("203.0.113.16/28", "bgp-hot", 201),
            ("198.51.100.128/25", "bgp-cold", 200),
        ],
        "a new announcement",
    );
    announcer.reconfigure(&announcer_config(&[
        ("203.0.113.0/28", HOT),
        ("203.0.113.16/28", COLD),
        ("198.51.100.128/25", COLD),
    ]));
    expect(
        &[
            ("203.0.113.0/28", "bgp-hot", 201),
            ("203.0.113.16/28", "bgp-cold", 200),
            ("198.51.100.128/25", "bgp-cold", 200),
        ],
        "community changes",
    );
    assert_eq!(
        edged.ctl_ok(&["prefix", "lookup", "203.0.113.5"])["preference"],
        "internet"
    );
    announcer.reconfigure(&announcer_config(&[
        ("203.0.113.0/28", HOT),
        ("203.0.113.16/28", COLD),
    ]));
    expect(
        &[
            ("203.0.113.0/28", "bgp-hot", 201),
            ("203.0.113.16/28", "bgp-cold", 200),
        ],
        "a withdrawal",
    );

    // A session reset: everything is withdrawn and announced again; the
    // maps end equal to the tables.
    // The protocol line carries the time of the last state change: a new
    // one after the reset proves the session went down and came back.
    let state = || {
        edge_bird
            .cmd(&["show", "protocols", "upstream"])
            .unwrap()
            .lines()
            .find(|l| l.starts_with("upstream"))
            .unwrap_or_default()
            .to_string()
    };
    let before = state();
    std::thread::sleep(Duration::from_millis(1100)); // the time has 1 s resolution at least
    edge_bird.cmd(&["restart", "upstream"]).unwrap();
    wait_until(
        "the session to be reset and established again",
        Duration::from_secs(30),
        || {
            let now = state();
            now != before && now.contains("Established")
        },
    );
    expect(
        &[
            ("203.0.113.0/28", "bgp-hot", 201),
            ("203.0.113.16/28", "bgp-cold", 200),
        ],
        "a session reset",
    );
    let mut tables = table(&lab, "-4", 200);
    tables.extend(table(&lab, "-4", 201));
    let maps: BTreeSet<String> = synced(&edged).into_iter().map(|e| e.0).collect();
    assert_eq!(maps, tables);
    drop(edged);
    drop(edge_bird);
    drop(announcer);
    std::fs::remove_file(config).unwrap();
}
