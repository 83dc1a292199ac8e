//! Logical ports, routing domains, egress tags and scope: what the config
//! accepts, and every problem with its line.

use super::{tests::problems, *};
use crate::plan::*;

/// Two customers on one peering interface: each a public (Microsoft
/// peering) VLAN and a private one, the same private prefix in both
/// private domains, their gateways on backbone VLANs.
pub(crate) const TWO_CUSTOMERS: &str = r#"
[forwarding]
backbone_exit = "core"

[[domains]]
name = "fabrikam"

[[domains]]
name = "contoso"

[[ports]]
interface = "cust0"
vlan = [100]
role = "peering"

[[ports]]
interface = "cust0"
name = "contoso-pvt"
vlan = [101]
role = "peering"
domain = "contoso"

[[ports]]
interface = "cust0"
vlan = [300, 20]
role = "peering"

[[ports]]
interface = "cust0"
name = "fabrikam-pvt"
vlan = [300, 21]
role = "peering"
domain = "fabrikam"

[[ports]]
interface = "bb0"
role = "backbone"

[[ports]]
interface = "bb0"
name = "contoso-gw"
vlan = [2001]
role = "backbone"
domain = "contoso"

[[ports]]
interface = "bb0"
name = "fabrikam-gw"
vlan = [2002]
role = "backbone"
domain = "fabrikam"

[[pops]]
name = "core"
port = "bb0"
mac = "02:00:00:00:0a:01"
region = "world > europe > nl"

[[pops]]
name = "contoso-ams"
port = "contoso-gw"
mac = "02:00:00:00:c1:01"
region = "world > europe > nl"

[[pops]]
name = "contoso-dub"
port = "contoso-gw"
mac = "02:00:00:00:c1:02"
region = "world > europe > ie"

[[pops]]
name = "fabrikam-nyc"
port = "fabrikam-gw"
mac = "02:00:00:00:f1:01"
region = "world > america > us"

[[pops]]
name = "handoff"
interface = "bb0"
mac = "02:00:00:00:0a:02"
vlan_push = 3000

[[policies]]
name = "contoso-gws"
method = "priority"
members = [{ pop = "contoso-ams" }, { pop = "contoso-dub" }]

[[prefixes]]
prefix = "192.0.2.0/24"
domain = "contoso"
policy = "contoso-gws"
registration = "contoso"

[[prefixes]]
prefix = "192.0.2.0/24"
domain = "fabrikam"
pop = "fabrikam-nyc"
registration = "fabrikam"

[[prefixes]]
prefix = "192.0.2.0/24"
pop = "core"

[[prefixes]]
prefix = "198.51.100.0/24"
pop = "handoff"
protect = ["cust0.100"]

[[registrations]]
name = "contoso"
continent = "world > europe"

[[registrations]]
name = "fabrikam"
continent = "world > europe"
scope = "global"
"#;

#[test]
fn ports_domains_and_egress_tags_resolve() {
    let plan = parse(TWO_CUSTOMERS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.domains, ["fabrikam", "contoso"]);
    let names: Vec<&str> = plan.ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cust0.100",
            "contoso-pvt",
            "cust0.300.20",
            "fabrikam-pvt",
            "bb0",
            "contoso-gw",
            "fabrikam-gw"
        ]
    );
    assert_eq!(plan.ports[2].vlan, [300, 20]);
    assert_eq!(plan.ports[1].domain, Some(1));
    assert_eq!(plan.ports[3].domain, Some(0));
    assert_eq!(plan.interfaces(), ["cust0", "bb0"]);
    let pop = |n: &str| plan.pops.iter().find(|p| p.name == n).unwrap();
    assert_eq!(pop("core").vlan, EgressVlan::Set(vec![]));
    assert_eq!(pop("core").domain, None);
    assert_eq!(pop("contoso-ams").vlan, EgressVlan::Set(vec![2001]));
    assert_eq!(pop("contoso-ams").interface, "bb0");
    assert_eq!(pop("contoso-ams").domain, Some(1));
    assert_eq!(pop("handoff").vlan, EgressVlan::Push(3000));
    let policy = |n: &str| plan.policies.iter().find(|p| p.name == n).unwrap();
    assert_eq!(policy("contoso-gws").domain, Some(1));
    assert_eq!(policy("pop:fabrikam-nyc").domain, Some(0));
    assert_eq!(policy("pop:core").domain, None);
    // The same network in two private domains and the public table.
    assert_eq!(plan.prefixes.len(), 2);
    let private: Vec<(u32, String)> = plan
        .domain_prefixes
        .iter()
        .map(|(d, p)| (*d, p.net.to_string()))
        .collect();
    assert_eq!(
        private,
        [(1, "192.0.2.0/24".into()), (0, "192.0.2.0/24".into())]
    );
    assert_eq!(plan.prefixes[1].protect, [0]);
    let r = &plan.registrations[1];
    assert_eq!(r.scope, Scope::Global);
    assert_eq!(r.continent.as_ref().unwrap().to_string(), "world > europe");
    // A private domain's tables are laid out like the public ones.
    let layout = crate::policy::Layout::new(&plan);
    assert_eq!(
        layout.keys[layout.domain_table[0].unwrap() as usize].to_string(),
        "contoso-gws"
    );
}

#[test]
fn logical_port_problems_are_reported_with_their_lines() {
    let text = r#"
[[domains]]
name = "public"

[[domains]]
name = "a b"

[[ports]]
interface = "eth0"
vlan = [100]
role = "peering"

[[ports]]
interface = "eth0"
name = "again"
vlan = [100]
role = "peering"

[[ports]]
interface = "eth0"
vlan = [1, 2, 3]
role = "peering"

[[ports]]
interface = "eth0"
vlan = [4095]
role = "peering"

[[ports]]
interface = "eth1"
vlan = []
role = "peering"

[[ports]]
interface = "eth1"
domain = "nowhere"
role = "backbone"

[[ports]]
interface = "eth2"
name = "eth0.100"
role = "backbone"
"#;
    assert_eq!(
        problems(text),
        [
            "line 3: domain \"public\" is built in (ports, PoPs and prefixes without a domain are in it); name private domains otherwise",
            "line 6: domain name \"a b\" must be 1-63 letters, digits, '-', '_' or '.'",
            "line 16: port again: vlan [100] on eth0 are already port eth0.100's",
            "line 21: port on eth0: vlan has 3 tags; at most 2 (an outer and an inner tag)",
            "line 26: port on eth0: VLAN id 4095 is outside 1-4094",
            "line 31: port on eth1: vlan = [] is the untagged port: leave the key out",
            "line 36: port eth1: unknown domain \"nowhere\" (declare it in [[domains]], or leave the key out for the public domain)",
            "line 41: port eth0.100 is listed twice (ports on one interface need distinct vlan tags, or names)",
        ]
    );
}

#[test]
fn egress_and_domain_problems_are_reported_with_their_lines() {
    let text = r#"
[forwarding]
transit_exit = "private"

[[domains]]
name = "contoso"

[[ports]]
interface = "bb0"
role = "backbone"

[[ports]]
interface = "bb0"
name = "contoso-gw"
vlan = [2001]
role = "backbone"
domain = "contoso"

[[pops]]
name = "both"
interface = "bb0"
port = "contoso-gw"
mac = "02:00:00:00:0a:01"

[[pops]]
name = "tags"
interface = "bb0"
vlan = [1]
vlan_push = 2
mac = "02:00:00:00:0a:02"

[[pops]]
name = "public"
port = "bb0"
mac = "02:00:00:00:0a:03"

[[pops]]
name = "gw"
port = "contoso-gw"
mac = "02:00:00:00:0a:04"

[[pops]]
name = "nowhere"
port = "nope"
mac = "02:00:00:00:0a:05"

[[policies]]
name = "mixed"
method = "priority"
members = [{ pop = "public" }, { pop = "gw" }]

[[policies]]
name = "private"
method = "priority"
members = [{ pop = "gw" }]
fallback = "transit"

[[prefixes]]
prefix = "192.0.2.0/24"
domain = "contoso"
pop = "public"

[[prefixes]]
prefix = "198.51.100.0/24"
pop = "gw"

[[prefixes]]
prefix = "203.0.113.0/24"
domain = "contoso"
policy = "private"
protect = ["bb0"]

[[prefixes]]
prefix = "203.0.113.0/25"
domain = "contoso"
preference = "internet"
"#;
    assert_eq!(
        problems(text),
        [
            "line 3: transit_exit: \"private\" is in a private domain; the exits are the public domain's",
            "line 22: PoP both: give either interface or port, not both (a port names its interface)",
            "line 29: PoP tags: give either vlan (the tags frames leave with) or vlan_push (a tag pushed outside the received ones), not both",
            "line 44: PoP nowhere: unknown port \"nope\"",
            "line 48: policy mixed: its PoPs are in domains public, contoso (a policy's PoPs, nested ones included, are all in one domain)",
            "line 56: policy private: fallback = \"transit\" would take domain contoso's traffic out of it; a private domain's policy falls back to \"pass\" (dropped and counted, no_next_hop)",
            "line 61: prefix 192.0.2.0/24 (domain contoso): PoP public is in domain public; a prefix's traffic only goes to PoPs of its own domain",
            "line 65: prefix 198.51.100.0/24 (domain public): PoP gw is in domain contoso; a prefix's traffic only goes to PoPs of its own domain",
            "line 71: prefix 203.0.113.0/24 (domain contoso): protect applies to the public domain (a private domain's traffic is classified by destination, only on its own ports)",
            "line 74: prefix 203.0.113.0/25 (domain contoso): a private domain has no transit; preference is microsoft (the default)",
        ]
    );
}

#[test]
fn a_continent_scope_keeps_policies_in_the_continent() {
    // fabrikam's one PoP is in America: fine for scope global, not for
    // scope continent in Europe.
    let text = TWO_CUSTOMERS.replace(
        "continent = \"world > europe\"\nscope = \"global\"",
        "continent = \"world > europe\"",
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains("registration \"fabrikam\" (scope continent, world > europe): policy pop:fabrikam-nyc may choose PoPs outside the continent: fabrikam-nyc (world > america > us)"),
        "{p:?}"
    );
    // A nested policy's PoPs count, and a PoP without a region is outside.
    let text = TWO_CUSTOMERS.replace("region = \"world > europe > ie\"\n", "");
    let p = problems(&text);
    assert!(
        p.iter().any(|m| m.contains(
            "policy contoso-gws may choose PoPs outside the continent: contoso-dub (no region)"
        )),
        "{p:?}"
    );
    // scope continent needs a continent.
    let text = TWO_CUSTOMERS.replace(
        "continent = \"world > europe\"\nscope = \"global\"",
        "scope = \"continent\"\nrtt_p90_ms = 10",
    );
    let p = problems(&text);
    assert!(
        p.iter().any(|m| m.contains("registration \"fabrikam\": scope = \"continent\" needs continent")),
        "{p:?}"
    );
}

#[test]
fn live_changes_leave_private_domains_alone() {
    // 192.0.2.0/24 is registered publicly and in both private domains: a
    // live replacement and a live removal of it act on the public entry.
    let spec = PrefixSpec {
        prefix: "192.0.2.0/24".into(),
        pop: Some("handoff".into()),
        ..PrefixSpec::default()
    };
    let live = Live {
        added: vec![spec],
        removed: vec![],
        removed_private: Vec::new(),
    };
    let plan = parse_with(TWO_CUSTOMERS, &live).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.domain_prefixes.len(), 2);
    let public = plan
        .prefixes
        .iter()
        .find(|p| p.net.to_string() == "192.0.2.0/24")
        .unwrap();
    assert_eq!(public.origin, Origin::Live);
    let live = Live {
        added: vec![],
        removed: vec!["192.0.2.0/24".parse().unwrap()],
        removed_private: Vec::new(),
    };
    let plan = parse_with(TWO_CUSTOMERS, &live).unwrap();
    assert_eq!(plan.domain_prefixes.len(), 2);
    assert!(
        plan.prefixes
            .iter()
            .all(|p| p.net.to_string() != "192.0.2.0/24")
    );
    // The effective config shows the private entries kept.
    let o = overlay::overlay(TWO_CUSTOMERS, &live).unwrap();
    assert_eq!(o.dropped.len(), 1);
    let kept = o.effective["prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["prefix"].as_str() == Some("192.0.2.0/24"))
        .count();
    assert_eq!(kept, 2);
    // A live prefix cannot name a private domain's policy or PoP: the
    // fast check and the whole validation say so.
    let plan = parse(TWO_CUSTOMERS).unwrap();
    let spec = PrefixSpec {
        prefix: "203.0.113.0/24".into(),
        policy: Some("contoso-gws".into()),
        ..PrefixSpec::default()
    };
    let err = validate_live(&plan, std::slice::from_ref(&spec), &|_| false, None).unwrap_err();
    assert_eq!(
        err.0[0].to_string(),
        "live change: prefix 203.0.113.0/24: contoso-gws is in domain contoso; without --domain a live change registers a prefix of the public domain (add --domain contoso for that domain's)"
    );
    let spec = PrefixSpec {
        pop: Some("contoso-ams".into()),
        policy: None,
        ..spec
    };
    let live = Live {
        added: vec![spec],
        removed: vec![],
        removed_private: Vec::new(),
    };
    let err = parse_with(TWO_CUSTOMERS, &live).unwrap_err();
    assert_eq!(
        err.0[0].to_string(),
        "live change: prefix 203.0.113.0/24 (domain public): PoP contoso-ams is in domain contoso; a prefix's traffic only goes to PoPs of its own domain"
    );
}

#[test]
fn a_pop_never_writes_another_domains_tags() {
    // A public PoP setting contoso's private tag, a contoso PoP pushing
    // fabrikam's: both refused; the same tags in the PoP's own domain are fine.
    let text = TWO_CUSTOMERS.replace(
        "[[pops]]\nname = \"handoff\"",
        "[[pops]]\nname = \"leak-pub\"\ninterface = \"cust0\"\nmac = \"02:00:00:00:c0:11\"\nvlan = [101]\n\n\
         [[pops]]\nname = \"leak-red\"\nport = \"contoso-gw\"\nmac = \"02:00:00:00:c0:12\"\nvlan_push = 300\nregion = \"world > europe > nl\"\n\n\
         [[pops]]\nname = \"own\"\nport = \"contoso-gw\"\nmac = \"02:00:00:00:c0:13\"\nvlan = [101]\nregion = \"world > europe > nl\"\n\n\
         [[pops]]\nname = \"handoff\"",
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].ends_with("PoP leak-pub: its frames would leave cust0 in port contoso-pvt's VLAN, of another domain than the PoP's; a PoP writes only its own domain's tags"),
        "{p:?}"
    );
    let text = text.replace(
        "vlan = [101]\n\n[[pops]]\nname = \"leak-red\"",
        "vlan = [100]\n\n[[pops]]\nname = \"leak-red\"",
    );
    parse(&text).unwrap_or_else(|e| panic!("{e}"));
}
