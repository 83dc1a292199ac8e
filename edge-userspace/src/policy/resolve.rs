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
use crate::plan::{ExitKind, Fallback, Method, Plan, Region, Target};

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
    /// Set for an exit's table: it has the exit's fallback, not the
    /// policy's, and no region (the root: every member).
    pub exit: Option<ExitKind>,
}

impl fmt::Display for TableKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = self.exit {
            write!(f, "{}_exit ", e.name())?;
        }
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
    /// By index in `Plan::domain_prefixes`: the index into `keys` of its
    /// table (private domains have no subnet policies).
    pub domain_table: Vec<Option<u32>>,
    /// Entries subnet policies add, by prefix, then in mapping order.
    pub more_specific: Vec<MoreSpecific>,
    /// Index into `keys` of the backbone exit's table.
    pub backbone_table: Option<u32>,
    /// Index into `keys` of the transit exit's table.
    pub transit_table: Option<u32>,
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
pub(crate) fn region_sensitive(plan: &Plan) -> Vec<bool> {
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
            exit: None,
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
        let domain_raw: Vec<Option<u32>> = plan
            .domain_prefixes
            .iter()
            .map(|(_, prefix)| {
                let p = prefix.policy?;
                Some(intern(key_of(p, &prefix.region, None)))
            })
            .collect();
        let mut exit_key = |kind: ExitKind, exit: Option<crate::plan::Exit>| {
            exit.map(|e| {
                intern(TableKey {
                    exit: Some(kind),
                    ..key_of(e.policy, &None, None)
                })
            })
        };
        let backbone = exit_key(ExitKind::Backbone, plan.backbone_exit);
        let transit = exit_key(ExitKind::Transit, plan.transit_exit);
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
            domain_table: domain_raw
                .iter()
                .map(|k| k.map(|k| place[k as usize]))
                .collect(),
            more_specific: extra
                .iter()
                .map(|&(prefix, net, k)| MoreSpecific {
                    prefix,
                    net,
                    table: place[k as usize],
                })
                .collect(),
            backbone_table: backbone.map(|k| place[k as usize]),
            transit_table: transit.map(|k| place[k as usize]),
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
    // The exits' own tables first: they are the fallbacks of the others.
    let root = Region::default();
    let mut exit_table =
        |exit: Option<crate::plan::Exit>| exit.and_then(|e| r.policy(e.policy as usize, &root));
    let backbone = exit_table(plan.backbone_exit);
    let transit = exit_table(plan.transit_exit);
    let mut tables = BTreeMap::new();
    for key in &layout.keys {
        let Some(p) = plan.policies.iter().position(|x| x.name == key.policy) else {
            continue;
        };
        let region = key.region.clone().unwrap_or_default();
        let (outcome, fallback) = match key.exit {
            Some(ExitKind::Backbone) => (
                backbone,
                plan.backbone_exit.map_or(Fallback::Pass, |e| e.fallback),
            ),
            Some(ExitKind::Transit) => (
                transit,
                plan.transit_exit.map_or(Fallback::Pass, |e| e.fallback),
            ),
            None => (
                match &key.subnet_member {
                    Some(label) => r.subnet(p, label, &region),
                    None => r.policy(p, &region),
                },
                plan.policies[p].fallback,
            ),
        };
        let table = match outcome {
            Some(pops) => Table {
                pops,
                fallback: None,
            },
            // Falling back to an exit that is down too: to the kernel.
            None => match (fallback, backbone, transit) {
                (Fallback::Transit, _, Some(pops)) | (Fallback::Backbone, Some(pops), _) => Table {
                    pops,
                    fallback: Some(fallback),
                },
                _ => Table {
                    pops: PolicyTable::default(),
                    fallback: Some(Fallback::Pass),
                },
            },
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
mod tests;
