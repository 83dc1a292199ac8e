//! From a plan, the PoPs' health and RTTs to the kernel's selection tables.
//!
//! The kernel only knows: per registered prefix a table id, per table id
//! 1021 slots of PoP ids chosen by flow hash. Methods, health, regions,
//! customer subnets, nesting and the all-down fallback are all computed
//! here, in two steps:
//!
//! 1. [`Layout::new`] (depends on the plan only): the distinct tables the
//!    prefixes need, each named by a stable [`TableKey`] (policy, and the
//!    prefix's region when the policy's choice depends on it, and the subnet
//!    member for subnet policies), which table every prefix uses, and the
//!    more-specific entries subnet policies add.
//! 2. [`resolve`] (pure, cheap; run on every health or RTT change): the
//!    contents of every table.
//!
//! A health change only changes table contents, never the layout, so a
//! failover rewrites the tables of the affected policies only, however many
//! prefixes use them ([`Resolved::changed`]).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    fmt,
    time::Duration,
};

use edge_common::{NO_POP, POLICY_SLOTS, PolicyTable};
use ipnet::IpNet;

use super::methods as policy;
use crate::plan::{Fallback, Method, Plan, Region, Target};

/// What the methods need to know about a PoP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PopView {
    /// Healthy and not drained.
    pub up: bool,
    /// Smoothed RTT, if measured.
    pub rtt: Option<Duration>,
}

impl PopView {
    /// Up, no RTT: a PoP without a probe.
    pub const UP: PopView = PopView {
        up: true,
        rtt: None,
    };
    pub const DOWN: PopView = PopView {
        up: false,
        rtt: None,
    };
}

/// Names one selection table, stably across health changes (and across
/// config reloads that keep the names).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableKey {
    /// The policy the prefix names.
    pub policy: String,
    /// The prefix's region (the root when it has none), only when the
    /// policy or a nested one is geographic.
    pub region: Option<Region>,
    /// Subnet policies: the member the table is for (`pop:NAME` or
    /// `policy:NAME`).
    pub subnet_member: Option<String>,
}

impl fmt::Display for TableKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.policy)?;
        if let Some(r) = &self.region {
            write!(f, " [{r}]")?;
        }
        if let Some(m) = &self.subnet_member {
            write!(f, " [{m}]")?;
        }
        Ok(())
    }
}

/// A more-specific LPM entry a subnet policy adds inside a registered
/// prefix: same registration, counter slot, preference, DSCP and protection
/// as the prefix, but its own table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoreSpecific {
    /// Index of the registered prefix in `plan.prefixes`.
    pub prefix: usize,
    pub net: IpNet,
    /// Index into [`Layout::keys`].
    pub table: u32,
}

/// Which table every prefix uses; depends on the plan only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// The distinct tables, sorted.
    pub keys: Vec<TableKey>,
    /// By prefix index: the index into `keys` of its table (`None`: no policy).
    pub prefix_table: Vec<Option<u32>>,
    /// Entries subnet policies add, by prefix, then in mapping order.
    pub more_specific: Vec<MoreSpecific>,
}

/// The label of a member in keys and choices: `pop:NAME` or `policy:NAME`.
pub fn member_label(plan: &Plan, t: Target) -> String {
    match t {
        Target::Pop(p) => format!("pop:{}", plan.pops[p as usize].name),
        Target::Policy(p) => format!("policy:{}", plan.policies[p as usize].name),
    }
}

/// Whether a policy's tables depend on the prefix's region: it or a nested
/// policy is geographic.
fn region_sensitive(plan: &Plan) -> Vec<bool> {
    fn walk(plan: &Plan, p: usize, memo: &mut Vec<Option<bool>>) -> bool {
        if let Some(v) = memo[p] {
            return v;
        }
        let policy = &plan.policies[p];
        let v = policy.method == Method::Geographic
            || policy.members.iter().any(|m| match m.target {
                Target::Policy(q) => walk(plan, q as usize, memo),
                Target::Pop(_) => false,
            });
        memo[p] = Some(v);
        v
    }
    let mut memo = vec![None; plan.policies.len()];
    (0..plan.policies.len())
        .map(|p| walk(plan, p, &mut memo))
        .collect()
}

impl Layout {
    pub fn new(plan: &Plan) -> Layout {
        let sensitive = region_sensitive(plan);
        let key_of = |p: u32, region: &Option<Region>, subnet_member: Option<String>| TableKey {
            policy: plan.policies[p as usize].name.clone(),
            region: sensitive[p as usize].then(|| region.clone().unwrap_or_default()),
            subnet_member,
        };
        // Prefixes that subnet expansion must not cut into.
        let uses_subnets = plan.prefixes.iter().any(|p| {
            p.policy
                .is_some_and(|id| plan.policies[id as usize].method == Method::Subnet)
        });
        let registered: HashSet<IpNet> = if uses_subnets {
            plan.prefixes.iter().map(|p| p.net).collect()
        } else {
            HashSet::new()
        };

        // Distinct keys in order of first use; prefixes refer to them by
        // index (no key cloned per prefix: route sync brings a million).
        let mut uniq: Vec<TableKey> = Vec::new();
        let mut seen: HashMap<TableKey, u32> = HashMap::new();
        let mut intern = |k: TableKey| -> u32 {
            *seen.entry(k).or_insert_with_key(|k| {
                uniq.push(k.clone());
                uniq.len() as u32 - 1
            })
        };
        // The key of a policy whose tables do not depend on the prefix.
        let mut plain: Vec<Option<u32>> = vec![None; plan.policies.len()];
        let mut raw: Vec<Option<u32>> = Vec::with_capacity(plan.prefixes.len());
        let mut extra: Vec<(usize, IpNet, u32)> = Vec::new();
        for (i, prefix) in plan.prefixes.iter().enumerate() {
            let Some(p) = prefix.policy else {
                raw.push(None);
                continue;
            };
            let policy = &plan.policies[p as usize];
            if policy.method != Method::Subnet {
                if !sensitive[p as usize] {
                    let k = match plain[p as usize] {
                        Some(k) => k,
                        None => {
                            let k = intern(key_of(p, &None, None));
                            plain[p as usize] = Some(k);
                            k
                        }
                    };
                    raw.push(Some(k));
                } else {
                    raw.push(Some(intern(key_of(p, &prefix.region, None))));
                }
                continue;
            }
            let fallback = policy.members.iter().find(|m| m.subnets.is_empty());
            let mappings: Vec<(IpNet, Target)> = policy
                .members
                .iter()
                .flat_map(|m| m.subnets.iter().map(move |n| (*n, m.target)))
                .collect();
            // The prefix itself: the most specific mapping that covers it,
            // else the fallback member.
            let own = mappings
                .iter()
                .filter(|(n, _)| n.contains(&prefix.net))
                .max_by_key(|(n, _)| n.prefix_len())
                .map(|(_, t)| *t)
                .or(fallback.map(|m| m.target));
            raw.push(Some(intern(key_of(
                p,
                &prefix.region,
                own.map(|t| member_label(plan, t)),
            ))));
            // Mappings strictly inside it, unless a more specific registered
            // prefix (another registration) covers them.
            for (net, t) in &mappings {
                if *net == prefix.net || !prefix.net.contains(net) {
                    continue;
                }
                let owned_by_other = (prefix.net.prefix_len() + 1..=net.prefix_len()).any(|len| {
                    net.supernet_of_len(len)
                        .is_some_and(|s| s != prefix.net && registered.contains(&s))
                });
                if !owned_by_other {
                    let k = intern(key_of(p, &prefix.region, Some(member_label(plan, *t))));
                    extra.push((i, *net, k));
                }
            }
        }
        drop(seen);
        // Sorted keys, and each first-use index's place among them.
        let mut order: Vec<u32> = (0..uniq.len() as u32).collect();
        order.sort_by(|&a, &b| uniq[a as usize].cmp(&uniq[b as usize]));
        let mut place = vec![0u32; uniq.len()];
        for (new, &old) in order.iter().enumerate() {
            place[old as usize] = new as u32;
        }
        let mut keys: Vec<Option<TableKey>> = uniq.into_iter().map(Some).collect();
        let keys: Vec<TableKey> = order
            .iter()
            .map(|&old| keys[old as usize].take().expect("each key once"))
            .collect();
        Layout {
            prefix_table: raw.iter().map(|k| k.map(|k| place[k as usize])).collect(),
            more_specific: extra
                .iter()
                .map(|&(prefix, net, k)| MoreSpecific {
                    prefix,
                    net,
                    table: place[k as usize],
                })
                .collect(),
            keys,
        }
    }

    /// The key of prefix `i`'s table.
    pub fn table_of(&self, prefix: usize) -> Option<&TableKey> {
        self.prefix_table
            .get(prefix)
            .copied()
            .flatten()
            .map(|k| &self.keys[k as usize])
    }
}

trait SupernetOfLen {
    fn supernet_of_len(&self, len: u8) -> Option<IpNet>;
}

impl SupernetOfLen for IpNet {
    fn supernet_of_len(&self, len: u8) -> Option<IpNet> {
        IpNet::new(self.addr(), len).ok().map(|n| n.trunc())
    }
}

/// The performance method's current choices, by (policy, region): fed back
/// into the next [`resolve`] for hysteresis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Choices(pub BTreeMap<(String, Option<Region>), String>);

impl Choices {
    /// The member label (`pop:NAME` / `policy:NAME`) chosen for `policy`.
    pub fn get(&self, policy: &str, region: Option<&Region>) -> Option<&str> {
        self.0
            .get(&(policy.to_string(), region.cloned()))
            .map(String::as_str)
    }
}

/// One computed table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub pops: PolicyTable,
    /// Set when no member was up and the policy's fallback fills the table:
    /// the daemon logs it loudly and counts it.
    pub fallback: Option<Fallback>,
}

/// Every table's contents, and the choices to feed back next time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub tables: BTreeMap<TableKey, Table>,
    pub choices: Choices,
}

impl Resolved {
    /// Tables whose contents differ from `old`'s (or that `old` lacks).
    #[cfg(test)]
    fn changed<'a>(&'a self, old: &Resolved) -> Vec<&'a TableKey> {
        self.tables
            .iter()
            .filter(|(k, t)| old.tables.get(*k).is_none_or(|o| o.pops != t.pops))
            .map(|(k, _)| k)
            .collect()
    }

    /// Tables filled by their fallback because no member is up.
    pub fn in_fallback(&self) -> impl Iterator<Item = (&TableKey, Fallback)> {
        self.tables
            .iter()
            .filter_map(|(k, t)| t.fallback.map(|f| (k, f)))
    }
}

/// Computes every table of `layout` from the PoPs' health (`health(pop id)`)
/// and the previous performance choices.
pub fn resolve(
    plan: &Plan,
    layout: &Layout,
    health: &impl Fn(u32) -> PopView,
    prev: &Choices,
) -> Resolved {
    let mut r = Resolver {
        plan,
        health,
        prev,
        sensitive: region_sensitive(plan),
        memo: HashMap::new(),
        choices: Choices::default(),
    };
    let mut tables = BTreeMap::new();
    for key in &layout.keys {
        let Some(p) = plan.policies.iter().position(|x| x.name == key.policy) else {
            continue;
        };
        let region = key.region.clone().unwrap_or_default();
        let outcome = match &key.subnet_member {
            Some(label) => r.subnet(p, label, &region),
            None => r.policy(p, &region),
        };
        let table = match outcome {
            Some(pops) => Table {
                pops,
                fallback: None,
            },
            None => {
                let fallback = plan.policies[p].fallback;
                Table {
                    pops: match (fallback, plan.transit_exit) {
                        (Fallback::Transit, Some(t)) => policy::single(t),
                        _ => PolicyTable::default(),
                    },
                    fallback: Some(fallback),
                }
            }
        };
        tables.insert(key.clone(), table);
    }
    Resolved {
        tables,
        choices: r.choices,
    }
}

struct Resolver<'a, H> {
    plan: &'a Plan,
    health: &'a H,
    prev: &'a Choices,
    sensitive: Vec<bool>,
    /// (policy, region if it matters) → its table, `None` when no member is up.
    memo: HashMap<(usize, Option<Region>), Option<PolicyTable>>,
    choices: Choices,
}

impl<H: Fn(u32) -> PopView> Resolver<'_, H> {
    /// A member's table, `None` when it is down (a PoP) or has no live
    /// member (a policy; its own fallback does not apply when nested).
    fn member(&mut self, t: Target, region: &Region) -> Option<PolicyTable> {
        match t {
            Target::Pop(p) => (self.health)(p).up.then(|| policy::single(p)),
            Target::Policy(q) => self.policy(q as usize, region),
        }
    }

    fn policy(&mut self, p: usize, region: &Region) -> Option<PolicyTable> {
        let key = (p, self.sensitive[p].then(|| region.clone()));
        if let Some(t) = self.memo.get(&key) {
            return *t;
        }
        let t = self.compute(p, region);
        self.memo.insert(key, t);
        t
    }

    fn compute(&mut self, p: usize, region: &Region) -> Option<PolicyTable> {
        let policy = &self.plan.policies[p];
        let live: Vec<(usize, PolicyTable)> = (0..policy.members.len())
            .filter_map(|i| {
                self.member(policy.members[i].target, region)
                    .map(|t| (i, t))
            })
            .collect();
        if live.is_empty() {
            return None;
        }
        let members = &policy.members;
        Some(match policy.method {
            Method::Priority => {
                let best = policy::priority(live.iter().map(|(i, _)| members[*i].priority))?;
                live[best].1
            }
            Method::Weighted => spread(&live, |i| (members[i].target, members[i].weight)),
            Method::Multivalue => spread(&live, |i| (members[i].target, 1)),
            Method::Performance => {
                let candidates: Vec<(Option<Duration>, u32)> = live
                    .iter()
                    .map(|(i, t)| (self.rtt(members[*i].target, t), members[*i].priority))
                    .collect();
                let region_key = self.sensitive[p].then(|| region.clone());
                let current = self
                    .prev
                    .get(&policy.name, region_key.as_ref())
                    .and_then(|label| {
                        live.iter()
                            .position(|(i, _)| member_label(self.plan, members[*i].target) == label)
                    });
                let best = policy::performance(&candidates, current, &policy.hysteresis)?;
                self.choices.0.insert(
                    (policy.name.clone(), region_key),
                    member_label(self.plan, members[live[best].0].target),
                );
                live[best].1
            }
            Method::Geographic => {
                // The most specific level of the prefix's region with a live
                // member in it; flows spread by weight among those members.
                let level = region.lineage().find_map(|level| {
                    let inside: Vec<(usize, PolicyTable)> = live
                        .iter()
                        .filter(|(i, _)| {
                            members[*i]
                                .region
                                .as_ref()
                                .is_some_and(|r| r.within(&level))
                        })
                        .copied()
                        .collect();
                    (!inside.is_empty()).then_some(inside)
                })?;
                spread(&level, |i| (members[i].target, members[i].weight))
            }
            // Only reached for a subnet policy without a subnet context:
            // its fallback member.
            Method::Subnet => {
                let fallback = members.iter().position(|m| m.subnets.is_empty())?;
                live.iter().find(|(i, _)| *i == fallback)?.1
            }
        })
    }

    /// A subnet policy's table for one member: that member if it is up,
    /// else the fallback member, else `None` (the policy's fallback).
    fn subnet(&mut self, p: usize, label: &str, region: &Region) -> Option<PolicyTable> {
        let policy = &self.plan.policies[p];
        let mapped = policy
            .members
            .iter()
            .find(|m| member_label(self.plan, m.target) == label)
            .map(|m| m.target);
        let fallback = policy
            .members
            .iter()
            .find(|m| m.subnets.is_empty())
            .map(|m| m.target);
        [mapped, fallback]
            .into_iter()
            .flatten()
            .find_map(|t| self.member(t, region))
    }

    /// A member's RTT: a PoP's own; a policy's, the lowest of the PoPs its
    /// table uses.
    fn rtt(&self, t: Target, table: &PolicyTable) -> Option<Duration> {
        match t {
            Target::Pop(p) => (self.health)(p).rtt,
            Target::Policy(_) => table.pops[..POLICY_SLOTS]
                .iter()
                .filter(|&&p| p != NO_POP)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter_map(|&p| (self.health)(u32::from(p)).rtt)
                .min(),
        }
    }
}

/// Weighted Maglev over live members (index into the policy's members and
/// their tables): each slot takes its owner's table's value at that slot, so
/// nested tables compose and stay consistent.
fn spread(live: &[(usize, PolicyTable)], weight: impl Fn(usize) -> (Target, u32)) -> PolicyTable {
    let members: Vec<(Target, u32)> = live.iter().map(|(i, _)| weight(*i)).collect();
    let mut t = PolicyTable::default();
    for (slot, owner) in policy::maglev(&members).into_iter().enumerate() {
        t.pops[slot] = live[owner].1.pops[slot];
    }
    t
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use edge_common::{flow_hash_v4, policy_slot};

    use super::*;
    use crate::config::parse;

    const BASE: &str = r#"
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
mac = "02:00:00:00:0a:00"

[[pops]]
name = "isp"
interface = "tr0"
mac = "02:00:00:00:0a:01"

[[pops]]
name = "ams"
interface = "bb0"
mac = "02:00:00:00:0a:02"
region = "world > europe > nl"

[[pops]]
name = "dub"
interface = "bb0"
mac = "02:00:00:00:0a:03"
region = "world > europe > ie"

[[pops]]
name = "nyc"
interface = "bb0"
mac = "02:00:00:00:0a:04"
region = "world > america > us"

[[pops]]
name = "lon"
interface = "bb0"
mac = "02:00:00:00:0a:05"
region = "world > europe > gb"
"#;
    const CORE: u16 = 0;
    const ISP: u16 = 1;
    const AMS: u16 = 2;
    const DUB: u16 = 3;
    const NYC: u16 = 4;
    const LON: u16 = 5;

    fn plan(rest: &str) -> Plan {
        parse(&format!("{BASE}{rest}")).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Health: every PoP up except `down`, with the given RTTs in ms.
    fn health(down: &[u16], rtts: &[(u16, u64)]) -> impl Fn(u32) -> PopView {
        let down = down.to_vec();
        let rtts: BTreeMap<u16, u64> = rtts.iter().copied().collect();
        move |p| PopView {
            up: !down.contains(&(p as u16)),
            rtt: rtts.get(&(p as u16)).map(|&ms| Duration::from_millis(ms)),
        }
    }

    fn run(plan: &Plan, h: &impl Fn(u32) -> PopView) -> (Layout, Resolved) {
        let layout = Layout::new(plan);
        let r = resolve(plan, &layout, h, &Choices::default());
        (layout, r)
    }

    fn key(policy: &str) -> TableKey {
        TableKey {
            policy: policy.into(),
            region: None,
            subnet_member: None,
        }
    }

    fn counts(t: &PolicyTable) -> BTreeMap<u16, usize> {
        let mut c = BTreeMap::new();
        for &p in &t.pops[..POLICY_SLOTS] {
            *c.entry(p).or_default() += 1;
        }
        c
    }

    fn only(t: &Table) -> u16 {
        let c = counts(&t.pops);
        assert_eq!(c.len(), 1, "{c:?}");
        *c.keys().next().unwrap()
    }

    const PRIORITY: &str = r#"
[[policies]]
name = "eu"
method = "priority"
members = [{ pop = "ams", priority = 1 }, { pop = "dub", priority = 2 }, { pop = "lon", priority = 3 }]

[[policies]]
name = "us"
method = "priority"
members = [{ pop = "nyc" }]

[[policies]]
name = "us-pass"
method = "priority"
members = [{ pop = "nyc" }]
fallback = "pass"

[[prefixes]]
prefix = "192.0.2.0/26"
policy = "eu"

[[prefixes]]
prefix = "192.0.2.64/26"
policy = "eu"

[[prefixes]]
prefix = "2001:db8:1::/48"
policy = "eu"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "us"

[[prefixes]]
prefix = "203.0.113.0/24"
policy = "us-pass"
"#;

    #[test]
    fn priority_fails_over_in_order_and_prefixes_never_move() {
        let plan = plan(PRIORITY);
        let (layout, all_up) = run(&plan, &health(&[], &[]));
        // Three prefixes share one table; every prefix points at its key.
        assert_eq!(layout.keys, vec![key("eu"), key("us"), key("us-pass")]);
        assert_eq!(
            layout.prefix_table,
            vec![Some(0), Some(0), Some(0), Some(1), Some(2)]
        );
        assert!(layout.more_specific.is_empty());
        assert_eq!(only(&all_up.tables[&key("eu")]), AMS);

        let ams_down = resolve(&plan, &layout, &health(&[AMS], &[]), &all_up.choices);
        assert_eq!(only(&ams_down.tables[&key("eu")]), DUB);
        let both = resolve(&plan, &layout, &health(&[AMS, DUB], &[]), &all_up.choices);
        assert_eq!(only(&both.tables[&key("eu")]), LON);
        // A failover rewrites the affected policy's table only; the layout
        // (prefix entries) does not depend on health at all.
        assert_eq!(ams_down.changed(&all_up), vec![&key("eu")]);
        assert!(both.changed(&both).is_empty());
        assert_eq!(Layout::new(&plan), layout);
        assert_eq!(ams_down.in_fallback().count(), 0);
    }

    #[test]
    fn all_down_goes_to_the_fallback_and_is_reported() {
        let plan = plan(PRIORITY);
        let (layout, r) = run(&plan, &health(&[NYC, AMS, DUB, LON], &[]));
        // Default fallback with a transit exit: transit.
        assert_eq!(only(&r.tables[&key("us")]), ISP);
        assert_eq!(only(&r.tables[&key("eu")]), ISP);
        // `pass`: every slot NO_POP (the kernel routes it).
        assert_eq!(only(&r.tables[&key("us-pass")]), NO_POP);
        let reported: Vec<(String, Fallback)> = r
            .in_fallback()
            .map(|(k, f)| (k.policy.clone(), f))
            .collect();
        assert_eq!(
            reported,
            [
                ("eu".into(), Fallback::Transit),
                ("us".into(), Fallback::Transit),
                ("us-pass".into(), Fallback::Pass)
            ]
        );
        // One member back: out of fallback.
        let back = resolve(&plan, &layout, &health(&[AMS, DUB, LON], &[]), &r.choices);
        assert_eq!(only(&back.tables[&key("us")]), NYC);
        assert_eq!(back.tables[&key("us")].fallback, None);
        assert_eq!(back.changed(&r), vec![&key("us"), &key("us-pass")]);
    }

    #[test]
    fn without_a_transit_exit_the_default_fallback_is_pass() {
        let text = format!("{BASE}{PRIORITY}").replace("transit_exit = \"isp\"\n", "");
        let plan = parse(&text).unwrap();
        assert!(plan.policies.iter().all(|p| p.fallback == Fallback::Pass));
        let (_, r) = run(&plan, &health(&[NYC], &[]));
        assert_eq!(only(&r.tables[&key("us")]), NO_POP);
    }

    const WEIGHTED: &str = r#"
[[policies]]
name = "w"
method = "weighted"
members = [{ pop = "ams", weight = 1 }, { pop = "dub", weight = 2 }, { pop = "lon", weight = 3 }, { pop = "nyc", weight = 4 }]

[[policies]]
name = "mv"
method = "multivalue"
members = [{ pop = "ams", weight = 9 }, { pop = "dub" }, { pop = "lon" }]

[[prefixes]]
prefix = "192.0.2.0/24"
policy = "w"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "mv"
"#;

    /// The PoP of each of 100,000 flows (varied source addresses and ports).
    fn flows(t: &PolicyTable) -> Vec<u16> {
        (0..100_000u32)
            .map(|i| {
                let src = [192, 0, 2, (i % 251) as u8];
                let ports = u32::from_ne_bytes([(i >> 8) as u8, (i >> 16) as u8, 0x01, 0xbb]);
                t.pops[policy_slot(flow_hash_v4(src, [203, 0, 113, 7], 6, ports))]
            })
            .collect()
    }

    #[test]
    fn weighted_spreads_flows_by_weight_and_a_leaving_member_moves_only_its_share() {
        let plan = plan(WEIGHTED);
        let (layout, before) = run(&plan, &health(&[], &[]));
        let f_before = flows(&before.tables[&key("w")].pops);
        let share = |f: &[u16], pop: u16| f.iter().filter(|&&p| p == pop).count() as f64 / 1e5;
        for (pop, weight) in [(AMS, 1.0), (DUB, 2.0), (LON, 3.0), (NYC, 4.0)] {
            let s = share(&f_before, pop);
            assert!((s - weight / 10.0).abs() < 0.01, "PoP {pop}: {s}");
        }
        // LON (weight 3 of 10) leaves: its 30% of flows move, little else.
        let after = resolve(&plan, &layout, &health(&[LON], &[]), &before.choices);
        let f_after = flows(&after.tables[&key("w")].pops);
        let moved = f_before
            .iter()
            .zip(&f_after)
            .filter(|(a, b)| a != b)
            .count() as f64
            / 1e5;
        let own = share(&f_before, LON);
        println!("weighted: LON held {own:.4} of 100,000 flows; {moved:.4} moved when it left");
        assert!(
            moved >= own && moved < own * 1.2,
            "moved {moved}, own {own}"
        );
        assert_eq!(share(&f_after, LON), 0.0);
        // The others keep their relative weights: 1:2:4 of the whole.
        for (pop, weight) in [(AMS, 1.0), (DUB, 2.0), (NYC, 4.0)] {
            let s = share(&f_after, pop);
            assert!((s - weight / 7.0).abs() < 0.01, "PoP {pop}: {s}");
        }
        // Coming back restores the same table (consistent, not path-dependent).
        let again = resolve(&plan, &layout, &health(&[], &[]), &after.choices);
        assert_eq!(again.tables[&key("w")], before.tables[&key("w")]);
    }

    #[test]
    fn multivalue_spreads_evenly_over_the_healthy_members() {
        let plan = plan(WEIGHTED);
        let (layout, r) = run(&plan, &health(&[], &[]));
        assert_eq!(
            counts(&r.tables[&key("mv")].pops),
            [(AMS, 341), (DUB, 340), (LON, 340)].into(),
            "weights are ignored"
        );
        let r = resolve(&plan, &layout, &health(&[DUB], &[]), &r.choices);
        assert_eq!(
            counts(&r.tables[&key("mv")].pops),
            [(AMS, 511), (LON, 510)].into()
        );
    }

    const PERFORMANCE: &str = r#"
[[policies]]
name = "fast"
method = "performance"
members = [{ pop = "ams" }, { pop = "dub" }, { pop = "lon" }]

[[policies]]
name = "fast-tight"
method = "performance"
members = [{ pop = "ams" }, { pop = "dub" }]
hysteresis_ms = 0
hysteresis_percent = 0

[[prefixes]]
prefix = "192.0.2.0/24"
policy = "fast"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "fast-tight"
"#;

    #[test]
    fn performance_takes_the_lowest_rtt_with_hysteresis() {
        let plan = plan(PERFORMANCE);
        let layout = Layout::new(&plan);
        let step = |rtts: &[(u16, u64)], down: &[u16], prev: &Choices| {
            let r = resolve(&plan, &layout, &health(down, rtts), prev);
            (
                only(&r.tables[&key("fast")]),
                only(&r.tables[&key("fast-tight")]),
                r.choices,
            )
        };
        // No RTT yet: priority order.
        let (fast, _, c) = step(&[], &[], &Choices::default());
        assert_eq!(fast, AMS);
        assert_eq!(c.get("fast", None), Some("pop:ams"));
        // First RTTs: the lowest wins at once (the current one has none).
        let (fast, tight, c) = step(&[(AMS, 40), (DUB, 30), (LON, 35)], &[], &c);
        assert_eq!((fast, tight), (DUB, DUB));
        // Noise below max(5 ms, 10 %): LON 1 ms better, then 3 ms; DUB stays.
        let (fast, tight, c) = step(&[(AMS, 40), (DUB, 30), (LON, 29)], &[], &c);
        assert_eq!(fast, DUB, "1 ms better does not move it");
        assert_eq!(tight, DUB, "AMS is slower");
        let (fast, _, c) = step(&[(AMS, 40), (DUB, 30), (LON, 25)], &[], &c);
        assert_eq!(fast, DUB, "exactly 5 ms better does not move it");
        // The percentage counts at larger RTTs: at 100 ms the threshold is
        // 10 ms; 8 ms better stays, 11 ms better moves.
        let (fast, _, c) = step(&[(AMS, 140), (DUB, 100), (LON, 92)], &[], &c);
        assert_eq!(fast, DUB);
        let (fast, _, c) = step(&[(AMS, 140), (DUB, 100), (LON, 89)], &[], &c);
        assert_eq!(fast, LON, "a real improvement moves it");
        assert_eq!(c.get("fast", None), Some("pop:lon"));
        // Without hysteresis any improvement moves.
        let (_, tight, c) = step(&[(AMS, 99), (DUB, 100)], &[], &c);
        assert_eq!(tight, AMS);
        // The chosen member going down moves at once, whatever the RTTs.
        let (fast, _, c) = step(&[(AMS, 140), (DUB, 100), (LON, 89)], &[LON], &c);
        assert_eq!(fast, DUB);
        // And stays there when LON returns only marginally better.
        let (fast, _, _) = step(&[(AMS, 140), (DUB, 100), (LON, 95)], &[], &c);
        assert_eq!(fast, DUB);
    }

    const GEO: &str = r#"
[[policies]]
name = "geo"
method = "geographic"
members = [{ pop = "ams" }, { pop = "dub" }, { pop = "lon", weight = 3 }, { pop = "nyc" }, { pop = "core", region = "world" }]

[[prefixes]]
prefix = "192.0.2.0/26"
policy = "geo"
region = "world > europe > ie"

[[prefixes]]
prefix = "192.0.2.64/26"
policy = "geo"
region = "World > Europe > IE"

[[prefixes]]
prefix = "192.0.2.128/26"
policy = "geo"
region = "world > europe > fr"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "geo"
region = "world > asia > jp"

[[prefixes]]
prefix = "203.0.113.0/24"
policy = "geo"
"#;

    fn region_key(policy: &str, region: &str) -> TableKey {
        TableKey {
            policy: policy.into(),
            region: Some(if region.is_empty() {
                Region::default()
            } else {
                Region::parse(region).unwrap()
            }),
            subnet_member: None,
        }
    }

    #[test]
    fn geographic_takes_the_most_specific_region_and_falls_back_up() {
        let plan = plan(GEO);
        let ie = region_key("geo", "world > europe > ie");
        let fr = region_key("geo", "world > europe > fr");
        let jp = region_key("geo", "world > asia > jp");
        let root = region_key("geo", "");
        let (layout, r) = run(&plan, &health(&[], &[]));
        // One table per distinct region; region names are case-insensitive.
        assert_eq!(layout.keys.len(), 4);
        assert_eq!(layout.table_of(0), Some(&ie));
        assert_eq!(layout.table_of(1), Some(&ie));
        assert_eq!(layout.table_of(4), Some(&root));
        // ie has a member: it alone.
        assert_eq!(only(&r.tables[&ie]), DUB);
        // fr has no member: up to europe (ams, dub, lon by weight 1:1:3).
        assert_eq!(
            counts(&r.tables[&fr].pops),
            [(AMS, 204), (DUB, 204), (LON, 613)].into()
        );
        // asia has none, europe is not an ancestor: up to world, everyone.
        assert_eq!(counts(&r.tables[&jp].pops).len(), 5);
        assert_eq!(counts(&r.tables[&root].pops).len(), 5);

        // dub down: ie falls back to europe.
        let r = resolve(&plan, &layout, &health(&[DUB], &[]), &r.choices);
        assert_eq!(counts(&r.tables[&ie].pops), [(AMS, 255), (LON, 766)].into());
        // All of europe down: world (nyc and core).
        let r = resolve(&plan, &layout, &health(&[AMS, DUB, LON], &[]), &r.choices);
        assert_eq!(
            counts(&r.tables[&ie].pops)
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            [CORE, NYC]
        );
        assert_eq!(r.tables[&ie], r.tables[&jp]);
        // Everyone down: the fallback.
        let r = resolve(
            &plan,
            &layout,
            &health(&[AMS, DUB, LON, NYC, CORE], &[]),
            &r.choices,
        );
        assert_eq!(only(&r.tables[&ie]), ISP);
        assert_eq!(r.in_fallback().count(), 4);
    }

    const SUBNET: &str = r#"
[[policies]]
name = "eu"
method = "priority"
members = [{ pop = "ams" }, { pop = "dub" }]

[[policies]]
name = "sites"
method = "subnet"
members = [
  { pop = "nyc", subnets = ["192.0.2.0/26", "2001:db8:1:100::/56", "10.0.0.0/8"] },
  { policy = "eu", subnets = ["192.0.2.128/25", "198.51.100.0/23"] },
  { pop = "lon", subnets = ["192.0.2.192/27"] },
  { pop = "core" },
]

[[prefixes]]
prefix = "192.0.2.0/24"
registration = "contoso"
policy = "sites"

[[prefixes]]
prefix = "192.0.2.224/27"
registration = "fabrikam"
pop = "ams"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "sites"

[[prefixes]]
prefix = "2001:db8:1::/48"
policy = "sites"
"#;

    fn subnet_key(member: &str) -> TableKey {
        TableKey {
            policy: "sites".into(),
            region: None,
            subnet_member: Some(member.into()),
        }
    }

    #[test]
    fn subnet_expands_into_more_specific_entries_with_derived_tables() {
        let plan = plan(SUBNET);
        let (layout, r) = run(&plan, &health(&[], &[]));
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let entries: Vec<(usize, IpNet, &TableKey)> = layout
            .more_specific
            .iter()
            .map(|m| (m.prefix, m.net, &layout.keys[m.table as usize]))
            .collect();
        assert_eq!(
            entries,
            vec![
                // Inside 192.0.2.0/24: the mappings, but not inside
                // fabrikam's 192.0.2.224/27 (none is).
                (0, net("192.0.2.0/26"), &subnet_key("pop:nyc")),
                (0, net("192.0.2.128/25"), &subnet_key("policy:eu")),
                (0, net("192.0.2.192/27"), &subnet_key("pop:lon")),
                (3, net("2001:db8:1:100::/56"), &subnet_key("pop:nyc")),
            ]
        );
        // The registered prefixes themselves: the rest of the /24 goes to
        // the fallback member; 198.51.100.0/24 lies inside a mapping.
        assert_eq!(layout.table_of(0), Some(&subnet_key("pop:core")));
        assert_eq!(layout.table_of(2), Some(&subnet_key("policy:eu")));
        assert_eq!(layout.table_of(3), Some(&subnet_key("pop:core")));
        assert_eq!(only(&r.tables[&subnet_key("pop:nyc")]), NYC);
        assert_eq!(only(&r.tables[&subnet_key("policy:eu")]), AMS);
        assert_eq!(only(&r.tables[&subnet_key("pop:lon")]), LON);
        assert_eq!(only(&r.tables[&subnet_key("pop:core")]), CORE);

        // A mapped member down: its subnets go to the fallback member; the
        // nested policy fails over inside; no LPM entry changes.
        let down = resolve(&plan, &layout, &health(&[NYC, AMS], &[]), &r.choices);
        assert_eq!(only(&down.tables[&subnet_key("pop:nyc")]), CORE);
        assert_eq!(only(&down.tables[&subnet_key("policy:eu")]), DUB);
        assert_eq!(
            down.changed(&r),
            vec![
                &key("pop:ams"),
                &subnet_key("policy:eu"),
                &subnet_key("pop:nyc")
            ],
            "fabrikam's own table, and the two affected subnet tables"
        );
        // Fallback member down too: the policy's fallback (transit).
        let down = resolve(&plan, &layout, &health(&[NYC, CORE], &[]), &r.choices);
        assert_eq!(only(&down.tables[&subnet_key("pop:nyc")]), ISP);
        assert_eq!(only(&down.tables[&subnet_key("pop:core")]), ISP);
        assert_eq!(
            down.tables[&subnet_key("pop:nyc")].fallback,
            Some(Fallback::Transit)
        );
        assert_eq!(only(&down.tables[&subnet_key("policy:eu")]), AMS);
    }

    #[test]
    fn subnet_expansion_leaves_more_specific_registrations_alone() {
        // A mapping inside fabrikam's registered /27 is not added: fabrikam
        // keeps its own traffic.
        let text = SUBNET.replace("\"192.0.2.192/27\"", "\"192.0.2.240/28\"");
        let plan = plan(&text);
        let layout = Layout::new(&plan);
        assert!(
            layout
                .more_specific
                .iter()
                .all(|m| m.net != "192.0.2.240/28".parse::<IpNet>().unwrap()),
            "{:?}",
            layout.more_specific
        );
        assert_eq!(layout.more_specific.len(), 3);
        // And a mapping equal to another registration is not added either.
        let text = SUBNET.replace("\"192.0.2.192/27\"", "\"192.0.2.224/27\"");
        assert_eq!(Layout::new(&self::plan(&text)).more_specific.len(), 3);
    }

    const NESTED: &str = r#"
[[policies]]
name = "eu"
method = "priority"
members = [{ pop = "ams" }, { pop = "dub" }]

[[policies]]
name = "global"
method = "weighted"
members = [{ policy = "eu", weight = 3 }, { pop = "nyc", weight = 1 }]

[[policies]]
name = "near"
method = "geographic"
members = [{ policy = "eu", region = "world > europe" }, { pop = "nyc" }]

[[policies]]
name = "top"
method = "priority"
members = [{ policy = "near" }, { pop = "core" }]

[[prefixes]]
prefix = "192.0.2.0/24"
policy = "global"

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "top"
region = "world > europe > ie"

[[prefixes]]
prefix = "203.0.113.0/24"
policy = "top"
region = "world > america"
"#;

    #[test]
    fn nested_policies_resolve_recursively() {
        let plan = plan(NESTED);
        let (layout, r) = run(&plan, &health(&[], &[]));
        assert_eq!(
            counts(&r.tables[&key("global")].pops),
            [(AMS, 766), (NYC, 255)].into(),
            "eu's share goes to its priority choice"
        );
        // A nested geographic policy makes the outer one region-keyed.
        let top_eu = region_key("top", "world > europe > ie");
        let top_am = region_key("top", "world > america");
        assert_eq!(layout.table_of(1), Some(&top_eu));
        assert_eq!(only(&r.tables[&top_eu]), AMS);
        assert_eq!(only(&r.tables[&top_am]), NYC);

        // AMS down: eu picks DUB, in the slots eu held (consistent).
        let r2 = resolve(&plan, &layout, &health(&[AMS], &[]), &r.choices);
        let (before, after) = (
            &r.tables[&key("global")].pops,
            &r2.tables[&key("global")].pops,
        );
        for s in 0..POLICY_SLOTS {
            let expect = if before.pops[s] == AMS {
                DUB
            } else {
                before.pops[s]
            };
            assert_eq!(after.pops[s], expect);
        }
        // All of eu down: it counts as down in global (NYC takes all) and in
        // near (europe falls back to world: NYC).
        let r3 = resolve(&plan, &layout, &health(&[AMS, DUB], &[]), &r.choices);
        assert_eq!(only(&r3.tables[&key("global")]), NYC);
        assert_eq!(only(&r3.tables[&top_eu]), NYC);
        // Everything under near down: top takes its next member, not a
        // fallback of the nested policies.
        let r4 = resolve(&plan, &layout, &health(&[AMS, DUB, NYC], &[]), &r.choices);
        assert_eq!(only(&r4.tables[&top_eu]), CORE);
        assert_eq!(r4.tables[&top_eu].fallback, None);
        assert_eq!(only(&r4.tables[&key("global")]), ISP);
    }

    #[test]
    fn performance_over_nested_policies_uses_their_fastest_pop() {
        let plan = plan(
            r#"
[[policies]]
name = "eu"
method = "weighted"
members = [{ pop = "ams" }, { pop = "dub" }]

[[policies]]
name = "fast"
method = "performance"
members = [{ policy = "eu" }, { pop = "nyc" }]

[[prefixes]]
prefix = "192.0.2.0/24"
policy = "fast"
"#,
        );
        let layout = Layout::new(&plan);
        let r = resolve(
            &plan,
            &layout,
            &health(&[], &[(AMS, 50), (DUB, 20), (NYC, 30)]),
            &Choices::default(),
        );
        assert_eq!(
            counts(&r.tables[&key("fast")].pops)
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            [AMS, DUB]
        );
        assert_eq!(r.choices.get("fast", None), Some("policy:eu"));
        // DUB down: eu's fastest is now AMS (50 ms), NYC is 20 ms better.
        let r = resolve(
            &plan,
            &layout,
            &health(&[DUB], &[(AMS, 50), (DUB, 20), (NYC, 30)]),
            &r.choices,
        );
        assert_eq!(only(&r.tables[&key("fast")]), NYC);
    }

    #[test]
    fn flat_table_still_serves_pop_only_policies() {
        // `policy::table` (used by the loader until it calls `resolve`) and
        // `resolve` agree on flat policies.
        let plan = plan(WEIGHTED);
        let (_, r) = run(&plan, &health(&[DUB], &[]));
        let p = &plan.policies[0];
        assert_eq!(
            policy::table(p.method, &p.members, |x| x != u32::from(DUB)),
            r.tables[&key("w")].pops
        );
    }
}
