//! Live changes of a private domain through edged: registered, replaced
//! and removed with `edgectl prefix add|del --domain`, answered by the
//! kernel's domain trie (`prefix lookup --domain`), listed, kept across a
//! restart, and kept apart from the public domain's entry for the same
//! network.

use std::path::PathBuf;

use edge_tests::topology::*;

const CONFIG: &str = r#"
[forwarding]
backbone_exit = "a"

[[domains]]
name = "red"

[[ports]]
interface = "peer0"
role = "peering"

[[ports]]
interface = "peer0"
name = "red-pvt"
vlan = [310]
role = "peering"
domain = "red"

[[ports]]
interface = "bba0"
role = "backbone"

[[ports]]
interface = "bba0"
name = "red-gw"
vlan = [1310]
role = "backbone"
domain = "red"

[[pops]]
name = "a"
port = "bba0"
mac = "02:00:00:00:0a:01"

[[pops]]
name = "red-ams"
port = "red-gw"
mac = "02:00:00:00:0a:31"

[[pops]]
name = "red-onprem"
port = "red-pvt"
mac = "02:00:00:00:0c:31"

[[prefixes]]
prefix = "198.18.0.0/24"
domain = "red"
pop = "red-onprem"

[[prefixes]]
prefix = "203.0.113.0/24"
pop = "a"
"#;

fn write_config(lab: &EdgeLab) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}-domains.toml", lab.edge));
    std::fs::write(&path, CONFIG).unwrap();
    path
}

/// The PoP a domain's packet to `address` goes to now (the kernel's
/// answer), or `None` when no prefix covers it.
fn pop_for(e: &Edged, domain: &str, address: &str) -> Option<String> {
    let o = e.ctl(&["prefix", "lookup", "--domain", domain, address]);
    match o.code {
        Some(0) => {
            let d = &o.json["data"];
            assert_eq!(d["domain"], domain, "{o:?}");
            let shares = d["toward_customer"].as_array().unwrap();
            assert_eq!(shares.len(), 1, "{o:?}");
            Some(shares[0]["pop"].as_str().unwrap().to_string())
        }
        Some(3) => {
            assert_eq!(o.json["data"]["registered"], false, "{o:?}");
            None
        }
        _ => panic!("edgectl prefix lookup: {o:?}"),
    }
}

#[test]
fn live_changes_of_a_private_domain_reach_its_trie_and_survive_a_restart() {
    edge_tests::netns::require_root();
    let lab = EdgeLab::build("dlive");
    let config = write_config(&lab);
    let mut e = Edged::start(&lab.edge, &config, &lab.pin_path());

    // The file's private entry; the public table knows nothing of it.
    assert_eq!(
        pop_for(&e, "red", "198.18.0.9").as_deref(),
        Some("red-onprem")
    );
    assert_eq!(pop_for(&e, "public", "198.18.0.9"), None);

    // A live prefix of red, and the same network registered publicly:
    // each domain answers with its own.
    e.ctl_ok(&[
        "prefix",
        "add",
        "--domain",
        "red",
        "203.0.113.0/24",
        "--pop",
        "red-ams",
    ]);
    assert_eq!(
        pop_for(&e, "red", "203.0.113.7").as_deref(),
        Some("red-ams")
    );
    let public = e.ctl_ok(&["prefix", "lookup", "203.0.113.7"]);
    assert_eq!(public["toward_customer"][0]["pop"], "a", "{public}");
    let listed = e.ctl_ok(&["prefix", "list", "--domain", "red"]);
    let nets: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(nets, ["198.18.0.0/24", "203.0.113.0/24"], "{listed}");

    // The file's entry replaced live, then removed live.
    e.ctl_ok(&[
        "prefix",
        "add",
        "--domain",
        "red",
        "198.18.0.0/24",
        "--pop",
        "red-ams",
    ]);
    assert_eq!(pop_for(&e, "red", "198.18.0.9").as_deref(), Some("red-ams"));
    e.ctl_ok(&["prefix", "del", "--domain", "red", "198.18.0.0/24"]);
    assert_eq!(pop_for(&e, "red", "198.18.0.9"), None);

    // Listed with their domain.
    let live = e.ctl_ok(&["live", "list"]);
    let changes: Vec<(String, String, String)> = live["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["domain"].as_str().unwrap_or("public").to_string(),
                c["kind"].as_str().unwrap().to_string(),
                c["network"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("red".into(), "added".into(), "203.0.113.0/24".into()),
            ("red".into(), "removed".into(), "198.18.0.0/24".into()),
        ],
        "{live}"
    );

    // Only red's PoPs and policies with --domain red.
    let names = |v: serde_json::Value| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(e.ctl_ok(&["pop", "list", "--domain", "red"])),
        ["red-ams", "red-onprem"]
    );
    // pop:red-onprem left with the only prefix that named it (removed
    // live above): a `pop:NAME` policy exists while a prefix uses it.
    assert_eq!(
        names(e.ctl_ok(&["policy", "list", "--domain", "red"])),
        ["pop:red-ams"]
    );
    assert_eq!(
        names(e.ctl_ok(&["pop", "list", "--domain", "public"])),
        ["a"]
    );
    // The text of `live list` and `config diff` name the domain, and the
    // entry replays as a `prefix add`.
    let text = e.ctl_text(&["live", "list"]);
    assert!(
        text.contains("203.0.113.0/24 --pop red-ams --domain red"),
        "{text}"
    );
    let diff = e.ctl_text(&["config", "diff"]);
    assert!(
        diff.contains("@@ 198.18.0.0/24 (domain red) removed @@\n-[[prefixes]]\n")
            && diff.contains("-domain = \"red\"\n")
            && diff.contains("-pop = \"red-onprem\"\n"),
        "{diff}"
    );

    // Refused, nothing changed: a public PoP for a private prefix, a
    // network the domain does not register, an unknown domain.
    let o = e.ctl(&[
        "prefix",
        "add",
        "--domain",
        "red",
        "198.51.100.0/24",
        "--pop",
        "a",
    ]);
    assert_eq!(o.code, Some(2), "{o:?}");
    assert!(
        o.json["error"]
            .as_str()
            .unwrap()
            .contains("prefix 198.51.100.0/24 (domain red): PoP a is in domain public"),
        "{o:?}"
    );
    let o = e.ctl(&["prefix", "del", "--domain", "red", "192.0.2.0/24"]);
    assert_eq!(o.code, Some(3), "{o:?}");
    let o = e.ctl(&["prefix", "lookup", "--domain", "blue", "192.0.2.1"]);
    assert_eq!(o.code, Some(3), "{o:?}");
    assert_eq!(pop_for(&e, "red", "198.51.100.1"), None);

    // A restart keeps them (the state file).
    e.stop();
    e.restart();
    assert_eq!(
        pop_for(&e, "red", "203.0.113.7").as_deref(),
        Some("red-ams")
    );
    assert_eq!(pop_for(&e, "red", "198.18.0.9"), None);

    // `live clear` of a network clears it in every domain: red's live
    // entry goes, the public file entry stays.
    e.ctl_ok(&["live", "clear", "203.0.113.0/24"]);
    assert_eq!(pop_for(&e, "red", "203.0.113.7"), None);
    let public = e.ctl_ok(&["prefix", "lookup", "203.0.113.7"]);
    assert_eq!(public["toward_customer"][0]["pop"], "a", "{public}");

    // Adding it again undoes the removal.
    e.ctl_ok(&[
        "prefix",
        "add",
        "--domain",
        "red",
        "198.18.0.0/24",
        "--pop",
        "red-onprem",
    ]);
    assert_eq!(
        pop_for(&e, "red", "198.18.0.9").as_deref(),
        Some("red-onprem")
    );
    e.teardown();
}
