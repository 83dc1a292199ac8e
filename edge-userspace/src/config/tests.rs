use std::{path::PathBuf, time::Duration};

use super::*;
use crate::plan::*;

const GOOD: &str = r#"
[daemon]
pin_path = "/sys/fs/bpf/test"
xdp_mode = "generic"

[forwarding]
default_action = "drop"
backbone_exit = "core"
transit_exit = "isp"

[[ports]]
interface = "peer0"
role = "peering"

[[ports]]
interface = "bb0"
role = "backbone"

[[ports]]
interface = "tr0"
role = "transit"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:0a:01"

[[pops]]
name = "isp"
interface = "tr0"
mac = "02:00:00:00:0b:01"

[[pops]]
name = "ams"
interface = "bb0"
mac = "02:00:00:00:0c:01"
encap_ipv4 = { source = "198.51.100.1", destination = "203.0.113.1" }

[[policies]]
name = "eu"
method = "weighted"
members = [{ pop = "ams", weight = 3 }, { pop = "core", weight = 1 }]

[[prefixes]]
prefix = "203.0.113.0/24"
registration = "contoso"
policy = "eu"
dscp = "af41"
protect = ["peer0"]

[[prefixes]]
prefix = "2001:db8:b::/48"
preference = "internet"
dscp = 46

[[prefixes]]
prefix = "198.51.100.0/24"
pop = "ams"
"#;

pub(super) fn problems(text: &str) -> Vec<String> {
    parse(text)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn good_config_resolves_names() {
    let plan = parse(GOOD).unwrap();
    assert_eq!(plan.pin_path, PathBuf::from("/sys/fs/bpf/test"));
    assert_eq!(plan.xdp_mode, XdpMode::Generic);
    assert_eq!(plan.default_action, DefaultAction::Drop);
    let exit =
        |e: Option<Exit>| e.map(|e| (plan.policies[e.policy as usize].name.clone(), e.fallback));
    assert_eq!(
        (exit(plan.backbone_exit), exit(plan.transit_exit)),
        (
            Some(("pop:core".into(), Fallback::Transit)),
            Some(("pop:isp".into(), Fallback::Pass))
        )
    );
    assert_eq!(
        plan.ports[2],
        PlannedPort {
            name: "tr0".into(),
            interface: "tr0".into(),
            role: Role::Transit,
            vlan: vec![],
            domain: None,
        }
    );
    assert_eq!(
        plan.pops[2].encap_ipv4,
        Some((
            "198.51.100.1".parse().unwrap(),
            "203.0.113.1".parse().unwrap()
        ))
    );
    assert_eq!(
        plan.policies[0].members,
        vec![Member::pop(2, 3, 1), Member::pop(0, 1, 2)]
    );
    let p = &plan.prefixes[0];
    assert_eq!(
        (
            p.registration.as_str(),
            p.policy,
            p.dscp,
            p.protect.as_slice()
        ),
        ("contoso", Some(0), Some(34), &[0][..])
    );
    let p = &plan.prefixes[1];
    assert_eq!(
        (p.preference, p.policy, p.dscp),
        (Preference::Internet, None, Some(46))
    );
    // `pop = "ams"` became a single-member priority policy.
    let ams = &plan.policies[plan.prefixes[2].policy.unwrap() as usize];
    assert_eq!(
        (ams.name.as_str(), ams.method),
        ("pop:ams", Method::Priority)
    );
}

#[test]
fn defaults_apply() {
    let plan = parse("").unwrap();
    assert_eq!(plan.pin_path, PathBuf::from(DEFAULT_PIN_PATH));
    assert_eq!(plan.xdp_mode, XdpMode::Auto);
    assert_eq!(plan.default_action, DefaultAction::Pass);
    assert_eq!(plan.encap_ttl, 64);
    assert_eq!(
        plan.metrics_address,
        Some("127.0.0.1:9477".parse().unwrap())
    );
    assert_eq!(
        parse("[daemon]\nmetrics_address = \"\"")
            .unwrap()
            .metrics_address,
        None
    );
    assert_eq!(
        problems("[daemon]\nmetrics_address = \"localhost\""),
        ["line 2: metrics_address \"localhost\" is not an IP:port"]
    );
}

#[test]
fn dscp_names() {
    for (name, value) in [
        ("ef", 46),
        ("AF41", 34),
        ("af11", 10),
        ("af43", 38),
        ("cs1", 8),
        ("cs7", 56),
        ("be", 0),
        ("le", 1),
    ] {
        assert_eq!(dscp_by_name(name), Some(value), "{name}");
    }
    for bad in ["af44", "af51", "cs8", "gold", "af1"] {
        assert_eq!(dscp_by_name(bad), None, "{bad}");
    }
}

#[test]
fn unknown_key_is_reported_with_its_line() {
    let p = problems("[daemon]\npin_path = \"/x\"\ncolour = 1\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("line 3: unknown field `colour`"), "{p:?}");
}

/// A TOML error (syntax, an unknown key, a value of the wrong type) no
/// longer hides the file's other problems: each table's first one, then
/// what validating the rest finds, all by line.
#[test]
fn a_toml_error_hides_no_other_problem() {
    let text = GOOD
        .replace("xdp_mode = \"generic\"", "xdp_mode = generic")
        .replace(
            "mac = \"02:00:00:00:0b:01\"",
            "mac = \"02:00:00:00:0b:01\"\ncolour = 1",
        )
        .replace(
            "method = \"weighted\"",
            "method = \"weighted\"\nhysteresis_ms = \"5\"",
        )
        .replace("203.0.113.0/24", "203.0.113.1/24");
    let p = problems(&text);
    assert_eq!(p.len(), 4, "{p:#?}");
    assert_eq!(
        p[0],
        "line 4: string values must be quoted, expected literal string"
    );
    assert!(
        p[1].starts_with("line 32: unknown field `colour`"),
        "{p:#?}"
    );
    assert!(
        p[2].starts_with("line 43: invalid type: string \"5\""),
        "{p:#?}"
    );
    assert_eq!(
        p[3],
        "line 47: prefix 203.0.113.1/24 has host bits set (did you mean 203.0.113.0/24?)"
    );
    // A table whose error cannot be put aside on its own line (a syntax
    // error inside it) is left out whole; what names it is reported too.
    let text = GOOD.replace(
        "name = \"isp\"\ninterface",
        "name = \"isp\"\ninterface = = 1\nx",
    );
    let p = problems(&text);
    assert_eq!(
        p,
        [
            "line 9: transit_exit: unknown PoP or policy \"isp\"",
            "line 30: extra `=`, expected nothing"
        ]
    );
    // An error after text that is not ASCII, on the line of a table that
    // is then left out: that one problem.
    let text = GOOD.replace(
        "registration = \"contoso\"",
        "registration = \"café 🙂\" colour",
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].starts_with("line 46: "), "{p:#?}");
    // An unclosed string runs to the end: one problem.
    let text = GOOD.replace("registration = \"contoso\"", "registration = \"contoso");
    assert_eq!(problems(&text).len(), 1, "{:#?}", problems(&text));
    // Many errors: the first 20, and a word that there may be more.
    let mut text = GOOD.to_string();
    for i in 0..30 {
        text += &format!("\n[[ports]]\ninterface = \"x{i}\"\nrole = \"peering\"\ncolour = {i}\n");
    }
    let p = problems(&text);
    assert_eq!(p.len(), 21, "{p:#?}");
    assert!(p[20].contains("and maybe more"), "{p:#?}");
}

#[test]
fn every_semantic_problem_is_reported_with_its_line() {
    let text = GOOD
        .replace("203.0.113.0/24", "203.0.113.1/24")
        .replace("weight = 3", "weight = 0")
        .replace("dscp = 46", "dscp = 64")
        .replace("02:00:00:00:0b:01", "02:00:00:zz:0b:01")
        .replace("protect = [\"peer0\"]", "protect = [\"bb0\", \"nope\"]")
        .replace(
            "destination = \"203.0.113.1\"",
            "destination = \"2001:db8::1\"",
        );
    assert_eq!(
        problems(&text),
        vec![
            "line 31: PoP isp: bad MAC \"02:00:00:zz:0b:01\": Unexpected character 'z' at position 10",
            "line 37: PoP ams: encap_ipv4 needs a source and destination of the right address family",
            "line 42: policy eu: weight 0 is outside 1-1000",
            "line 45: prefix 203.0.113.1/24 has host bits set (did you mean 203.0.113.0/24?)",
            "line 54: prefix 2001:db8:b::/48: DSCP 64 is outside 0-63",
        ]
    );
    let text = GOOD.replace("protect = [\"peer0\"]", "protect = [\"bb0\", \"nope\"]");
    assert_eq!(
        problems(&text),
        vec![
            "line 49: prefix 203.0.113.0/24: protect names bb0, which is not a peering port",
            "line 49: prefix 203.0.113.0/24: protect names unknown port \"nope\"",
        ]
    );
}

#[test]
fn duplicates_and_unknown_names() {
    let text = format!(
        "{GOOD}\n[[prefixes]]\nprefix = \"203.0.113.0/24\"\npop = \"ams\"\n\n[[prefixes]]\nprefix = \"192.0.2.0/24\"\npolicy = \"nyc\"\n\n[[pops]]\nname = \"ams\"\ninterface = \"eth9\"\nmac = \"01:00:5e:00:00:01\"\n"
    );
    assert_eq!(
        problems(&text),
        vec![
            "line 61: prefix 203.0.113.0/24 is already registered on line 45",
            "line 66: prefix 192.0.2.0/24: unknown policy \"nyc\"",
            "line 69: PoP ams is defined twice",
            "line 70: PoP ams: interface eth9 is not a listed port",
            "line 71: PoP ams: MAC 01:00:5E:00:00:01 is not a unicast address",
        ]
    );
}

#[test]
fn exits_are_required_where_traffic_needs_them() {
    let text = GOOD
        .replace("backbone_exit = \"core\"\n", "")
        .replace("transit_exit = \"isp\"\n", "");
    assert_eq!(
        problems(&text),
        vec![
            "[forwarding] backbone_exit is required: peering ports carry microsoft-preference prefixes",
            "[forwarding] transit_exit is required: some prefixes have the internet preference",
        ]
    );
}

#[test]
fn bad_prefix_text() {
    let p = problems("[[prefixes]]\nprefix = \"203.0.113.0/33\"\npop = \"x\"\n");
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("line 2: bad prefix \"203.0.113.0/33\""),
        "{p:?}"
    );
}

const HEALTH: &str = r#"
[forwarding]
backbone_exit = "core"
transit_exit = "isp"

[[ports]]
interface = "bb0"
role = "backbone"

[[ports]]
interface = "tr0"
role = "transit"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:0a:01"
region = "world > europe > ie"
probe = { type = "icmp", address = "203.0.113.1" }

[[pops]]
name = "isp"
interface = "tr0"
mac = "02:00:00:00:0b:01"
probe = { type = "http", address = "2001:db8::1", path = "/health", status = 204, interval_ms = 2000, timeout_ms = 1000, rise = 1, fall = 5, interface = "" }

[[pops]]
name = "ams"
interface = "bb0"
mac = "02:00:00:00:0c:01"
region = "world > Europe > NL"

[pops.probe]
type = "udp"
address = "198.51.100.7"
port = 7
interval_ms = 200

[[policies]]
name = "eu"
method = "performance"
members = [{ pop = "core" }, { pop = "ams" }]
hysteresis_ms = 8
hysteresis_percent = 15
fallback = "pass"

[[policies]]
name = "geo"
method = "geographic"
members = [{ policy = "eu", region = "world > europe" }, { pop = "isp", region = "world", weight = 2 }]

[[policies]]
name = "sites"
method = "subnet"
members = [{ pop = "ams", subnets = ["192.0.2.0/26", "2001:db8:5::/48"] }, { policy = "geo" }]

[[prefixes]]
prefix = "192.0.2.0/24"
policy = "sites"
region = "world > europe > fr"
"#;

#[test]
fn health_and_method_keys_resolve() {
    let plan = parse(HEALTH).unwrap_or_else(|e| panic!("{e}"));
    let core = &plan.pops[0];
    assert_eq!(
        core.region,
        Some(Region::parse("world > europe > ie").unwrap())
    );
    assert_eq!(
        core.probe,
        Some(Probe {
            kind: ProbeKind::Icmp,
            address: "203.0.113.1".parse().unwrap(),
            device: Some("bb0".into()),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            rise: 2,
            fall: 3,
        }),
        "defaults: the PoP's interface, 1 s / 500 ms / 2 / 3"
    );
    let isp = plan.pops[1].probe.as_ref().unwrap();
    assert_eq!(
        (
            isp.kind.clone(),
            isp.device.as_deref(),
            isp.interval,
            isp.timeout,
            isp.rise,
            isp.fall
        ),
        (
            ProbeKind::Http {
                port: 80,
                path: "/health".into(),
                host: None,
                status: 204
            },
            None,
            Duration::from_secs(2),
            Duration::from_secs(1),
            1,
            5
        )
    );
    let ams = plan.pops[2].probe.as_ref().unwrap();
    assert_eq!(
        ams.kind,
        ProbeKind::Udp {
            port: 7,
            payload: DEFAULT_UDP_PAYLOAD.as_bytes().to_vec()
        }
    );
    // A short interval shortens the default timeout.
    assert_eq!(
        (ams.interval, ams.timeout),
        (Duration::from_millis(200), Duration::from_millis(200))
    );
    assert_eq!(
        plan.pops[2].region.as_ref().unwrap().to_string(),
        "world > europe > nl"
    );

    let eu = &plan.policies[0];
    assert_eq!(eu.method, Method::Performance);
    assert_eq!(eu.fallback, Fallback::Pass);
    assert_eq!(
        eu.hysteresis,
        Hysteresis {
            absolute: Duration::from_millis(8),
            percent: 15
        }
    );
    let geo = &plan.policies[1];
    assert_eq!(
        geo.fallback,
        Fallback::Transit,
        "default with a transit exit"
    );
    assert_eq!(geo.members[0].target, Target::Policy(0));
    assert_eq!(
        geo.members[0].region,
        Some(Region::parse("world>europe").unwrap())
    );
    assert_eq!(
        (geo.members[1].target, geo.members[1].weight),
        (Target::Pop(1), 2)
    );
    let sites = &plan.policies[2];
    assert_eq!(
        sites.members[0].subnets,
        vec![
            "192.0.2.0/26".parse::<IpNet>().unwrap(),
            "2001:db8:5::/48".parse().unwrap()
        ]
    );
    assert!(sites.members[1].subnets.is_empty());
    assert_eq!(
        plan.prefixes[0].region,
        Some(Region(vec!["world".into(), "europe".into(), "fr".into()]))
    );
}

#[test]
fn regions_parse_and_nest() {
    let ie = Region::parse(" World >europe> IE ").unwrap();
    assert_eq!(ie.to_string(), "world > europe > ie");
    assert!(ie.within(&Region::parse("world > europe").unwrap()));
    assert!(ie.within(&Region::default()));
    assert!(!ie.within(&Region::parse("world > eu").unwrap()));
    assert_eq!(
        ie.lineage().map(|r| r.to_string()).collect::<Vec<_>>(),
        ["world > europe > ie", "world > europe", "world", "(root)"]
    );
    assert!(Region::parse("world >> ie").is_err());
    assert!(Region::parse("").is_err());
    assert!(Region::parse("world > new york").is_err());
}

#[test]
fn health_and_method_problems_are_reported_with_their_lines() {
    let text = HEALTH
        .replace(
            "address = \"203.0.113.1\"",
            "address = \"203.0.113.1\", port = 7",
        )
        .replace("status = 204", "status = 700")
        .replace("timeout_ms = 1000", "timeout_ms = 3000")
        .replace("rise = 1", "rise = 0")
        .replace(
            "region = \"world > Europe > NL\"",
            "region = \"world > > nl\"",
        )
        .replace("port = 7\ninterval_ms = 200", "interval_ms = 20")
        .replace("hysteresis_ms = 8", "hysteresis_ms = -1")
        .replace("region = \"world\", weight = 2", "weight = 2")
        .replace("\"192.0.2.0/26\"", "\"192.0.2.1/26\"")
        .replace("{ policy = \"geo\" }", "{ policy = \"nowhere\" }")
        .replace("region = \"world > europe > fr\"", "region = \"world/fr\"");
    assert_eq!(
        problems(&text),
        vec![
            "line 19: PoP core: probe: `port` does not apply to a icmp probe",
            "line 25: PoP isp: probe: status 700 is outside 100-599",
            "line 25: PoP isp: probe: timeout_ms 3000 is longer than interval_ms 2000",
            "line 25: PoP isp: probe: rise 0 is outside 1-100",
            "line 31: PoP ams: region \"world > > nl\" has an empty segment",
            "line 33: PoP ams: probe: a udp probe needs a port",
            "line 36: PoP ams: probe: interval_ms 20 is outside 50-600000",
            "line 42: policy eu: hysteresis_ms -1 is outside 0-10000",
            "line 49: policy geo: member isp has no region (give the member or its PoP a region)",
            "line 54: policy sites: subnet 192.0.2.1/26 has host bits set (did you mean 192.0.2.0/26?)",
            "line 54: policy sites: unknown member policy \"nowhere\"",
            "line 59: prefix 192.0.2.0/24: region \"world/fr\": segment \"world/fr\" may only hold letters, digits, `-` and `_`",
        ]
    );
}

#[test]
fn method_specific_keys_and_member_shapes_are_checked() {
    let text = HEALTH
            .replace(
                "members = [{ pop = \"core\" }, { pop = \"ams\" }]",
                "members = [{ pop = \"core\", region = \"world\" }, { pop = \"ams\", policy = \"geo\" }, { pop = \"core\" }]",
            )
            .replace("{ policy = \"geo\" }]", "{ policy = \"geo\" }, { pop = \"core\" }]")
            .replace("prefix = \"192.0.2.0/24\"", "prefix = \"192.0.2.0/24\"\npop = \"core\"");
    assert_eq!(
        problems(&text),
        vec![
            "line 42: policy eu: a member region applies to the geographic method only",
            "line 42: policy eu: a member names either a pop or a policy",
            "line 42: policy eu: core is a member twice",
            "line 55: policy sites: a subnet policy needs exactly one member without subnets (the fallback member), not 2",
            "line 59: prefix 192.0.2.0/24: give either policy or pop, not both",
        ]
    );
    let text = HEALTH
        .replace("hysteresis_ms = 8\nhysteresis_percent = 15\n", "")
        .replace(
            "method = \"geographic\"",
            "method = \"geographic\"\nhysteresis_percent = 5",
        )
        .replace(
            "subnets = [\"192.0.2.0/26\", \"2001:db8:5::/48\"]",
            "subnets = []",
        )
        .replace(
            "{ policy = \"eu\", region",
            "{ policy = \"eu\", subnets = [\"10.0.0.0/8\"], region",
        );
    assert_eq!(
        problems(&text),
        vec![
            "line 48: policy geo: hysteresis_percent applies to the performance method only",
            "line 49: policy geo: subnets apply to the subnet method only",
            "line 54: policy sites: empty subnets (leave the key out for the fallback member)",
        ]
    );
}

#[test]
fn nested_policies_may_not_loop_or_nest_a_subnet_policy() {
    let text = format!(
        "{HEALTH}\n[[policies]]\nname = \"a\"\nmethod = \"priority\"\nmembers = [{{ policy = \"b\" }}]\n\n[[policies]]\nname = \"b\"\nmethod = \"weighted\"\nmembers = [{{ pop = \"core\" }}, {{ policy = \"c\" }}]\n\n[[policies]]\nname = \"c\"\nmethod = \"priority\"\nmembers = [{{ policy = \"a\" }}, {{ policy = \"sites\" }}]\n\n[[policies]]\nname = \"self\"\nmethod = \"priority\"\nmembers = [{{ policy = \"self\" }}]\n"
    );
    assert_eq!(
        problems(&text),
        vec![
            "line 63: policy a: nested policies form a cycle: a > b > c > a",
            "line 75: policy c: subnet policy sites cannot be a member (it maps customer addresses, which only a prefix has)",
            "line 78: policy self: nested policies form a cycle: self > self",
        ]
    );
}

#[test]
fn explicit_transit_fallback_needs_a_transit_exit() {
    let text = HEALTH
        .replace("transit_exit = \"isp\"\n", "")
        .replace("fallback = \"pass\"", "fallback = \"transit\"");
    assert_eq!(
        problems(&text),
        ["line 44: policy eu: fallback = \"transit\" needs [forwarding] transit_exit"]
    );
}

#[test]
fn the_documented_example_is_valid() {
    let doc = include_str!("../../../docs/config.md");
    let example = doc
        .split("### Example\n\n```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/config.md has an example");
    let text = format!(
        "[[ports]]\ninterface = \"bb0\"\nrole = \"backbone\"\n\n[[ports]]\ninterface = \"bb1\"\nrole = \"backbone\"\n{example}"
    );
    let plan = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let layout = crate::policy::Layout::new(&plan);
    assert_eq!(layout.more_specific.len(), 1);
    assert_eq!(
        layout.table_of(0).unwrap().to_string(),
        "by-site [world > europe > fr] [policy:near]"
    );
}

mod shipped_example {
    /// dist/edge.toml, the complete example, is a valid config that uses
    /// every section.
    #[test]
    fn the_complete_example_is_valid() {
        let text = include_str!("../../../dist/edge.toml");
        let plan = super::parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.ports.len(), 7);
        assert_eq!(plan.ports.iter().filter(|p| !p.vlan.is_empty()).count(), 3);
        assert_eq!(plan.domains, ["woodgrove-private"]);
        assert_eq!(plan.pops.len(), 9);
        assert!(plan.pops.iter().filter(|p| p.probe.is_some()).count() == 5);
        assert!(plan.pops.iter().any(|p| p.next_hop.is_some()));
        assert!(
            plan.pops
                .iter()
                .any(|p| p.vlan == crate::plan::EgressVlan::Push(3000))
        );
        assert_eq!(plan.route_sources.len(), 2);
        assert_eq!(plan.prefixes.len(), 7);
        assert_eq!(plan.domain_prefixes.len(), 2);
        assert_eq!(plan.registrations.len(), 2);
        assert!(plan.bmp_listen.is_some());
        for section in [
            "[daemon]",
            "[limits]",
            "[forwarding]",
            "[[domains]]",
            "[[ports]]",
            "[[pops]]",
            "[[policies]]",
            "[[prefixes]]",
            "[[route_sources]]",
            "[bmp]",
            "[[registrations]]",
        ] {
            assert!(text.contains(section), "{section}");
        }
    }
}

mod live_values {
    //! Live changes merge as values keyed by the parsed network.

    use super::*;

    fn spec(prefix: &str) -> PrefixSpec {
        PrefixSpec {
            prefix: prefix.into(),
            pop: Some("core".into()),
            ..PrefixSpec::default()
        }
    }

    const BASE: &str = r#"
[[ports]]
interface = "bb0"
role = "backbone"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:00:01"

[[prefixes]]
prefix = "2001:db8:a::/48"
pop = "core"

[[prefixes]]
prefix = "198.51.100.0/24"
pop = "core"
"#;

    #[test]
    fn removing_a_config_prefix_needs_no_live_add_first() {
        let live = Live {
            added: vec![],
            removed: vec!["198.51.100.0/24".parse().unwrap()],
            removed_private: Vec::new(),
        };
        let plan = parse_with(BASE, &live).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.prefixes.len(), 1);
        assert!(plan.stale_removals.is_empty());
    }

    /// A live removal of a network the file no longer registers is stale
    /// (found by the change pipeline's random walk: kept, it made a later
    /// live add of that network a "file" entry the file does not have).
    #[test]
    fn a_removal_the_file_no_longer_matches_is_stale() {
        let live = Live {
            added: vec![],
            removed: vec![
                "198.51.100.0/24".parse().unwrap(),
                "203.0.113.0/24".parse().unwrap(),
            ],
            removed_private: Vec::new(),
        };
        let plan = parse_with(BASE, &live).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.prefixes.len(), 1);
        let stale: Vec<String> = plan.stale_removals.iter().map(|n| n.to_string()).collect();
        assert_eq!(stale, ["203.0.113.0/24"]);
    }

    #[test]
    fn a_network_spelled_in_capitals_replaces_the_file_entry() {
        let live = Live {
            added: vec![spec("2001:DB8:A::/48")],
            removed: vec![],
            removed_private: Vec::new(),
        };
        let plan = parse_with(BASE, &live).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.prefixes.len(), 2);
        let replaced = plan
            .prefixes
            .iter()
            .find(|p| p.net == "2001:db8:a::/48".parse::<IpNet>().unwrap())
            .unwrap();
        assert_eq!(replaced.origin, Origin::Live);
    }

    #[test]
    fn an_inline_prefixes_array_takes_live_adds() {
        let inline = r#"
prefixes = [{ prefix = "198.51.100.0/24", pop = "core" }]

[[ports]]
interface = "bb0"
role = "backbone"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:00:01"
"#;
        let live = Live {
            added: vec![spec("203.0.113.0/24")],
            removed: vec![],
            removed_private: Vec::new(),
        };
        let plan = parse_with(inline, &live).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.prefixes.len(), 2);
    }

    /// A live prefix's region is checked as the file's `region` is, by
    /// the whole validation and by the live one, in the same words.
    #[test]
    fn a_live_region_is_validated_like_the_files() {
        let with = |region: &str| Live {
            added: vec![PrefixSpec {
                region: Some(region.into()),
                ..spec("203.0.113.0/24")
            }],
            removed: vec![],
            removed_private: Vec::new(),
        };
        let plan = parse_with(BASE, &with("World > Europe > IE")).unwrap_or_else(|e| panic!("{e}"));
        let p = plan
            .prefixes
            .iter()
            .find(|p| p.origin == Origin::Live)
            .unwrap();
        assert_eq!(
            p.region.as_ref().map(ToString::to_string).as_deref(),
            Some("world > europe > ie")
        );
        let in_file = BASE.to_string()
            + "\n[[prefixes]]\nprefix = \"203.0.113.0/24\"\npop = \"core\"\nregion = \"world > > ie\"\n";
        let file = parse(&in_file).unwrap_err();
        let whole = parse_with(BASE, &with("world > > ie")).unwrap_err();
        let base = parse(BASE).unwrap();
        let live = validate_live(&base, &with("world > > ie").added, &|_| false, None).unwrap_err();
        assert_eq!(whole.0.len(), 1, "{whole}");
        assert_eq!(
            whole.0[0].message,
            format!("live change: {}", file.0[0].message),
            "{whole} / {file}"
        );
        assert_eq!(whole.0, live.0);
        assert!(file.0[0].message.contains("empty segment"), "{file}");
    }

    #[test]
    fn problems_in_live_changes_carry_no_line() {
        let live = Live {
            added: vec![
                spec("203.0.113.0/24"),
                PrefixSpec {
                    pop: Some("nowhere".into()),
                    ..spec("192.0.2.0/24")
                },
                PrefixSpec {
                    preference: Some("cold".into()),
                    ..spec("192.0.2.128/25")
                },
            ],
            removed: vec![],
            removed_private: Vec::new(),
        };
        let e = parse_with(BASE, &live).unwrap_err();
        assert!(e.0.iter().all(|p| p.line.is_none()), "{e}");
        assert!(e.0[0].message.starts_with("live change:"), "{e}");
        assert!(e.0[0].message.contains("cold"), "{e}");
        let dup = Live {
            added: vec![spec("203.0.113.0/24"), spec("203.0.113.0/24")],
            removed: vec![],
            removed_private: Vec::new(),
        };
        let e = parse_with(BASE, &dup).unwrap_err();
        assert!(
            e.to_string()
                .contains("already registered by a live change"),
            "{e}"
        );
        assert!(e.0.iter().all(|p| p.line.is_none()), "{e}");
    }
}

#[test]
fn too_many_region_tables_are_refused() {
    let mut text = HEALTH.to_string();
    for i in 0..300 {
        text.push_str(&format!(
                "\n[[prefixes]]\nprefix = \"10.{}.{}.0/24\"\npolicy = \"geo\"\nregion = \"world > r{i}\"\n",
                i / 256,
                i % 256
            ));
    }
    // Valid as a file; refused when laid out (once per change, by compile).
    let plan = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let Err(invalid) = crate::desired::layout(&plan) else {
        panic!("304 tables laid out");
    };
    let problems: Vec<String> = invalid.0.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        problems,
        [
            "304 selection tables (policies × prefix regions × subnet members) exceed the limit of 256"
        ]
    );
}

#[test]
fn exits_take_a_pop_or_a_policy_with_a_checked_fallback() {
    let with = |fwd: &str, extra: &str| {
        GOOD.replace(
            "backbone_exit = \"core\"\ntransit_exit = \"isp\"\n",
            &format!("{fwd}\n"),
        ) + extra
    };
    // A policy as an exit, with the other exit as its fallback.
    let plan = parse(&with(
        "backbone_exit = \"eu\"\nbackbone_exit_fallback = \"pass\"\ntransit_exit = \"pop:isp\"\ntransit_exit_fallback = \"backbone\"",
        "",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let (b, t) = (plan.backbone_exit.unwrap(), plan.transit_exit.unwrap());
    assert_eq!(plan.policies[b.policy as usize].name, "eu");
    assert_eq!(b.fallback, Fallback::Pass);
    assert_eq!(plan.policies[t.policy as usize].name, "pop:isp");
    assert_eq!(t.fallback, Fallback::Backbone);

    let cases = [
        (
            with(
                "backbone_exit = [\"core\", \"ams\"]\ntransit_exit = \"isp\"",
                "",
            ),
            "line 8: an exit is one name, not a list: for several PoPs, name a [[policies]] entry that lists them (method priority or weighted)",
        ),
        (
            with("backbone_exit = \"nowhere\"\ntransit_exit = \"isp\"", ""),
            "line 8: backbone_exit: unknown PoP or policy \"nowhere\"",
        ),
        (
            with(
                "backbone_exit = \"core\"\ntransit_exit = \"isp\"",
                "\n[[policies]]\nname = \"core\"\nmethod = \"priority\"\nmembers = [{ pop = \"ams\" }]\n",
            ),
            "line 8: backbone_exit: \"core\" is both a PoP and a policy; write \"pop:core\" for the PoP, or rename one",
        ),
        (
            with(
                "backbone_exit = \"core\"\ntransit_exit = \"isp\"\ntransit_exit_fallback = \"transit\"",
                "",
            ),
            "line 10: transit_exit_fallback is \"backbone\" or \"pass\", not \"transit\"",
        ),
        (
            with(
                "backbone_exit = \"core\"\nbackbone_exit_fallback = \"transit\"",
                "",
            ),
            "line 9: backbone_exit_fallback = \"transit\" needs [forwarding] transit_exit",
        ),
        (
            with(
                "transit_exit = \"isp\"\nbackbone_exit_fallback = \"pass\"",
                "",
            ),
            "line 9: [forwarding] backbone_exit_fallback without backbone_exit",
        ),
        (
            with(
                "backbone_exit = \"sites\"\ntransit_exit = \"isp\"",
                "\n[[policies]]\nname = \"sites\"\nmethod = \"subnet\"\nmembers = [{ pop = \"ams\", subnets = [\"192.0.2.0/26\"] }, { pop = \"core\" }]\n",
            ),
            "line 8: backbone_exit: policy \"sites\" is a subnet policy, which maps customer addresses; an exit needs another method",
        ),
        (
            with(
                "backbone_exit = \"core\"\ntransit_exit = \"isp\"",
                "\n[[policies]]\nname = \"bb\"\nmethod = \"priority\"\nmembers = [{ pop = \"ams\" }]\nfallback = \"backbone\"\n",
            ),
            "fallback is \"transit\" or \"pass\" (only transit_exit_fallback may be \"backbone\")",
        ),
    ];
    for (text, want) in cases {
        let got = problems(&text);
        assert!(
            got.iter().any(|p| p.contains(want)),
            "want {want:?} in {got:?}"
        );
    }
}

#[test]
fn martian_prefixes_are_refused_with_their_range() {
    for (net, range) in [
        ("127.0.0.0/8", "127.0.0.0/8 (loopback)"),
        ("224.1.0.0/16", "224.0.0.0/4 (multicast)"),
        ("fe80::/64", "fe80::/10 (link-local)"),
        (
            "::ffff:192.0.2.0/120",
            "::ffff:0.0.0.0/96 (IPv4-mapped (RFC 4291))",
        ),
    ] {
        let text = format!("{GOOD}\n[[prefixes]]\nprefix = \"{net}\"\npop = \"ams\"\n");
        let got = problems(&text);
        let want = format!("prefix {net} lies in {range}, which no router forwards");
        assert!(got.iter().any(|p| p.contains(&want)), "{want:?} in {got:?}");
    }
    // A default route contains them all and is fine.
    let text = format!("{GOOD}\n[[prefixes]]\nprefix = \"0.0.0.0/0\"\npop = \"ams\"\n");
    parse(&text).unwrap_or_else(|e| panic!("{e}"));
}

mod limit_keys {
    //! Messages about a full prefix map name the `[limits]` key that sizes
    //! it, spelled as docs/config.md spells it (issue 15).

    use super::*;

    #[test]
    fn every_limit_key_is_the_documented_one() {
        let doc = include_str!("../../../docs/config.md");
        for (key, _) in LIMIT_KEYS {
            assert!(
                doc.contains(&format!("| `{key}` |")),
                "{key} is not in docs/config.md"
            );
            // And the config takes it.
            let text = GOOD.replace(
                "[forwarding]",
                &format!("[limits]\n{key} = 1000\n\n[forwarding]"),
            );
            parse(&text).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }

    #[test]
    fn a_full_prefix_map_names_its_limit_key() {
        let v4 = GOOD.replace("[forwarding]", "[limits]\nprefixes_v4 = 1\n\n[forwarding]");
        let p = problems(&v4);
        assert!(
            p.iter()
                .any(|p| p.contains("EDGE_PFX_V4 is full") && p.contains("[limits] prefixes_v4)")),
            "{p:?}"
        );
        let v6 = format!(
            "{}\n[[prefixes]]\nprefix = \"2001:db8:1::/48\"\npop = \"ams\"\n\n[[prefixes]]\nprefix = \"2001:db8:2::/48\"\npop = \"ams\"\n",
            GOOD.replace("[forwarding]", "[limits]\nprefixes_v6 = 1\n\n[forwarding]")
        );
        let p = problems(&v6);
        assert!(
            p.iter()
                .any(|p| p.contains("EDGE_PFX_V6 is full") && p.contains("[limits] prefixes_v6)")),
            "{p:?}"
        );
        for map in [
            edge_common::map_names::PREFIX_V4,
            edge_common::map_names::PREFIX_V6,
        ] {
            let key = limit_key(map).unwrap();
            let kernel = crate::dataplane::MapsError::MapFull { map, limit: 7 }.to_string();
            assert!(kernel.contains(&format!("[limits] {key}")), "{kernel}");
        }
        assert_eq!(limit_key(edge_common::map_names::POPS), None);
    }
}

mod reading {
    //! How the file is read (issue 15): bytes that are not UTF-8 are a
    //! problem of the file with its line; the reload guard's keys.

    use super::*;

    #[test]
    fn bytes_that_are_not_utf8_are_a_problem_with_their_line_and_column() {
        let mut bytes = b"[daemon]\nxdp_mode = \"auto\"\n# caf\xc3\xa9 ok\n".to_vec();
        bytes.extend_from_slice(b"# \xc3\xa9\xff bad\n[forwarding]\n");
        let Invalid(p) = decode(bytes).unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, Some(4), "{p:?}");
        // Column in characters (é is one), byte offset in the file.
        assert!(
            p[0].message
                .starts_with("column 4 (byte 42 of the file, 0xff): not UTF-8"),
            "{}",
            p[0]
        );
        assert!(!p[0].map_full);
        // At the very start, and UTF-8 passes through.
        let Invalid(p) = decode(vec![0xfe, b'\n']).unwrap_err();
        assert_eq!(
            (p[0].line, p[0].message.starts_with("column 1 (byte 0")),
            (Some(1), true)
        );
        assert_eq!(decode("é\n".as_bytes().to_vec()).unwrap(), "é\n");
    }

    #[test]
    fn read_file_names_the_file_and_keeps_the_problem_for_the_exit_code() {
        let path = std::env::temp_dir().join(format!("edge-utf8-{}.toml", std::process::id()));
        std::fs::write(&path, b"[daemon]\n\xff\n").unwrap();
        let e = read_file(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        let text = format!("{e:#}");
        assert!(
            text.contains(&format!("config {}", path.display())),
            "{text}"
        );
        assert!(text.contains("line 2: column 1"), "{text}");
        assert!(
            e.chain().any(|c| c.downcast_ref::<Invalid>().is_some()),
            "{text}"
        );
        let missing = read_file(&path).unwrap_err();
        assert!(
            missing
                .chain()
                .all(|c| c.downcast_ref::<Invalid>().is_none())
        );
    }

    #[test]
    fn the_reload_guard_keys() {
        assert_eq!(parse(GOOD).unwrap().reload, ReloadGuard::default());
        assert_eq!(
            ReloadGuard::default(),
            ReloadGuard {
                settle: Duration::from_millis(1000),
                max_shrink_percent: 50
            }
        );
        let text = GOOD.replace(
            "xdp_mode = \"generic\"",
            "xdp_mode = \"generic\"\nreload_settle_ms = 250\nreload_max_shrink_percent = 100",
        );
        let plan = parse(&text).unwrap();
        assert_eq!(
            plan.reload,
            ReloadGuard {
                settle: Duration::from_millis(250),
                max_shrink_percent: 100
            }
        );
        // Out of range: problems with their lines, among the others.
        let text = GOOD.replace(
            "xdp_mode = \"generic\"",
            "xdp_mode = \"generic\"\nreload_settle_ms = 60001\nreload_max_shrink_percent = -1",
        ).replace("interface = \"tr0\"\nrole = \"transit\"", "interface = \"tr0\"\nrole = \"transit\"\n\n[[ports]]\ninterface = \"tr0\"\nrole = \"transit\"");
        let p = problems(&text);
        assert!(
            p[0].starts_with("line 5: [daemon] reload_settle_ms 60001 is outside 0-60000"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("line 6: [daemon] reload_max_shrink_percent -1 is outside 0-100"),
            "{p:?}"
        );
        assert!(p.len() > 2 && p[2].contains("tr0"), "{p:?}");
    }
}

/// A value left open over several lines (an array not closed) runs into
/// the tables after it: the error is its table's, which is left out; the
/// problems of the later tables are still reported (found by a docs-only
/// lab check: every later table header was reported as a missing comma
/// and the real problems below were lost).
#[test]
fn a_value_left_open_over_lines_hides_no_later_problem() {
    let text = GOOD
        .replace(
            "members = [{ pop = \"ams\", weight = 3 }, { pop = \"core\", weight = 1 }]",
            "members = [{ pop = \"ams\", weight = 3 },\n  { pop = \"core\", weight = 1 },",
        )
        .replace("dscp = 46", "dscp = 99");
    let p = problems(&text);
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(
        p[0].contains("a value of the table from line 39 is not closed"),
        "{p:#?}"
    );
    // What only follows from the table left out, and the later table's own.
    assert!(p[1].contains("unknown policy \"eu\""), "{p:#?}");
    assert!(p[2].contains("99"), "{p:#?}");
}

#[test]
fn registrations_and_bmp_resolve() {
    let text = format!(
        "{GOOD}\n[bmp]\nlisten = \"127.0.0.1:11019\"\n\n[[registrations]]\nname = \"contoso\"\norigin_asns = [64500, 65536]\nupstream_asns = [64501]\n"
    );
    let plan = parse(&text).unwrap();
    assert_eq!(plan.bmp_listen, Some("127.0.0.1:11019".parse().unwrap()));
    assert_eq!(
        plan.registrations,
        [PlannedRegistration {
            name: "contoso".into(),
            origin_asns: vec![64500, 65536],
            upstream_asns: vec![64501],
            rtt_p90: None,
            hold_on_hijack: vec![],
            continent: None,
            scope: Scope::Continent,
        }]
    );
    // Neither is required.
    let plan = parse(GOOD).unwrap();
    assert_eq!(plan.bmp_listen, None);
    assert!(plan.registrations.is_empty());
}

#[test]
fn bad_registrations_are_reported_with_their_lines() {
    let base = GOOD.lines().count();
    let text = format!(
        "{GOOD}\n[bmp]\nlisten = \"localhost\"\n\n[[registrations]]\nname = \"contoso\"\norigin_asns = [0, 23456, 64500, 64500, 4294967296]\nupstream_asns = [-1]\n\n[[registrations]]\nname = \"contoso\"\norigin_asns = [64500]\n\n[[registrations]]\nname = \"nobody\"\norigin_asns = []\n"
    );
    let got = problems(&text);
    let line = |n: usize| format!("line {}", base + n);
    let want = [
        (line(3), "[bmp] listen \"localhost\" is not an IP:port"),
        (line(7), "origin_asns: 0 is not an ASN"),
        (line(7), "23456 is AS_TRANS"),
        (line(7), "64500 is listed twice"),
        (line(7), "4294967296 is not an ASN"),
        (line(8), "upstream_asns: -1 is not an ASN"),
        (line(11), "registration \"contoso\" is declared twice"),
        (line(15), "registration \"nobody\": no [[prefixes]] entry"),
        (line(16), "registration \"nobody\": origin_asns is empty"),
    ];
    for (l, m) in &want {
        assert!(
            got.iter().any(|p| p.contains(l.as_str()) && p.contains(m)),
            "no problem {m:?} at {l} in {got:#?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
}

#[test]
fn registrations_need_bmp() {
    let text = format!("{GOOD}\n[[registrations]]\nname = \"contoso\"\norigin_asns = [64500]\n");
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    // On the line of the registration's origin_asns (the last line).
    let line = text.lines().count();
    assert!(
        got[0].starts_with(&format!("line {line}: ")) && got[0].contains("add a [bmp] section"),
        "{got:?}"
    );
}

#[test]
fn latency_and_objectives_resolve() {
    let text = format!(
        "{GOOD}\n[latency]\nsample_interval_ms = 100\nperiod_ms = 1000\nretain_minutes = 30\nrtt_p90_ms = 120\nwindow_ms = 20000\nhold_ms = 5000\nmin_samples = 8\n\n[limits]\nrtt_flows = 1024\n\n[[registrations]]\nname = \"contoso\"\nrtt_p90_ms = 40\n"
    );
    let plan = parse(&text).unwrap();
    assert_eq!(
        plan.latency,
        Some(LatencyPlan {
            sample_interval: Duration::from_millis(100),
            period: Duration::from_secs(1),
            retain: Duration::from_secs(1800),
            rtt_p90: Some(Duration::from_millis(120)),
            window: Duration::from_secs(20),
            hold: Duration::from_secs(5),
            min_samples: 8,
        })
    );
    assert_eq!(plan.limits.rtt_flows, 1024);
    assert_eq!(plan.limits.rtt_buckets, edge_common::limits::RTT_BUCKETS);
    // A registration with an objective and no origin ASNs: no BMP needed.
    assert_eq!(
        plan.registrations,
        [PlannedRegistration {
            name: "contoso".into(),
            origin_asns: vec![],
            upstream_asns: vec![],
            rtt_p90: Some(Duration::from_millis(40)),
            hold_on_hijack: vec![],
            continent: None,
            scope: Scope::Continent,
        }]
    );
    // The section alone: the defaults; `enabled = false`: off.
    let plan = parse(&format!("{GOOD}\n[latency]\n")).unwrap();
    assert_eq!(plan.latency, Some(LatencyPlan::default()));
    let plan = parse(&format!("{GOOD}\n[latency]\nenabled = false\n")).unwrap();
    assert_eq!(plan.latency, None);
    assert_eq!(parse(GOOD).unwrap().latency, None);
}

#[test]
fn bad_latency_settings_are_reported_with_their_lines() {
    let base = GOOD.lines().count();
    let text = format!(
        "{GOOD}\n[latency]\nperiod_ms = 5000\nwindow_ms = 1000\nsample_interval_ms = 0\nretain_minutes = 0\nrtt_p90_ms = 0\n\n[[registrations]]\nname = \"contoso\"\nrtt_p90_ms = 100000\n\n[[registrations]]\nname = \"fabrikam\"\nupstream_asns = [64500]\n\n[limits]\nrtt_flows = 0\n"
    );
    let got = problems(&text);
    let line = |n: usize| format!("line {}", base + n);
    let want = [
        (
            line(4),
            "[latency] window_ms 1000 is shorter than period_ms 5000",
        ),
        (
            line(5),
            "[latency] sample_interval_ms 0 is outside 10-60000",
        ),
        (line(6), "[latency] retain_minutes 0 is outside 1-1440"),
        (line(7), "[latency] rtt_p90_ms 0 is outside 1-60000"),
        (
            line(11),
            "registration \"contoso\": rtt_p90_ms 100000 is outside 1-60000",
        ),
        (line(14), "registration \"fabrikam\": no [[prefixes]] entry"),
        (
            line(14),
            "registration \"fabrikam\" declares none of origin_asns",
        ),
        (line(15), "upstream_asns without origin_asns"),
        (line(18), "[limits] rtt_flows 0 is outside 1-1048576"),
    ];
    for (l, m) in &want {
        assert!(
            got.iter().any(|p| p.contains(l.as_str()) && p.contains(m)),
            "no problem {m:?} at {l} in {got:#?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
}

#[test]
fn an_objective_needs_the_latency_section() {
    let text = format!("{GOOD}\n[[registrations]]\nname = \"contoso\"\nrtt_p90_ms = 40\n");
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    let line = text.lines().count();
    assert!(
        got[0].starts_with(&format!("line {line}: ")) && got[0].contains("add a [latency] section"),
        "{got:?}"
    );
}
