//! Holding a hijacked prefix's traffic to its registered peering ports
//! (`hold_on_hijack`): from the active anomalies and the plan, which
//! registered prefixes are held, to which ports; and the plan with those
//! holds in it. Pure: the daemon applies the result through its change
//! pipeline (docs/route-analytics.md).

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{Anomaly, Kind};
use crate::plan::Plan;

/// What a held prefix is held to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// The prefix's registration (the one whose hijack holds it).
    pub registration: String,
    /// Port ids (plan order), the registration's `hold_on_hijack`.
    pub ports: Vec<u32>,
    /// Why, in words: the anomalies that hold it (for the log).
    pub because: String,
}

/// Held prefixes by registered network.
pub type Holds = BTreeMap<IpNet, Hold>;

/// A held prefix as `status` and `routes anomalies` show it (fields in
/// alphabetical order, as every reply).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// The peering ports its traffic is accepted on meanwhile.
    pub ports: Vec<String>,
    pub prefix: IpNet,
    pub registration: String,
    /// Unix seconds when edged put the hold into the maps.
    pub since: f64,
}

/// Whether an anomaly of `kind` holds its registered prefix.
pub fn holds_on(kind: Kind) -> bool {
    matches!(kind, Kind::OriginHijack | Kind::SubPrefixHijack)
}

/// The holds `active` (the active anomalies) ask for under `plan`: the
/// registered prefix each origin or sub-prefix hijack concerns, when its
/// registration has `hold_on_hijack` and the prefix is registered under it
/// without a `protect` of its own (the config's list wins: a prefix with
/// one is held to it already, hijack or not). Scans the plan's prefixes
/// only when some anomaly asks.
pub fn wanted<'a>(active: impl IntoIterator<Item = &'a Anomaly>, plan: &Plan) -> Holds {
    let ports: BTreeMap<&str, &[u32]> = plan
        .registrations
        .iter()
        .filter(|r| !r.hold_on_hijack.is_empty() && !r.origin_asns.is_empty())
        .map(|r| (r.name.as_str(), r.hold_on_hijack.as_slice()))
        .collect();
    if ports.is_empty() {
        return Holds::new();
    }
    // (registered prefix, registration) → the anomalies that ask.
    let mut asked: BTreeMap<(IpNet, &str), BTreeSet<String>> = BTreeMap::new();
    for a in active {
        if a.cleared.is_some() || !holds_on(a.kind) {
            continue;
        }
        let (Some(net), Some((name, _))) =
            (a.registered, ports.get_key_value(a.registration.as_str()))
        else {
            continue;
        };
        let what = match (a.kind, a.prefix, a.asn) {
            (Kind::SubPrefixHijack, Some(p), Some(asn)) => {
                format!("{} {p} by AS{asn}", a.kind.title())
            }
            (Kind::SubPrefixHijack, Some(p), None) => format!("{} {p}", a.kind.title()),
            (_, _, Some(asn)) => format!("{} by AS{asn}", a.kind.title()),
            _ => a.kind.title().to_string(),
        };
        asked.entry((net, name)).or_default().insert(what);
    }
    if asked.is_empty() {
        return Holds::new();
    }
    let mut out = Holds::new();
    for p in &plan.prefixes {
        if !p.protect.is_empty() {
            continue;
        }
        if let Some((&(net, name), why)) = asked.get_key_value(&(p.net, p.registration.as_str())) {
            out.insert(
                net,
                Hold {
                    registration: name.to_string(),
                    ports: ports[name].to_vec(),
                    because: why.iter().cloned().collect::<Vec<_>>().join(", "),
                },
            );
        }
    }
    out
}

/// The holds `plan` carries now (its prefixes' `held`); `because` empty.
pub fn in_plan(plan: &Plan) -> Holds {
    plan.prefixes
        .iter()
        .filter(|p| !p.held.is_empty())
        .map(|p| {
            (
                p.net,
                Hold {
                    registration: p.registration.to_string(),
                    ports: p.held.clone(),
                    because: String::new(),
                },
            )
        })
        .collect()
}

/// Whether `a` and `b` hold the same prefixes to the same ports (the
/// reasons aside).
pub fn same(a: &Holds, b: &Holds) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((na, ha), (nb, hb))| {
            na == nb && ha.registration == hb.registration && ha.ports == hb.ports
        })
}

/// Puts `holds` into `plan`: each held prefix (same network and
/// registration) gets its ports in `held`, every other prefix none.
pub fn apply(plan: &mut Plan, holds: &Holds) {
    for p in &mut plan.prefixes {
        let want = holds
            .get(&p.net)
            .filter(|h| h.registration == p.registration)
            .map(|h| h.ports.as_slice())
            .unwrap_or_default();
        if p.held != want {
            p.held = want.to_vec();
        }
    }
}

/// Held prefixes by network, borrowed.
pub type HeldList<'a> = Vec<(IpNet, &'a Hold)>;

/// What changed from `before` to `after`: the networks held anew (or to
/// other ports), then those released.
pub fn diff<'a>(before: &'a Holds, after: &'a Holds) -> (HeldList<'a>, HeldList<'a>) {
    let held = after
        .iter()
        .filter(|(n, h)| {
            before
                .get(n)
                .is_none_or(|b| b.ports != h.ports || b.registration != h.registration)
        })
        .map(|(n, h)| (*n, h))
        .collect();
    let released = before
        .iter()
        .filter(|(n, _)| !after.contains_key(n))
        .map(|(n, h)| (*n, h))
        .collect();
    (held, released)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[[ports]]
interface = "peer0"
role = "peering"
[[ports]]
interface = "peer1"
role = "peering"
[[ports]]
interface = "bb0"
role = "backbone"

[forwarding]
backbone_exit = "core"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:0a:01"

[bmp]
listen = "127.0.0.1:11019"

[[prefixes]]
prefix = "192.0.2.0/25"
registration = "contoso"
pop = "core"
[[prefixes]]
prefix = "192.0.2.128/25"
registration = "contoso"
pop = "core"
protect = ["peer1"]
[[prefixes]]
prefix = "198.51.100.0/24"
registration = "fabrikam"
pop = "core"

[[registrations]]
name = "contoso"
origin_asns = [64500]
hold_on_hijack = ["peer0"]
[[registrations]]
name = "fabrikam"
origin_asns = [64510]
"#;

    fn plan() -> Plan {
        crate::config::parse(CONFIG).unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn anomaly(kind: Kind, registration: &str, registered: &str, prefix: &str) -> Anomaly {
        Anomaly {
            as_path: vec![64496, 64666],
            asn: Some(64666),
            cleared: None,
            kind,
            message: String::new(),
            peers: Vec::new(),
            prefix: Some(net(prefix)),
            registered: Some(net(registered)),
            registration: registration.into(),
            since: 1.0,
        }
    }

    #[test]
    fn an_origin_or_sub_prefix_hijack_holds_the_registered_prefix() {
        let plan = plan();
        assert_eq!(plan.registrations[0].hold_on_hijack, [0]);
        let origin = anomaly(
            Kind::OriginHijack,
            "contoso",
            "192.0.2.0/25",
            "192.0.2.0/25",
        );
        let sub = anomaly(
            Kind::SubPrefixHijack,
            "contoso",
            "192.0.2.0/25",
            "192.0.2.0/26",
        );
        let w = wanted([&origin], &plan);
        assert_eq!(
            w,
            Holds::from([(
                net("192.0.2.0/25"),
                Hold {
                    registration: "contoso".into(),
                    ports: vec![0],
                    because: "origin hijack by AS64666".into(),
                }
            )])
        );
        // Both: one hold, both reasons.
        let both = wanted([&origin, &sub], &plan);
        assert_eq!(both.len(), 1);
        assert_eq!(
            both[&net("192.0.2.0/25")].because,
            "origin hijack by AS64666, sub-prefix hijack 192.0.2.0/26 by AS64666"
        );
        assert!(same(&w, &both));
        // Nothing active: nothing held.
        assert!(wanted([], &plan).is_empty());
    }

    #[test]
    fn what_does_not_hold() {
        let plan = plan();
        let cleared = Anomaly {
            cleared: Some(2.0),
            ..anomaly(
                Kind::OriginHijack,
                "contoso",
                "192.0.2.0/25",
                "192.0.2.0/25",
            )
        };
        let leak = anomaly(Kind::RouteLeak, "contoso", "192.0.2.0/25", "192.0.2.0/25");
        // The config's protect wins (peer1 stays the only port).
        let protected = anomaly(
            Kind::OriginHijack,
            "contoso",
            "192.0.2.128/25",
            "192.0.2.128/25",
        );
        // A registration without hold_on_hijack.
        let other = anomaly(
            Kind::OriginHijack,
            "fabrikam",
            "198.51.100.0/24",
            "198.51.100.0/24",
        );
        // A registered prefix the plan does not register under the
        // registration (a reload moved it meanwhile).
        let moved = anomaly(
            Kind::OriginHijack,
            "contoso",
            "198.51.100.0/24",
            "198.51.100.0/24",
        );
        let visibility = Anomaly {
            asn: None,
            ..anomaly(
                Kind::VisibilityLoss,
                "contoso",
                "192.0.2.0/25",
                "192.0.2.0/25",
            )
        };
        assert!(
            wanted(
                [&cleared, &leak, &protected, &other, &moved, &visibility],
                &plan
            )
            .is_empty()
        );
    }

    #[test]
    fn holds_go_into_the_plan_and_come_out_again() {
        let mut plan = plan();
        let origin = anomaly(
            Kind::OriginHijack,
            "contoso",
            "192.0.2.0/25",
            "192.0.2.0/25",
        );
        let w = wanted([&origin], &plan);
        let before = plan.clone();
        apply(&mut plan, &w);
        assert_eq!(plan.prefixes[0].held, [0]);
        assert_eq!(plan.prefixes[0].allowed_ports(), [0]);
        assert!(plan.prefixes[0].protect.is_empty());
        assert_eq!(plan.prefixes[1].allowed_ports(), [1]);
        assert!(plan.prefixes[2].held.is_empty());
        assert!(same(&in_plan(&plan), &w));
        let none = Holds::new();
        let (held, released) = diff(&none, &w);
        assert_eq!(held.len(), 1);
        assert!(released.is_empty());
        // Cleared: the plan is the config's again.
        apply(&mut plan, &Holds::new());
        assert_eq!(plan, before);
        assert!(in_plan(&plan).is_empty());
        let (held, released) = diff(&w, &none);
        assert!(held.is_empty());
        assert_eq!(released[0].0, net("192.0.2.0/25"));
    }

    #[test]
    fn hold_on_hijack_is_checked() {
        let bad = |from: &str, to: &str| {
            let text = CONFIG.replacen(from, to, 1);
            crate::config::parse(&text).unwrap_err().to_string()
        };
        let hold = r#"hold_on_hijack = ["peer0"]"#;
        let e = bad(hold, r#"hold_on_hijack = ["bb0"]"#);
        assert!(
            e.contains("hold_on_hijack names bb0, which is not a peering port"),
            "{e}"
        );
        assert!(e.contains("line 40"), "{e}");
        let e = bad(hold, r#"hold_on_hijack = ["peer9"]"#);
        assert!(
            e.contains("hold_on_hijack names unknown port \"peer9\""),
            "{e}"
        );
        let e = bad(hold, r#"hold_on_hijack = ["peer0", "peer0"]"#);
        assert!(e.contains("peer0 is listed twice"), "{e}");
        let e = bad(hold, r#"hold_on_hijack = []"#);
        assert!(e.contains("hold_on_hijack is empty"), "{e}");
        let e = bad(
            "origin_asns = [64500]\nhold_on_hijack",
            "rtt_p90_ms = 40\nhold_on_hijack",
        );
        assert!(e.contains("hold_on_hijack without origin_asns"), "{e}");
    }
}
