//! Daemon tests (tier 3): edged and edgectl end to end in the lab topology:
//! live changes, restarts, reloads, the control socket, and traffic that
//! never stops while any of that happens.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::{
        fs::{MetadataExt as _, PermissionsExt as _},
        net::UnixStream,
    },
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use edge_tests::topology::*;
use serde_json::{Value, json};

fn write_config(lab: &EdgeLab, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&path, text).unwrap();
    path
}

/// The prefixes `edgectl prefix list` shows: (prefix, registration, source).
fn prefixes(edged: &Edged) -> Vec<(String, String, String)> {
    let list = edged.ctl_ok(&["prefix", "list"]);
    let mut v: Vec<_> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|p| {
            (
                p["prefix"].as_str().unwrap().to_string(),
                p["registration"].as_str().unwrap().to_string(),
                p["source"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn has_prefix(edged: &Edged, prefix: &str) -> bool {
    prefixes(edged).iter().any(|p| p.0 == prefix)
}

/// The PoPs of the kernel table toward a customer address: [(pop, slots)].
fn toward(edged: &Edged, address: &str) -> Vec<(String, u64)> {
    let v = edged.ctl_ok(&["prefix", "lookup", address]);
    v["toward_customer"]
        .as_array()
        .unwrap_or_else(|| panic!("lookup {address}: {v}"))
        .iter()
        .map(|r| {
            (
                r["pop"].as_str().unwrap().to_string(),
                r["slots"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn error_of(o: &CtlOutput) -> String {
    o.json["error"].as_str().unwrap_or_default().to_string()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const TAILSPIN: &str = "\n[[prefixes]]\nprefix = \"198.51.100.128/25\"\nregistration = \"tailspin\"\npop = \"pop-b\"\n";
const WOODGROVE: &str = "\n[[prefixes]]\nprefix = \"2001:db8:77::/48\"\nregistration = \"woodgrove\"\npolicy = \"northwind-nearest\"\n";

#[test]
fn no_packet_is_lost_across_restart_kill_reload_and_a_rejected_config() {
    let lab = EdgeLab::build("zl");
    let config = write_config(&lab, LAB_CONFIG);
    let mut edged = Edged::start(&lab.edge, &config, &lab.pin_path());

    let streams = lab_streams(&lab);
    let done = Arc::new(AtomicBool::new(false));
    let receivers: Vec<_> = streams
        .iter()
        .map(|l| spawn_sequence_receiver(udp_socket(&l.at, l.stream.to), done.clone()))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let list: Vec<Stream> = streams.iter().map(|l| l.stream.clone()).collect();
        let stop = stop.clone();
        // 1000 datagrams/s per stream until the faults are over (at most 60 s).
        std::thread::spawn(move || {
            send_streams(&list, 60_000, 1000, &|| stop.load(Ordering::Relaxed))
        })
    };
    let settle = || std::thread::sleep(Duration::from_millis(400));
    settle();

    // (a) A restart: SIGTERM, nothing running for a while, start again.
    let prog_before = xdp_prog_id(&lab.lab, &lab.edge, "peer0").expect("XDP attached");
    let t = Instant::now();
    edged.stop();
    settle();
    edged.restart();
    let restart = t.elapsed();
    let prog_after = xdp_prog_id(&lab.lab, &lab.edge, "peer0").expect("XDP attached");
    assert_ne!(
        prog_before, prog_after,
        "the restarted edged replaces the program on the pinned link"
    );
    settle();

    // (b) kill -9, then start again.
    edged.kill();
    settle();
    edged.restart();
    settle();

    // (c) Reloads that change unrelated prefixes: edgectl, then SIGHUP.
    std::fs::write(&config, format!("{LAB_CONFIG}{TAILSPIN}")).unwrap();
    let r = edged.ctl_ok(&["config", "reload"]);
    assert_eq!(
        r["changes"]["written"], 2,
        "its policy table and the prefix: {r}"
    );
    assert!(has_prefix(&edged, "198.51.100.128/25"));
    settle();
    std::fs::write(&config, format!("{LAB_CONFIG}{WOODGROVE}")).unwrap();
    edged.hup();
    wait_until("the SIGHUP reload", || {
        has_prefix(&edged, "2001:db8:77::/48") && !has_prefix(&edged, "198.51.100.128/25")
    });
    settle();

    // (d) Bad configs, by edgectl and by SIGHUP: rejected whole, nothing changes.
    let before = prefixes(&edged);
    let generation = edged.ctl_ok(&["status"])["generation"].clone();
    for bad in [
        format!("{LAB_CONFIG}{TAILSPIN}\n[forwarding\n"),
        format!("{LAB_CONFIG}{TAILSPIN}").replace("pop = \"pop-b\"", "pop = \"pop-z\""),
    ] {
        std::fs::write(&config, bad).unwrap();
        let o = edged.ctl(&["config", "reload"]);
        assert_eq!(o.code, Some(2), "{o:?}");
        assert_eq!(o.json["kind"], "invalid", "{o:?}");
        edged.hup();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            prefixes(&edged),
            before,
            "a rejected config changed nothing"
        );
        assert_eq!(edged.ctl_ok(&["status"])["generation"], generation);
    }
    settle();
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    done.store(true, Ordering::Relaxed);
    let seen: Vec<Vec<u32>> = receivers.into_iter().map(|h| h.join().unwrap()).collect();

    println!("restart (stop to ready) took {restart:?}");
    println!(
        "{:<34} {:<24} {:>6} {:>8} {:>5} {:>5} {:>9}",
        "stream", "to", "sent", "received", "lost", "dup", "reordered"
    );
    let mut tallies = Vec::new();
    for ((l, &n), seen) in streams.iter().zip(&sent).zip(&seen) {
        let t = Tally::of(n, seen);
        println!(
            "{:<34} {:<24} {:>6} {:>8} {:>5} {:>5} {:>9}",
            l.what,
            l.stream.to.to_string(),
            t.sent,
            t.received,
            t.lost,
            t.duplicated,
            t.reordered
        );
        tallies.push(t);
    }
    for t in &tallies {
        assert!(t.sent > 2000, "the stream ran through every fault: {t:?}");
        assert_eq!((t.lost, t.duplicated), (0, 0), "{t:?}");
    }
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

#[test]
fn prefix_commands_live_changes_and_limits() {
    let lab = EdgeLab::build("cliprefix");
    // Room for five IPv4 prefixes: the three of the lab and two more.
    let config = write_config(
        &lab,
        &LAB_CONFIG.replace("[forwarding]", "[limits]\nprefixes_v4 = 5\n\n[forwarding]"),
    );
    let mut edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let status = edged.ctl_ok(&["status"]);
    assert_eq!(status["generation"], 1, "{status}");
    assert_eq!(
        status["maps"]["prefixes_v4"],
        json!({"used": 3, "limit": 5}),
        "{status}"
    );
    assert_eq!(prefixes(&edged).len(), 6);
    assert!(prefixes(&edged).iter().all(|p| p.2 == "config"));

    // Add live; it is in the kernel's maps at once.
    let o = edged.ctl_ok(&[
        "prefix",
        "add",
        "198.51.100.128/25",
        "--registration",
        "tailspin",
        "--pop",
        "pop-b",
        "--dscp",
        "ef",
    ]);
    assert_eq!(
        o["changes"]["written"], 2,
        "a policy table and a prefix: {o}"
    );
    let v = edged.ctl_ok(&["prefix", "lookup", "198.51.100.200"]);
    assert_eq!(
        (&v["registration"], &v["source"], &v["dscp"]),
        (&json!("tailspin"), &json!("live"), &json!(46)),
        "{v}"
    );
    assert_eq!(toward(&edged, "198.51.100.200"), [("pop-b".into(), 1021)]);
    let show = edged.ctl_ok(&["prefix", "show", "198.51.100.128/25"]);
    assert_eq!(show["policy"], "pop:pop-b", "{show}");

    // A config prefix removed live stays removed across a restart, like
    // the live addition.
    edged.ctl_ok(&["prefix", "del", "192.0.2.128/25"]);
    let o = edged.ctl(&["prefix", "lookup", "192.0.2.200"]);
    assert_eq!(
        (o.code, &o.json["data"]["registered"]),
        (Some(3), &json!(false))
    );
    edged.stop();
    edged.restart();
    assert!(has_prefix(&edged, "198.51.100.128/25"));
    assert!(!has_prefix(&edged, "192.0.2.128/25"));
    assert_eq!(
        edged.ctl_ok(&["prefix", "lookup", "198.51.100.200"])["registration"],
        "tailspin"
    );
    // Back again, by a live add with the config's own values.
    edged.ctl_ok(&[
        "prefix",
        "add",
        "192.0.2.128/25",
        "--registration",
        "fabrikam",
        "--preference",
        "internet",
        "--dscp",
        "af41",
    ]);
    let v = edged.ctl_ok(&["prefix", "lookup", "192.0.2.200"]);
    assert_eq!(
        (&v["preference"], &v["dscp"]),
        (&json!("internet"), &json!(34))
    );

    // The fifth IPv4 prefix fits; the sixth does not.
    edged.ctl_ok(&["prefix", "add", "198.51.100.0/26", "--pop", "pop-a"]);
    let o = edged.ctl(&["prefix", "add", "198.51.100.64/26", "--pop", "pop-a"]);
    assert_eq!(o.code, Some(4), "{o:?}");
    assert_eq!(o.json["kind"], "map_full");
    assert!(
        error_of(&o).contains("EDGE_PFX_V4") && error_of(&o).contains("limit of 5"),
        "{o:?}"
    );
    assert!(!has_prefix(&edged, "198.51.100.64/26"));

    // Bad input: clear errors and exit codes, nothing changes.
    let before = prefixes(&edged);
    for (args, code, needle) in [
        (
            vec!["prefix", "add", "192.0.2.1/24", "--pop", "pop-a"],
            2,
            "host bits",
        ),
        (
            vec!["prefix", "add", "300.1.1.0/24", "--pop", "pop-a"],
            2,
            "bad prefix",
        ),
        (
            vec!["prefix", "add", "2001:db8:99::/48", "--pop", "pop-z"],
            2,
            "unknown PoP \"pop-z\"",
        ),
        (
            vec!["prefix", "add", "2001:db8:99::/48", "--policy", "nope"],
            2,
            "unknown policy",
        ),
        (
            vec![
                "prefix",
                "add",
                "2001:db8:99::/48",
                "--pop",
                "pop-a",
                "--dscp",
                "af99",
            ],
            2,
            "unknown DSCP",
        ),
        (
            vec!["prefix", "del", "198.51.100.64/26"],
            3,
            "not registered",
        ),
        (
            vec!["prefix", "show", "198.51.100.64/26"],
            3,
            "not registered",
        ),
    ] {
        let o = edged.ctl(&args);
        assert_eq!(o.code, Some(code), "{args:?}: {o:?}");
        assert!(error_of(&o).contains(needle), "{args:?}: {o:?}");
    }
    // A CIDR that is not one is refused by edgectl itself (usage error, 2).
    let o = edged.ctl(&["prefix", "del", "nonsense"]);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(o.stderr.contains("invalid"), "{o:?}");
    assert_eq!(prefixes(&edged), before);

    // Deleting the live prefixes empties the live state.
    edged.ctl_ok(&["prefix", "del", "198.51.100.0/26"]);
    edged.ctl_ok(&["prefix", "del", "198.51.100.128/25"]);
    let state: Value = serde_json::from_slice(&std::fs::read(&edged.state).unwrap()).unwrap();
    let added: Vec<&str> = state["live"]["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(added, ["192.0.2.128/25"], "{state}");
    assert_eq!(
        std::fs::metadata(&edged.state)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

/// `live list`, `config show --effective`, `config diff` and `live clear`:
/// every live change with when and by whom (kept across a restart), the
/// config edged runs (a file `config check` passes), the diff against the
/// file, and clearing that brings the file's entries back in one change.
#[test]
fn live_changes_are_listed_diffed_and_cleared() {
    let lab = EdgeLab::build("clilive");
    let config = write_config(&lab, LAB_CONFIG);
    let mut edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    assert_eq!(edged.ctl_ok(&["live", "list"])["changes"], json!([]));
    let o = edged.ctl_ok(&["config", "diff"]);
    assert_eq!(o["changes"], json!([]), "{o}");

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    edged.ctl_ok(&[
        "prefix",
        "add",
        "198.51.100.128/25",
        "--registration",
        "tailspin",
        "--pop",
        "pop-b",
        "--region",
        "World > Europe",
    ]);
    edged.ctl_ok(&["prefix", "add", "192.0.2.0/25", "--pop", "pop-a"]);
    edged.ctl_ok(&["prefix", "del", "192.0.2.128/25"]);
    // A region is checked as in the config.
    let o = edged.ctl(&[
        "prefix",
        "add",
        "203.0.113.0/25",
        "--pop",
        "pop-a",
        "--region",
        "world > > ie",
    ]);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(error_of(&o).contains("empty segment"), "{o:?}");

    let list = edged.ctl_ok(&["live", "list"]);
    let changes = list["changes"].as_array().unwrap();
    let rows: Vec<(&str, &str)> = changes
        .iter()
        .map(|c| (c["network"].as_str().unwrap(), c["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        rows,
        [
            ("198.51.100.128/25", "added"),
            ("192.0.2.0/25", "replaced"),
            ("192.0.2.128/25", "removed"),
        ],
        "{list}"
    );
    for c in changes {
        assert_eq!(c["by"], "root (uid 0)", "{c}");
        let t = c["time"].as_f64().unwrap();
        assert!(t >= before - 1.0 && t < before + 60.0, "{c}");
    }
    assert_eq!(changes[0]["spec"]["region"], "World > Europe", "{list}");
    assert_eq!(changes[2]["spec"], Value::Null, "{list}");

    // The effective config: the file with the changes merged; as a file
    // of its own it checks, with the same prefixes.
    let eff = edged.ctl_ok(&["config", "show", "--effective"]);
    let nets: Vec<&str> = eff["effective"]["prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["prefix"].as_str().unwrap())
        .collect();
    assert!(
        nets.contains(&"198.51.100.128/25") && !nets.contains(&"192.0.2.128/25"),
        "{eff}"
    );
    let text = edged.ctl_text(&["config", "show", "--effective"]);
    assert!(text.starts_with("# The config edged runs"), "{text}");
    let merged = std::env::temp_dir().join(format!("{}-effective.toml", lab.edge));
    std::fs::write(&merged, &text).unwrap();
    let checked = edged.ctl_ok(&["config", "check", merged.to_str().unwrap()]);
    assert_eq!(checked["ok"], true, "{checked}");
    std::fs::remove_file(&merged).unwrap();
    assert_eq!(
        edged.ctl_text(&["config", "show"]),
        std::fs::read_to_string(&config).unwrap()
    );
    let diff = edged.ctl_text(&["config", "diff"]);
    for needle in [
        "@@ 192.0.2.0/25 replaced, ",
        "-policy = \"contoso-nearest\"",
        "+pop = \"pop-a\"",
        "@@ 192.0.2.128/25 removed",
        "-prefix = \"192.0.2.128/25\"",
        "+region = \"World > Europe\"",
    ] {
        assert!(diff.contains(needle), "{needle:?} missing in\n{diff}");
    }
    let d = edged.ctl_ok(&["config", "diff"]);
    assert_eq!(d["changes"][1]["file"]["policy"], "contoso-nearest", "{d}");
    assert_eq!(d["changes"][1]["live"]["pop"], "pop-a", "{d}");

    // Kept across a restart, stamps included.
    edged.stop();
    edged.restart();
    assert_eq!(edged.ctl_ok(&["live", "list"]), list);

    // Clearing: the file's entries come back; a network without a live
    // change is not found and nothing is cleared.
    let o = edged.ctl(&["live", "clear", "192.0.2.128/25", "203.0.113.0/24"]);
    assert_eq!(o.code, Some(3), "{o:?}");
    assert!(
        error_of(&o).contains("no live change for 203.0.113.0/24"),
        "{o:?}"
    );
    let o = edged.ctl_ok(&["live", "clear", "192.0.2.128/25"]);
    assert_eq!(o["cleared"], json!(["192.0.2.128/25"]), "{o}");
    let v = edged.ctl_ok(&["prefix", "lookup", "192.0.2.200"]);
    assert_eq!(
        (&v["registration"], &v["source"]),
        (&json!("fabrikam"), &json!("config")),
        "{v}"
    );
    let events = edged.ctl_ok(&["events"]);
    assert!(
        events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "change"
                && e["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("live changes of 1 network cleared (192.0.2.128/25)")),
        "{events}"
    );
    let o = edged.ctl_ok(&["live", "clear", "--all"]);
    assert_eq!(
        o["cleared"],
        json!(["198.51.100.128/25", "192.0.2.0/25"]),
        "{o}"
    );
    assert_eq!(edged.ctl_ok(&["live", "list"])["changes"], json!([]));
    assert!(prefixes(&edged).iter().all(|p| p.2 == "config"));
    assert_eq!(
        toward(&edged, "192.0.2.9"),
        [("contoso-direct".into(), 1021)]
    );
    let state: Value = serde_json::from_slice(&std::fs::read(&edged.state).unwrap()).unwrap();
    assert_eq!(
        state["live"],
        json!({"added": [], "removed": []}),
        "{state}"
    );
    assert_eq!(state.get("stamps"), None, "{state}");
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

#[test]
fn pop_policy_stats_config_and_teardown_commands() {
    let lab = EdgeLab::build("clipop");
    let config = write_config(&lab, LAB_CONFIG);
    let mut edged = Edged::start(&lab.edge, &config, &lab.pin_path());

    let pops = edged.ctl_ok(&["pop", "list"]);
    let names: Vec<&str> = pops
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["contoso-direct", "pop-a", "pop-b", "transit"]);
    assert!(
        pops.as_array()
            .unwrap()
            .iter()
            .all(|p| p["drained"] == false)
    );

    // Draining the first choice of contoso's policy moves contoso to pop-a,
    // in the kernel's table; it lasts across a restart; undrain restores it.
    assert_eq!(
        toward(&edged, "192.0.2.9"),
        [("contoso-direct".into(), 1021)]
    );
    // `events --follow` prints the last `--limit` events, then each new
    // one as it happens, one JSON line per event: here the reload's, then
    // (once that is out, so the follower has looked) the drain's.
    edged.ctl_ok(&["config", "reload"]);
    let mut follow = std::process::Command::new(workspace_bin("edgectl"))
        .arg("--socket")
        .arg(&edged.socket)
        .args([
            "--json",
            "events",
            "--follow",
            "--limit",
            "1",
            "--interval",
            "0.1",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("events --follow printed the last event within 5 s");
    assert!(first.contains("reloaded: 0 written"), "{first}");
    let r = edged.ctl_ok(&["pop", "drain", "contoso-direct"]);
    let followed = rx.recv_timeout(Duration::from_secs(5));
    follow.kill().unwrap();
    follow.wait().unwrap();
    let followed = followed.expect("events --follow printed the drain within 5 s");
    let event: Value = serde_json::from_str(&followed).unwrap();
    assert_eq!(event["kind"], "change", "{followed}");
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .starts_with("PoP contoso-direct drained"),
        "{followed}"
    );
    assert_eq!(
        r["changes"]["written"], 1,
        "one policy table rewritten: {r}"
    );
    assert_eq!(toward(&edged, "192.0.2.9"), [("pop-a".into(), 1021)]);
    let policies = edged.ctl_ok(&["policy", "list"]);
    let contoso = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "contoso-nearest")
        .expect("policy");
    assert_eq!(contoso["members"][0]["up"], false, "{contoso}");
    // The drain is on record: an event of kind `change` (the audit trail).
    let events = edged.ctl_ok(&["events"]);
    let changes: Vec<&str> = events["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events: {events}"))
        .iter()
        .filter(|e| e["kind"] == "change")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes.last(),
        Some(&"PoP contoso-direct drained (out of every policy and exit): 1 written, 0 removed"),
        "{events}"
    );
    assert!(changes[0].contains("reloaded: 0 written"), "{events}");
    edged.stop();
    edged.restart();
    assert_eq!(toward(&edged, "192.0.2.9"), [("pop-a".into(), 1021)]);
    assert_eq!(
        edged.ctl_ok(&["status"])["drained"],
        json!(["contoso-direct"])
    );
    edged.ctl_ok(&["pop", "undrain", "contoso-direct"]);
    assert_eq!(
        toward(&edged, "192.0.2.9"),
        [("contoso-direct".into(), 1021)]
    );
    let show = edged.ctl_ok(&["policy", "show", "contoso-nearest"]);
    assert_eq!(
        show["table"],
        json!([{"pop": "contoso-direct", "slots": 1021, "share": 1.0}]),
        "{show}"
    );
    assert_eq!(show["prefixes"], 2, "{show}");
    for (args, code) in [
        (vec!["pop", "drain", "pop-z"], 3),
        (vec!["pop", "undrain", "pop-z"], 3),
        (vec!["policy", "show", "nope"], 3),
        (vec!["stats", "prefix", "198.51.100.0/24"], 3),
    ] {
        let o = edged.ctl(&args);
        assert_eq!(o.code, Some(code), "{args:?}: {o:?}");
        assert_eq!(o.json["ok"], false, "{o:?}");
    }

    // Stats: every action and reason, each prefix, PoP and port.
    let stats = edged.ctl_ok(&["stats"]);
    for key in ["actions", "reasons"] {
        assert!(
            stats[key].as_object().is_some_and(|o| o.len() >= 5),
            "{stats}"
        );
    }
    assert_eq!(stats["prefixes"].as_array().unwrap().len(), 6);
    assert_eq!(stats["pops"].as_array().unwrap().len(), 4);
    assert_eq!(stats["ports"].as_array().unwrap().len(), 5);
    let one = edged.ctl_ok(&["stats", "prefix", "192.0.2.0/25"]);
    assert_eq!(one["prefixes"].as_array().unwrap().len(), 1, "{one}");
    assert_eq!(one["prefixes"][0]["registration"], "contoso");

    // Config check: good, then every problem with its line.
    let o = edged.ctl(&["config", "check", config.to_str().unwrap()]);
    assert_eq!((o.code, &o.json["ok"]), (Some(0), &json!(true)), "{o:?}");
    let bad = std::env::temp_dir().join(format!("{}-bad.toml", lab.edge));
    std::fs::write(
        &bad,
        format!("{LAB_CONFIG}\n[[prefixes]]\nprefix = \"192.0.2.1/25\"\npop = \"nowhere\"\n"),
    )
    .unwrap();
    let o = edged.ctl(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!((o.code, &o.json["ok"]), (Some(2), &json!(false)), "{o:?}");
    let lines = LAB_CONFIG.lines().count() as u64;
    let problems = o.json["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "host bits stop the entry: {o:?}");
    assert_eq!(problems[0]["line"], lines + 3, "{o:?}");
    std::fs::remove_file(bad).unwrap();

    // Teardown: edged exits, nothing is left: pins, links, state, socket.
    let r = edged.ctl_ok(&["teardown"]);
    assert!(r["torn_down"].is_string(), "{r}");
    wait_until("the pins to go", || !edged.pin_path.exists());
    assert!(!edged.state.exists(), "state file removed");
    let links = lab.lab.ip(&lab.edge, &["link", "show"]);
    assert!(!links.contains("xdp"), "XDP left attached:\n{links}");
    wait_until("the socket to go", || !edged.socket.exists());
    std::fs::remove_file(config).unwrap();
}

/// Sends raw bytes on a new connection; returns the reply line, if any.
fn raw(socket: &std::path::Path, bytes: &[u8]) -> Option<Value> {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

#[test]
fn the_control_socket_is_root_only_and_survives_malformed_requests() {
    let lab = EdgeLab::build("sock");
    let config = write_config(&lab, LAB_CONFIG);
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let meta = std::fs::metadata(&edged.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");
    // Pinned maps and links: root's only.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&edged.pin_path), 0o700, "pin directory mode");
    for pin in std::fs::read_dir(&edged.pin_path).unwrap() {
        let pin = pin.unwrap().path();
        assert_eq!(
            mode(&pin) & 0o077,
            0,
            "{} is readable by others",
            pin.display()
        );
    }

    for bad in [
        &b"{\n"[..],
        b"not json\n",
        b"{\"protocol\":1,\"command\":\"rm_rf\"}\n",
        b"{\"protocol\":1,\"command\":\"prefix_add\",\"spec\":{\"prefix\":\"192.0.2.0/25\",\"colour\":1}}\n",
        b"\xff\xfe\xfd\n",
    ] {
        let r = raw(&edged.socket, bad).expect("an error reply");
        assert_eq!(
            (&r["ok"], &r["kind"]),
            (&json!(false), &json!("invalid")),
            "{r}"
        );
    }
    // Without the protocol version, or with another: refused, naming the
    // version edged speaks.
    for bad in [
        &b"{\"command\":\"status\"}\n"[..],
        b"{\"protocol\":2,\"command\":\"status\"}\n",
    ] {
        let r = raw(&edged.socket, bad).expect("an error reply");
        assert_eq!(
            (&r["ok"], &r["kind"], &r["protocol"]),
            (&json!(false), &json!("version"), &json!(1)),
            "{r}"
        );
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .contains("edged speaks protocol 1"),
            "{r}"
        );
    }
    // A line longer than the limit: an error, then the connection closes.
    let mut huge = vec![b'x'; 70 * 1024];
    huge.push(b'\n');
    let r = raw(&edged.socket, &huge).expect("an error reply");
    assert!(r["error"].as_str().unwrap().contains("longer than"), "{r}");
    // A client that connects and says nothing does not block others.
    let _idle = UnixStream::connect(&edged.socket).unwrap();
    let r = raw(&edged.socket, b"{\"protocol\":1,\"command\":\"status\"}\n").expect("status");
    assert_eq!(r["ok"], true, "edged still answers: {r}");

    // Another user: refused by the file mode, and, with the mode opened up,
    // by the peer-credential check.
    let as_nobody = || {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(workspace_bin("edgectl"))
            .arg("--json")
            .arg("--socket")
            .arg(&edged.socket)
            .arg("status")
            .output()
            .expect("setpriv (util-linux)")
    };
    // The socket's directory must be searchable by nobody for the test.
    let dir = edged.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = as_nobody();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Permission denied"),
        "{o:?}"
    );
    std::fs::set_permissions(&edged.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = as_nobody();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("root only"),
        "{o:?}"
    );
    drop(edged);
    // A world-writable config: edged warns.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = std::process::Command::new(workspace_bin("edged"))
        .arg("--config")
        .arg(&config)
        .arg("--check")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("is world-writable"), "{stderr}");
    std::fs::remove_file(config).unwrap();
}

/// `[daemon] read_group`: the socket is 0660 and owned by the group, whose
/// members may run the show commands (the daemon checks the peer's groups)
/// but not change anything; other users are refused as before.
#[test]
fn a_read_group_member_may_look_but_not_change() {
    const GROUP: u32 = 4242;
    let lab = EdgeLab::build("rgrp");
    let config = write_config(
        &lab,
        &LAB_CONFIG.replace(
            "[daemon]\n",
            &format!("[daemon]\nread_group = \"{GROUP}\"\n"),
        ),
    );
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let meta = std::fs::metadata(&edged.socket).unwrap();
    assert_eq!(
        (meta.permissions().mode() & 0o777, meta.gid()),
        (0o660, GROUP),
        "socket mode and group"
    );
    let dir = edged.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A user whose supplementary groups hold it (not its primary group).
    let as_user = |groups: &str, args: &[&str]| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534"])
            .arg(format!("--groups={groups}"))
            .arg(workspace_bin("edgectl"))
            .arg("--json")
            .arg("--socket")
            .arg(&edged.socket)
            .args(args)
            .output()
            .expect("setpriv (util-linux)")
    };
    for read in [
        &["status"][..],
        &["stats"],
        &["pop", "list"],
        &["events"],
        &["prefix", "list"],
        &["live", "list"],
        &["config", "show", "--effective"],
        &["config", "diff"],
    ] {
        let o = as_user(&GROUP.to_string(), read);
        assert!(o.status.success(), "{read:?}: {o:?}");
    }
    for change in [
        &["prefix", "add", "203.0.113.0/24", "--pop", "pop-a"][..],
        &["pop", "drain", "pop-a"],
        &["config", "reload"],
        &["live", "clear", "--all"],
        &["teardown"],
    ] {
        let o = as_user(&GROUP.to_string(), change);
        let out: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{change:?}: {e}: {o:?}"));
        assert_eq!(
            (o.status.code(), &out["kind"]),
            (Some(5), &json!("denied")),
            "{change:?}: {out}"
        );
        assert!(
            out["error"].as_str().unwrap().contains("read-only access"),
            "{out}"
        );
    }
    // Nothing changed, and edged still runs.
    assert_eq!(edged.ctl_ok(&["status"])["drained"], json!([]));
    // Not in the group: the file mode refuses it.
    let o = as_user("4243", &["status"]);
    assert!(!o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Permission denied"),
        "{o:?}"
    );
}

#[test]
fn edgectl_says_when_the_control_socket_is_at_its_connection_limit() {
    let lab = EdgeLab::build("busy");
    let config = write_config(&lab, LAB_CONFIG);
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    // Clients holding every slot (16), idle.
    let held: Vec<UnixStream> = (0..16)
        .map(|_| UnixStream::connect(&edged.socket).unwrap())
        .collect();
    // Let edged take them all before edgectl asks.
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let out = std::process::Command::new(workspace_bin("edgectl"))
        .arg("--socket")
        .arg(&edged.socket)
        .arg("status")
        .output()
        .unwrap();
    let took = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "edged's control socket {} is at its connection limit: it serves 16 connections at once, and all 16 are taken",
            edged.socket.display()
        )) && stderr.contains("Try again in a moment"),
        "{stderr}"
    );
    assert!(!stderr.contains("os error 11"), "{stderr}");
    // Told after the wait for a slot (2 s), not after edgectl's timeout.
    assert!(took < Duration::from_secs(5), "{took:?}");
    let o = edged.ctl(&["status"]);
    assert_eq!(
        (o.code, &o.json["kind"]),
        (Some(1), &json!("busy")),
        "{o:?}"
    );
    // A slot freed: served again.
    drop(held);
    wait_until("a slot", || edged.ctl(&["status"]).code == Some(0));
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

#[test]
fn a_change_that_fails_half_way_is_undone() {
    use edge_tests::harness::{
        config, desired,
        loader::{self, Dataplane},
        plan::Limits,
        policy::{Choices, PopView},
        state::State,
    };
    let lab = EdgeLab::build("undo");
    let pin = PathBuf::from(format!("/sys/fs/bpf/{}-undo", lab.edge));
    // Removes the pins even when an assertion below fails.
    struct Unpin(PathBuf);
    impl Drop for Unpin {
        fn drop(&mut self) {
            loader::teardown(&self.0);
        }
    }
    let _unpin = Unpin(pin.clone());
    edge_tests::netns::in_netns(&lab.edge, || {
        // An IPv4 prefix map with room for 4 entries; the lab has 3.
        let limits = Limits {
            prefixes_v4: 4,
            ..Limits::default()
        };
        let mut dp = Dataplane::load(&pin, limits).expect("load");
        let plan = config::parse(LAB_CONFIG).unwrap();
        let empty = desired::dump(&dp.tables).unwrap();
        let up = |_| PopView::UP;
        let c =
            desired::compile(&plan, &State::default(), &empty, &up, &Choices::default()).unwrap();
        let (first, ids) = (c.desired, c.ids);
        desired::apply(&mut dp.tables, Some(&mut dp.counters), &empty, &first).unwrap();
        assert_eq!(desired::dump(&dp.tables).unwrap(), first);

        // A change touching every kind of entry, whose prefixes do not fit:
        // validation would refuse it; here the kernel does, half way.
        let grown = LAB_CONFIG.replace("encap_ttl = 64", "encap_ttl = 9")
            + "\n[[prefixes]]\nprefix = \"198.51.100.0/26\"\npop = \"pop-b\"\n"
            + "\n[[prefixes]]\nprefix = \"198.51.100.64/26\"\npop = \"pop-b\"\n"
            + "\n[[prefixes]]\nprefix = \"2001:db8:5::/48\"\npop = \"pop-b\"\n";
        let plan2 = config::parse(&grown).unwrap();
        let state = State {
            ids,
            ..State::default()
        };
        let second = desired::compile(&plan2, &state, &first, &up, &Choices::default())
            .unwrap()
            .desired;
        let err = desired::apply(&mut dp.tables, Some(&mut dp.counters), &first, &second)
            .expect_err("the fifth IPv4 prefix does not fit");
        let text = format!("{err:#}");
        assert!(
            text.contains("EDGE_PFX_V4 is full (limit 4 entries)") && text.contains("undone"),
            "{text}"
        );
        assert_eq!(
            desired::dump(&dp.tables).unwrap(),
            first,
            "the maps hold exactly what they held before"
        );
    });
    drop(_unpin);
    assert!(!pin.exists());
}

#[test]
fn a_next_hop_given_by_address_is_resolved_and_followed() {
    let lab = EdgeLab::build("nh");
    let config = write_config(
        &lab,
        &LAB_CONFIG.replace(
            "interface = \"bbb0\"\nmac = \"02:00:00:00:0b:01\"",
            "interface = \"bbb0\"\nnext_hop = \"198.51.100.6\"",
        ),
    );
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("next_hop")
    );
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let pops = edged.ctl_ok(&["pop", "list"]);
    let popb = pops
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pop-b")
        .unwrap();
    assert_eq!(popb["mac"], "198.51.100.6 (02:00:00:00:0b:01)", "{popb}");

    // Customer traffic enters the backbone at pop-b with the resolved MAC.
    let at_popb = Capture::open(&lab.pop_b, "eth0");
    let s = udp_socket(&lab.cust, sock(CONTOSO_V4, 0));
    let send = |port: u16| {
        s.send_to(b"via next hop", sock(POPB_V4, port)).unwrap();
        at_popb.next_matching(Duration::from_secs(3), |f| {
            f.len() > 42 && f[36..38] == port.to_be_bytes()
        })
    };
    let f = send(6301).expect("forwarded to pop-b");
    assert_eq!(&f[0..6], &[2, 0, 0, 0, 0x0b, 1]);

    // The neighbour entry changes (a new router behind the address): the
    // PoP's MAC follows, without a reload.
    lab.lab.ip(
        &lab.edge,
        &[
            "neigh",
            "replace",
            "198.51.100.6",
            "lladdr",
            "02:00:00:00:0b:99",
            "dev",
            "bbb0",
            "nud",
            "permanent",
        ],
    );
    wait_until("the PoP's MAC to follow the neighbour table", || {
        let pops = edged.ctl_ok(&["pop", "list"]);
        pops.as_array()
            .unwrap()
            .iter()
            .any(|p| p["mac"] == "198.51.100.6 (02:00:00:00:0b:99)")
    });
    // The frame now carries the new MAC (pop-b's NIC, promiscuous via
    // AF_PACKET, still sees it).
    let f = send(6302).expect("forwarded with the new MAC");
    assert_eq!(&f[0..6], &[2, 0, 0, 0, 0x0b, 0x99]);
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

#[test]
fn stats_watch_shows_rates() {
    let lab = EdgeLab::build("watch");
    let config = write_config(&lab, LAB_CONFIG);
    let edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let mut watch = std::process::Command::new(workspace_bin("edgectl"))
        .arg("--json")
        .arg("--socket")
        .arg(&edged.socket)
        .args([
            "stats",
            "--watch",
            "--interval",
            "0.5",
            "prefix",
            "192.0.2.0/25",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // 500 datagrams/s from contoso for 2 s.
    let stream = Stream {
        ns: lab.cust.clone(),
        from: sock(CONTOSO_V4, 0),
        to: sock(POPB_V4, 6400),
    };
    let sent = send_streams(&[stream], 1000, 500, &|| false);
    std::thread::sleep(Duration::from_millis(300));
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 3, "one sample per interval: {lines:?}");
    let rate = |v: &Value| {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["section"] == "prefixes")
            .map(|r| r["packets_per_second"].as_f64().unwrap())
            .unwrap()
    };
    let rates: Vec<f64> = lines.iter().map(rate).collect();
    println!("sent {sent:?}; contoso packets/s per interval: {rates:?}");
    // The busiest interval is near the sending rate (the sender paces 500/s).
    let max = rates.iter().cloned().fold(0.0, f64::max);
    assert!((350.0..=650.0).contains(&max), "{rates:?}");

    // Text into a pipe whose reader goes away after a few lines (`| head`):
    // no screen escapes, and edgectl ends quietly with 0 instead of panicking.
    let mut text = std::process::Command::new(workspace_bin("edgectl"))
        .arg("--socket")
        .arg(&edged.socket)
        .args(["stats", "--watch", "--interval", "0.2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = String::new();
    {
        use std::io::BufRead as _;
        let mut reader = std::io::BufReader::new(text.stdout.take().unwrap());
        for _ in 0..3 {
            reader.read_line(&mut head).unwrap();
        }
    } // the read end closes here
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = text.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "edgectl kept writing into a closed pipe"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut text.stderr.take().unwrap(), &mut stderr).unwrap();
    // Ended quietly with 0 (operations.md, edgectl).
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !head.contains('\x1b'),
        "screen escapes into a pipe: {head:?}"
    );
    assert!(!head.trim().is_empty(), "nothing printed");

    // Every other command too: a reader already gone (`| head -c 0`) ends
    // edgectl quietly, exit 0, no panic.
    for args in [
        &["--json", "prefix", "lookup", "192.0.2.9"][..],
        &["pop", "list"],
    ] {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let o = std::process::Command::new(workspace_bin("edgectl"))
            .arg("--socket")
            .arg(&edged.socket)
            .args(args)
            .stdout(std::process::Stdio::from(write))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args:?}: {:?}: {stderr}", o.status);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

/// The kernel's array copies of the port and local-address registries
/// (`EDGE_PORT_IDX`, `EDGE_LOCAL_BITS`) left behind by a crash between the
/// registry write and the copy's (simulated: emptied while edged is down):
/// the restart reuses every pinned map, has nothing to change, and
/// `Tables::take` refills the copies from the registries, so no port reads
/// as unknown.
#[test]
fn the_port_and_local_copies_are_refilled_from_the_pinned_registries() {
    use aya::maps::{Array, Map, MapData};
    use edge_common::{PortSlot, limits, map_names};

    let lab = EdgeLab::build("up");
    let config = write_config(&lab, LAB_CONFIG);
    let mut edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    edged.stop();
    let open = |name: &str| Map::Array(MapData::from_pin(lab.pin_path().join(name)).unwrap());
    let mut ports: Array<MapData, PortSlot> = Array::try_from(open(map_names::PORT_INDEX)).unwrap();
    for i in 0..limits::PORT_INDEX {
        ports.set(i, PortSlot::default(), 0).unwrap();
    }
    let mut bits: Array<MapData, u64> = Array::try_from(open(map_names::LOCAL_BITS)).unwrap();
    for i in 0..limits::LOCAL_BITS / 64 {
        bits.set(i, 0, 0).unwrap();
    }
    edged.restart();

    let streams = lab_streams(&lab);
    let done = Arc::new(AtomicBool::new(false));
    let receivers: Vec<_> = streams
        .iter()
        .map(|l| spawn_sequence_receiver(udp_socket(&l.at, l.stream.to), done.clone()))
        .collect();
    let list: Vec<Stream> = streams.iter().map(|l| l.stream.clone()).collect();
    let sent = send_streams(&list, 300, 1000, &|| false);
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    for ((l, &n), h) in streams.iter().zip(&sent).zip(receivers) {
        let t = Tally::of(n, &h.join().unwrap());
        assert_eq!((t.lost, t.duplicated), (0, 0), "{}: {t:?}", l.what);
    }
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

/// A fresh start and a restart over its pins leave the same maps, and a
/// restart with the unchanged config writes nothing (issue 14, item 6: the
/// first start left the unused policy tables zero, and the first restart
/// wrote the unused marker into each of them).
#[test]
fn a_restart_with_an_unchanged_config_writes_nothing() {
    use edge_tests::harness::{desired, maps::Tables};
    let lab = EdgeLab::build("same");
    let config = write_config(&lab, LAB_CONFIG);
    let (mut edged, log) = Edged::start_logged(&lab.edge, &config, &lab.pin_path(), &[]);
    let filled = log
        .wait_for("filled the maps", Duration::from_secs(5))
        .expect("a first start fills the maps");
    println!("{filled}");
    let maps = || desired::dump(&Tables::open(&lab.pin_path()).expect("pinned maps")).unwrap();
    let fresh = maps();

    edged.stop();
    let log = edged.restart_logged(&[]);
    let line = log
        .wait_for("reconciled the pinned maps", Duration::from_secs(5))
        .expect("the restart reuses the pins");
    assert!(
        line.ends_with("reconciled the pinned maps: 0 entries written, 0 removed"),
        "{line}"
    );
    let restarted = maps();
    let differ: Vec<usize> = (0..fresh.policies.len())
        .filter(|&id| fresh.policies[id] != restarted.policies[id])
        .collect();
    assert!(
        differ.is_empty(),
        "{} policy tables differ after the restart: {differ:?}",
        differ.len()
    );
    assert!(
        fresh == restarted,
        "a fresh start and a restart leave the same maps"
    );
    let r = edged.ctl_ok(&["config", "reload"]);
    assert_eq!(r["changes"], json!({"removed": 0, "written": 0}), "{r}");
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

/// Started the `ip netns exec` way (a mount namespace of its own, a fresh
/// `/sys`), edged would pin into a bpffs only it sees, and the data plane
/// would vanish with it at every stop (issue 14, item 5): it refuses to
/// start, saying why and what to do, unless `--private-pins`; then it warns,
/// and status and the metrics say so. A mount namespace of its own that
/// still sees the host's bpffs (as systemd's `ProtectSystem` gives) is fine.
#[test]
fn pins_only_edged_can_see_are_refused_unless_private_pins() {
    use edge_tests::harness::loader;
    let lab = EdgeLab::build("mntns");
    let config = write_config(&lab, LAB_CONFIG);
    // The host's bpffs is mounted, with the pin directory on it.
    loader::ensure_bpffs(&lab.pin_path()).unwrap();
    // Removes the host's pin directory even when an assertion below fails
    // (a private edged's teardown removes only its own).
    struct Unpin(PathBuf);
    impl Drop for Unpin {
        fn drop(&mut self) {
            loader::teardown(&self.0);
        }
    }
    let _unpin = Unpin(lab.pin_path());
    let mut edged = Edged::unstarted(&lab.edge, &config, &lab.pin_path());

    // `ip netns exec NS edged`: refused, nothing attached, no socket left.
    let (status, log) = edged
        .spawn_logged(edged.ip_netns_exec_command(&[]))
        .expect_err("edged refuses pins only its mount namespace sees");
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{log:?}");
    let error = log
        .matching("visible only in edged's own mount namespace")
        .pop()
        .unwrap_or_else(|| panic!("the reason: {log:?}"));
    for part in [
        " ERROR ",
        "would vanish when edged exits",
        "nsenter --net=/run/netns/NS edged",
        "--private-pins",
    ] {
        assert!(error.contains(part), "{part:?} missing in: {error}");
    }
    assert_eq!(xdp_prog_id(&lab.lab, &lab.edge, "peer0"), None);
    assert!(!edged.socket.exists());

    // With --private-pins: it runs, says so loudly, in status and metrics.
    let log = edged
        .spawn_logged(edged.ip_netns_exec_command(&["--private-pins"]))
        .unwrap_or_else(|(s, log)| panic!("edged --private-pins exited ({s:?}): {log:?}"));
    assert!(
        log.matching("RUNNING WITHOUT PERSISTENCE (--private-pins)")
            .iter()
            .any(|l| l.contains(" WARN ")),
        "{log:?}"
    );
    let status = edged.ctl_ok(&["status"]);
    assert_eq!(status["pins"]["scope"], "private", "{status}");
    let warnings = status["warnings"].as_array().unwrap();
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .starts_with("pins private to edged's mount namespace"),
        "{warnings:?}"
    );
    let metrics = http_get(&lab.edge, "127.0.0.1:9477".parse().unwrap(), "/metrics");
    assert_eq!(sample(&metrics, "edge_pins_persistent"), Some(0.0));
    // What the refusal protects from: stopped, the data plane is gone.
    assert!(xdp_prog_id(&lab.lab, &lab.edge, "peer0").is_some());
    edged.stop();
    assert!(
        log.wait_for(
            "SIGTERM: exiting; the data plane stops with it",
            Duration::from_secs(5)
        )
        .is_some(),
        "{log:?}"
    );
    wait_until("the private pins to vanish with edged", || {
        xdp_prog_id(&lab.lab, &lab.edge, "peer0").is_none()
    });

    // A mount namespace of its own that sees the host's bpffs: fine.
    let mut unshared = std::process::Command::new("unshare");
    unshared
        .args(["--mount", "nsenter"])
        .arg(format!("--net=/run/netns/{}", lab.edge))
        .arg(workspace_bin("edged"))
        .arg("--config")
        .arg(&edged.config)
        .arg("--pin-path")
        .arg(&edged.pin_path)
        .arg("--socket")
        .arg(&edged.socket)
        .arg("--state")
        .arg(&edged.state);
    let log = edged
        .spawn_logged(unshared)
        .unwrap_or_else(|(s, log)| panic!("edged exited ({s:?}): {log:?}"));
    let status = edged.ctl_ok(&["status"]);
    assert_eq!(status["pins"]["scope"], "shared", "{status}");
    assert!(
        status["pins"]["detail"]
            .as_str()
            .unwrap()
            .contains("edged has a mount namespace of its own, and"),
        "{status}"
    );
    assert!(
        status["warnings"].as_array().unwrap().is_empty(),
        "{status}"
    );
    assert!(
        log.matching("outlive edged")
            .iter()
            .any(|l| l.contains(" INFO "))
    );
    edged.stop();
    assert!(
        xdp_prog_id(&lab.lab, &lab.edge, "peer0").is_some(),
        "the shared pins outlive edged"
    );
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

/// The lab's five ports.
const LAB_PORTS: [&str; 5] = ["peer0", "peer1", "bba0", "bbb0", "tr0"];

/// A restart edged refuses to complete: its exit status and log.
fn failed_restart(edged: &mut Edged, what: &str) -> EdgedLog {
    match edged.spawn_logged(edged.command(&[])) {
        Ok(log) => panic!("{what}: the restart succeeded: {log:?}"),
        Err((status, log)) => {
            assert_eq!(
                status.and_then(|s| s.code()),
                Some(1),
                "{what}: exit status: {log:?}"
            );
            log
        }
    }
}

/// Issue 15, item 3: a restart that cannot complete leaves the running
/// forwarder exactly as it found it: program, links, maps (the same maps,
/// holding the same entries), state file. On main, a restart with other
/// `[limits]` and a missing interface detached XDP from every port and
/// removed every pin. Here it fails three ways: before anything is written
/// (a missing interface), after the new program replaced the old one on
/// the links over new maps (other limits, a port that refuses native XDP),
/// and after the diff was written into the running maps and the links
/// (same limits, the same port); and once more with a state file edged
/// cannot trust (two ports sharing an id). Each time the snapshot is the
/// same and the old program forwards; then a restart with other limits
/// completes: new maps in place, nothing staged left.
#[test]
fn a_restart_that_fails_leaves_the_running_forwarder_as_it_was() {
    let lab = EdgeLab::build("failrs");
    let config = write_config(&lab, LAB_CONFIG);
    let mut edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    edged.stop();
    let snap =
        |e: &Edged| dataplane_snapshot(&lab.lab, &lab.edge, &e.pin_path, &e.state, &LAB_PORTS);
    let before = snap(&edged);
    assert!(before.xdp.values().all(Option::is_some), "{before:?}");
    assert!(
        before.tables.is_some() && before.state.is_some(),
        "{before:?}"
    );
    // A port that refuses native XDP (a bridge has no driver support): it
    // is attached last, after the program was replaced on the others.
    lab.lab
        .ip(&lab.edge, &["link", "add", "br9", "type", "bridge"]);
    lab.lab.ip(&lab.edge, &["link", "set", "br9", "up"]);
    let limits = |t: &str| {
        t.replace(
            "[forwarding]",
            "[limits]\nprefixes_v4 = 4096\n\n[forwarding]",
        )
    };
    let native = |t: &str| t.replace("xdp_mode = \"auto\"", "xdp_mode = \"native\"");
    let port = |name: &str| format!("\n[[ports]]\ninterface = \"{name}\"\nrole = \"transit\"\n");
    for (what, text, needle) in [
        (
            "other [limits] and a missing interface",
            limits(LAB_CONFIG) + &port("nope0"),
            "nope0",
        ),
        (
            "other [limits] and a port refusing native XDP",
            native(&limits(LAB_CONFIG)) + &port("br9"),
            "attaching XDP to br9",
        ),
        (
            "the same maps and a port refusing native XDP",
            native(LAB_CONFIG) + &port("br9"),
            "attaching XDP to br9",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let log = failed_restart(&mut edged, what);
        let after = snap(&edged);
        assert_eq!(after.pins, before.pins, "{what}: pins");
        assert_eq!(after.xdp, before.xdp, "{what}: XDP programs");
        assert!(
            after.tables == before.tables,
            "{what}: the maps' contents changed"
        );
        let error = log
            .matching("the restart failed; the running forwarder is left as it was")
            .pop()
            .unwrap_or_else(|| panic!("{what}: the reason: {log:?}"));
        assert!(
            error.contains(needle),
            "{what}: {needle:?} missing in {error}"
        );
        assert_eq!(after.state, before.state, "{what}: state file");
        assert_lab_streams_arrive(&lab, 100);
    }

    // A state file with two ports sharing an id (a hand edit): refused,
    // naming the file and the problem, before anything changes.
    std::fs::write(&config, LAB_CONFIG).unwrap();
    let good = std::fs::read(&edged.state).unwrap();
    let mut state: Value = serde_json::from_slice(&good).unwrap();
    state["ids"]["ports"]["peer1"] = state["ids"]["ports"]["peer0"].clone();
    std::fs::write(&edged.state, serde_json::to_vec(&state).unwrap()).unwrap();
    let log = failed_restart(&mut edged, "a state file giving two ports one id");
    let error = log
        .matching(&format!("state file {} is invalid", edged.state.display()))
        .pop()
        .unwrap_or_else(|| panic!("the reason: {log:?}"));
    assert!(
        error.contains(r#"ids.ports: "peer0" and "peer1" share id"#),
        "{error}"
    );
    std::fs::write(&edged.state, &good).unwrap();
    let after = snap(&edged);
    assert_eq!((&after.pins, &after.xdp), (&before.pins, &before.xdp));
    assert!(after.tables == before.tables);

    // Other limits alone: the restart completes; every map is new, in
    // place of the old one, nothing staged is left, traffic flows.
    std::fs::write(&config, limits(LAB_CONFIG)).unwrap();
    let log = edged.restart_logged(&[]);
    assert!(
        log.wait_for("the new maps are in place", Duration::from_secs(5))
            .is_some(),
        "{log:?}"
    );
    let after = snap(&edged);
    assert_eq!(
        after.pins.keys().collect::<Vec<_>>(),
        before.pins.keys().collect::<Vec<_>>(),
        "the same pins, nothing staged left"
    );
    for (name, what) in &after.pins {
        assert_ne!(Some(what), before.pins.get(name), "{name} was not replaced");
    }
    for (port, prog) in &after.xdp {
        assert!(
            prog.is_some() && *prog != before.xdp[port],
            "{port}: {after:?}"
        );
    }
    assert_eq!(
        edged.ctl_ok(&["status"])["maps"]["prefixes_v4"]["limit"],
        4096
    );
    assert_lab_streams_arrive(&lab, 100);
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

/// Issue 15, item 4 (and the read-only state directory): a restart that
/// cannot record its state changes nothing. On main, with the state
/// directory full, a restart with a changed config exited with "No space
/// left on device" (no file named) after the change was live in the
/// kernel; with it read-only, an unchanged restart failed after the
/// program was replaced on the links. Now both fail before anything
/// changes, naming the file; with room again the change goes through.
#[test]
fn a_restart_that_cannot_record_its_state_changes_nothing() {
    let lab = EdgeLab::build("fullst");
    let config = write_config(&lab, LAB_CONFIG);
    let tiny = TinyFs::mount(&lab.edge, "16k");
    let mut edged = Edged::unstarted(&lab.edge, &config, &lab.pin_path());
    edged.state = tiny.dir.join("state.json");
    edged
        .spawn_logged(edged.command(&[]))
        .unwrap_or_else(|(s, log)| panic!("edged exited ({s:?}): {log:?}"));
    edged.stop();
    let snap =
        |e: &Edged| dataplane_snapshot(&lab.lab, &lab.edge, &e.pin_path, &e.state, &LAB_PORTS);
    let before = snap(&edged);
    assert!(before.state.is_some(), "{before:?}");

    // Full: a changed config (one more prefix) is not applied.
    tiny.fill();
    std::fs::write(&config, format!("{LAB_CONFIG}{TAILSPIN}")).unwrap();
    let log = failed_restart(&mut edged, "a full state directory");
    let tmp = tiny.dir.join("state.tmp");
    let after = snap(&edged);
    assert!(
        after.tables == before.tables,
        "the new prefix reached the maps: {after:?}"
    );
    assert_eq!((&after.pins, &after.xdp), (&before.pins, &before.xdp));
    assert_eq!(after.state, before.state);
    assert!(!tmp.exists(), "the temporary file was left behind");
    let error = log
        .matching("No space left on device")
        .pop()
        .unwrap_or_else(|| panic!("the reason: {log:?}"));
    assert!(
        error.contains(&format!("writing {}", tmp.display()))
            && error.contains("nothing was changed"),
        "{error}"
    );
    assert_lab_streams_arrive(&lab, 100);
    tiny.free();

    // Read-only: an unchanged restart fails before replacing the program.
    std::fs::write(&config, LAB_CONFIG).unwrap();
    tiny.read_only(true);
    let log = failed_restart(&mut edged, "a read-only state directory");
    let after = snap(&edged);
    assert_eq!(after.xdp, before.xdp, "the program was replaced");
    assert_eq!(after.pins, before.pins);
    assert!(after.tables == before.tables);
    let error = log
        .matching("Read-only file system")
        .pop()
        .unwrap_or_else(|| panic!("the reason: {log:?}"));
    assert!(
        error.contains(&format!(
            "the state file {} cannot be written",
            edged.state.display()
        )),
        "{error}"
    );
    tiny.read_only(false);

    // Room again: the changed config goes through, and is recorded.
    std::fs::write(&config, format!("{LAB_CONFIG}{TAILSPIN}")).unwrap();
    edged.restart();
    assert!(has_prefix(&edged, "198.51.100.128/25"));
    drop(edged);
    drop(tiny);
    std::fs::remove_file(config).unwrap();
}

/// Issue 15, item 7: a reload that changes the daemon-level keys a restart
/// takes (`pin_path`, `socket_path`, `state_path`, `metrics_address`)
/// applies everything else and reports those as pending: in the reply, in
/// the log and in status, which keeps showing the paths edged runs with.
/// Teardown then removes what really runs. On main, status showed the new
/// pin path at once and teardown "tore down" it (empty) and deleted the
/// state file while every pin and XDP stayed.
#[test]
fn restart_only_keys_wait_for_the_restart_and_teardown_removes_what_runs() {
    let lab = EdgeLab::build("pend");
    let config = write_config(&lab, "");
    let mut edged = Edged::unstarted(&lab.edge, &config, &lab.pin_path());
    // The paths come from the config alone (no flags).
    let with = |pin: &std::path::Path,
                socket: &std::path::Path,
                state: &std::path::Path,
                metrics: &str| {
        LAB_CONFIG
            .lines()
            .map(|l| {
                if l.starts_with("pin_path") {
                    format!(
                        "pin_path = \"{}\"\nsocket_path = \"{}\"\nstate_path = \"{}\"\nmetrics_address = \"{metrics}\"",
                        pin.display(),
                        socket.display(),
                        state.display()
                    )
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    std::fs::write(
        &config,
        with(
            &edged.pin_path,
            &edged.socket,
            &edged.state,
            "127.0.0.1:9477",
        ),
    )
    .unwrap();
    let mut command = edge_tests::netns::netns_command(&lab.edge, &workspace_bin("edged"));
    command.arg("--config").arg(&config);
    let log = edged
        .spawn_logged(command)
        .unwrap_or_else(|(s, log)| panic!("edged exited ({s:?}): {log:?}"));

    let other = std::env::temp_dir().join(format!("{}-other", lab.edge));
    let (pin2, socket2, state2) = (
        PathBuf::from(format!("{}-other", lab.pin_path().display())),
        other.join("edged.sock"),
        other.join("state.json"),
    );
    std::fs::write(
        &config,
        with(&pin2, &socket2, &state2, "127.0.0.1:9478") + TAILSPIN,
    )
    .unwrap();
    let r = edged.ctl_ok(&["config", "reload"]);
    assert!(
        has_prefix(&edged, "198.51.100.128/25"),
        "the rest is applied"
    );
    let status = edged.ctl_ok(&["status"]);
    assert_eq!(status["pin_path"], json!(edged.pin_path), "{status}");
    assert_eq!(status["socket_path"], json!(edged.socket), "{status}");
    assert_eq!(status["state_path"], json!(edged.state), "{status}");
    let pending = json!(["pin_path", "metrics_address", "socket_path", "state_path"]);
    assert_eq!(r["pending_restart"], pending, "{r}");
    assert_eq!(r["changes"]["written"], 2, "{r}");
    assert_eq!(status["pending_restart"], pending, "{status}");
    let warn = log
        .wait_for("take effect at the next restart", Duration::from_secs(5))
        .expect("the pending keys logged");
    assert!(
        warn.contains(" WARN ")
            && warn.contains(&format!(
                "pin_path {} (running: {})",
                pin2.display(),
                edged.pin_path.display()
            )),
        "{warn}"
    );
    assert!(
        status["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("take effect at the next restart")),
        "{status}"
    );
    // The change was recorded where edged runs, nothing went elsewhere.
    assert!(edged.state.exists() && !state2.exists() && !pin2.exists());
    let metrics = http_get(&lab.edge, "127.0.0.1:9477".parse().unwrap(), "/metrics");
    assert!(sample(&metrics, "edge_registered_prefixes").is_some());

    // Teardown removes what runs.
    let r = edged.ctl_ok(&["teardown"]);
    assert_eq!(r["torn_down"], json!(edged.pin_path), "{r}");
    wait_until("the running pins to go", || !edged.pin_path.exists());
    assert!(!edged.state.exists(), "the running state file removed");
    for port in LAB_PORTS {
        assert_eq!(xdp_prog_id(&lab.lab, &lab.edge, port), None, "{port}");
    }
    assert!(!pin2.exists() && !state2.exists());
    drop(edged);
    let _ = std::fs::remove_dir_all(other);
    std::fs::remove_file(config).unwrap();
}

/// Issue 15: a deleted link pin detaches XDP from its port (the pin held
/// the link's last reference). On main nothing noticed; now edged finds it
/// within its link check interval (2 s), attaches again and pins the link,
/// logs a WARN, and counts it in status and the metrics.
#[test]
fn a_deleted_link_pin_is_noticed_and_repaired() {
    let lab = EdgeLab::build("relink");
    let config = write_config(&lab, LAB_CONFIG);
    let (edged, log) = Edged::start_logged(&lab.edge, &config, &lab.pin_path(), &[]);
    let prog = xdp_prog_id(&lab.lab, &lab.edge, "peer0").expect("XDP attached");
    let pin = edged.pin_path.join("link_peer0");
    std::fs::remove_file(&pin).unwrap();
    let line = log
        .wait_for("attached XDP again", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no repair: {log:?}"));
    assert!(
        line.contains(" WARN ")
            && line.contains(&format!("peer0: its link pin {} is gone", pin.display())),
        "{line}"
    );
    assert!(pin.exists(), "pinned again");
    assert_eq!(
        xdp_prog_id(&lab.lab, &lab.edge, "peer0"),
        Some(prog),
        "edged's program runs on peer0 again"
    );
    let status = edged.ctl_ok(&["status"]);
    assert_eq!(status["link_repairs"]["total"], 1, "{status}");
    assert_eq!(
        status["link_repairs"]["recent"][0]["port"], "peer0",
        "{status}"
    );
    let metrics = http_get(&lab.edge, "127.0.0.1:9477".parse().unwrap(), "/metrics");
    assert_eq!(
        sample(&metrics, "edge_link_repairs_total{port=\"peer0\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_lab_streams_arrive(&lab, 100);
    drop(edged);
    std::fs::remove_file(config).unwrap();
}

/// `prefix add --file`: ten thousand prefixes in one transaction (one
/// change, one state write, kept across a restart); a batch with one bad
/// line is refused whole, naming the line, and changes nothing; duplicate
/// and malformed lines are refused by edgectl before anything is sent;
/// `--file -` reads standard input; `prefix del --file` removes them again.
#[test]
fn prefix_batches_are_all_or_nothing() {
    let lab = EdgeLab::build("batch");
    let config = write_config(&lab, LAB_CONFIG);
    let mut edged = Edged::start(&lab.edge, &config, &lab.pin_path());
    let before = prefixes(&edged);
    let generation = |edged: &Edged| edged.ctl_ok(&["status"])["generation"].as_u64().unwrap();
    let used_v4 = |edged: &Edged| {
        edged.ctl_ok(&["status"])["maps"]["prefixes_v4"]["used"]
            .as_u64()
            .unwrap()
    };
    let (g0, v4) = (generation(&edged), used_v4(&edged));
    let dir = std::env::temp_dir().join(format!("{}-batch", lab.edge));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("batch.txt");
    let net = |i: usize| format!("198.18.{}.{}/32", i / 256, i % 256);
    let mut text = String::from("# ten thousand customers' host routes\n\n");
    for i in 0..10_000 {
        text += &format!("{} --pop pop-b --registration bench-{}\n", net(i), i / 100);
    }
    std::fs::write(&file, &text).unwrap();
    let path = file.to_str().unwrap();

    // One bad line (an unknown PoP) on line 5003: nothing is applied.
    let bad = text.replacen(
        &format!("{} --pop pop-b", net(5_000)),
        &format!("{} --pop nowhere", net(5_000)),
        1,
    );
    let bad_file = dir.join("bad.txt");
    std::fs::write(&bad_file, &bad).unwrap();
    let o = edged.ctl(&["prefix", "add", "--file", bad_file.to_str().unwrap()]);
    assert_eq!(o.code, Some(2), "{o:?}");
    let e = error_of(&o);
    assert!(
        e.contains("nothing was applied")
            && e.contains(&format!(
                "line 5003: prefix {}: unknown PoP \"nowhere\"",
                net(5_000)
            )),
        "{e}"
    );
    assert_eq!(generation(&edged), g0);
    assert_eq!(prefixes(&edged), before);

    // Duplicates and unknown options: edgectl names the lines and sends nothing.
    let dup = dir.join("dup.txt");
    std::fs::write(
        &dup,
        format!(
            "{} --pop pop-b\n{} --colour red\n{} --pop pop-b\n",
            net(1),
            net(2),
            net(1)
        ),
    )
    .unwrap();
    let o = edged.ctl(&["prefix", "add", "--file", dup.to_str().unwrap()]);
    assert_eq!(o.code, Some(2), "{o:?}");
    let problems = o.json["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 2, "{o:?}");
    assert_eq!(problems[0]["line"], 2);
    assert_eq!(problems[1]["line"], 3);
    assert!(
        problems[1]["message"]
            .as_str()
            .unwrap()
            .contains("is already on line 1"),
        "{o:?}"
    );
    assert_eq!(generation(&edged), g0);

    // The good batch: one change, every prefix in the maps and the list.
    let t = Instant::now();
    let o = edged.ctl_ok(&["prefix", "add", "--file", path]);
    println!("batch of 10000: {:?}", t.elapsed());
    // The prefixes, and the table of their new policy pop:pop-b.
    assert_eq!(o["changes"]["written"], 10_001, "{o}");
    assert_eq!(generation(&edged), g0 + 1);
    assert_eq!(used_v4(&edged), v4 + 10_000);
    assert_eq!(prefixes(&edged).len(), before.len() + 10_000);
    let l = edged.ctl_ok(&["prefix", "lookup", "198.18.39.15"]);
    assert_eq!(
        (&l["registration"], &l["source"]),
        (&json!("bench-99"), &json!("live")),
        "{l}"
    );
    let some = edged.ctl_ok(&[
        "prefix",
        "list",
        "--registration",
        "bench-7",
        "--source",
        "live",
    ]);
    assert_eq!(some.as_array().unwrap().len(), 100, "{some}");
    let within = edged.ctl_ok(&["prefix", "list", "--within", "198.18.1.0/24"]);
    assert_eq!(within.as_array().unwrap().len(), 256, "{within}");
    let state: Value = serde_json::from_slice(&std::fs::read(&edged.state).unwrap()).unwrap();
    assert_eq!(state["live"]["added"].as_array().unwrap().len(), 10_000);

    // From standard input, replacing two entries (another PoP).
    let mut child = std::process::Command::new(workspace_bin("edgectl"))
        .args(["--json", "--socket"])
        .arg(&edged.socket)
        .args(["prefix", "add", "--file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{} --pop pop-a\n{} --pop pop-a\n", net(0), net(1)).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        edged.ctl_ok(&["prefix", "show", &net(1)])["policy"],
        "pop:pop-a"
    );
    assert_eq!(generation(&edged), g0 + 2);

    // Kept across a restart.
    edged.stop();
    edged.restart();
    assert_eq!(prefixes(&edged).len(), before.len() + 10_000);

    // And removed in one transaction again.
    let dels: String = (0..10_000).map(|i| net(i) + "\n").collect();
    let del_file = dir.join("del.txt");
    std::fs::write(&del_file, dels).unwrap();
    let o = edged.ctl_ok(&["prefix", "del", "--file", del_file.to_str().unwrap()]);
    assert_eq!(o["changes"]["removed"], 10_000, "{o}");
    assert_eq!(prefixes(&edged), before);
    assert_eq!(used_v4(&edged), v4);
    drop(edged);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_file(config).unwrap();
}
