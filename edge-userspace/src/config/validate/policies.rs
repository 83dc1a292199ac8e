//! `[[policies]]`: methods, members, fallbacks, and the attributes prefixes share.

use std::{collections::HashMap, ops::Range, time::Duration};

use toml::Spanned;

use super::{super::schema::*, PUBLIC, Validator, prefixes::dscp_by_name};
use crate::plan::*;

/// The attribute keys shared by `[[prefixes]]` and `[[route_sources]]`.
pub(super) struct AttrsConfig<'a> {
    /// Where problems without a key of their own point.
    pub(super) at: Range<usize>,
    pub(super) preference: Preference,
    pub(super) policy: &'a Option<Spanned<String>>,
    pub(super) pop: &'a Option<Spanned<String>>,
    pub(super) dscp: &'a Option<Spanned<Dscp>>,
    pub(super) protect: &'a [Spanned<String>],
}

/// Resolved attributes.
pub(super) struct Attrs {
    pub(super) policy: Option<u32>,
    pub(super) dscp: Option<u8>,
    pub(super) protect: Vec<u32>,
}

impl Validator {
    pub(super) fn policies(
        &mut self,
        policies: &[PolicyConfig],
        pops: &[PlannedPop],
        domains: &[String],
    ) -> Vec<PlannedPolicy> {
        let pop_ids: HashMap<&str, u32> = pops
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i as u32))
            .collect();
        // Policy id = position in the file; members may name later policies.
        let mut policy_ids: HashMap<&str, u32> = HashMap::new();
        for (i, p) in policies.iter().enumerate() {
            policy_ids
                .entry(p.name.get_ref().as_str())
                .or_insert(i as u32);
        }
        let mut out: Vec<PlannedPolicy> = Vec::new();
        for policy in policies {
            let name = policy.name.get_ref();
            if name.is_empty() || name.starts_with("pop:") {
                self.bad(
                    Some(policy.name.span()),
                    format!("policy name {name:?} must be non-empty and not start with `pop:`"),
                );
            } else if out.iter().any(|p| &p.name == name) {
                self.bad(
                    Some(policy.name.span()),
                    format!("policy {name} is defined twice"),
                );
            }
            if policy.members.get_ref().is_empty() {
                self.bad(
                    Some(policy.members.span()),
                    format!("policy {name} has no members"),
                );
            }
            let method = policy.method;
            let mut members: Vec<Member> = Vec::new();
            for (i, spanned) in policy.members.get_ref().iter().enumerate() {
                let m = spanned.get_ref();
                let target = match (&m.pop, &m.policy) {
                    (Some(pop), None) => {
                        let Some(id) = self.pop_ref(pop, &pop_ids, &format!("policy {name}"))
                        else {
                            continue;
                        };
                        (Target::Pop(id), pop)
                    }
                    (None, Some(nested)) => match policy_ids.get(nested.get_ref().as_str()) {
                        Some(&id) if policies[id as usize].method == Method::Subnet => {
                            self.bad(
                                Some(nested.span()),
                                format!(
                                    "policy {name}: subnet policy {} cannot be a member (it maps customer addresses, which only a prefix has)",
                                    nested.get_ref()
                                ),
                            );
                            continue;
                        }
                        Some(&id) => (Target::Policy(id), nested),
                        None => {
                            self.bad(
                                Some(nested.span()),
                                format!(
                                    "policy {name}: unknown member policy {:?}",
                                    nested.get_ref()
                                ),
                            );
                            continue;
                        }
                    },
                    _ => {
                        self.bad(
                            Some(spanned.span()),
                            format!("policy {name}: a member names either a pop or a policy"),
                        );
                        continue;
                    }
                };
                let (target, target_name) = target;
                if members.iter().any(|x| x.target == target) {
                    self.bad(
                        Some(target_name.span()),
                        format!("policy {name}: {} is a member twice", target_name.get_ref()),
                    );
                    continue;
                }
                let mut number = |v: &Option<Spanned<i64>>, what: &str, default: u32| match v {
                    None => default,
                    Some(v) => self
                        .ranged(v, 1..=1000, &format!("policy {name}: {what}"))
                        .map_or(default, |n| n as u32),
                };
                let weight = number(&m.weight, "weight", 1);
                let priority = number(&m.priority, "priority", i as u32 + 1);
                let own_region = match &m.region {
                    Some(r) if method != Method::Geographic => {
                        self.bad(
                            Some(r.span()),
                            format!(
                                "policy {name}: a member region applies to the geographic method only"
                            ),
                        );
                        None
                    }
                    Some(r) => self.region(r, &format!("policy {name}")),
                    None => None,
                };
                let region = match (own_region, target) {
                    (Some(r), _) => Some(r),
                    (None, Target::Pop(p)) if method == Method::Geographic => {
                        pops[p as usize].region.clone()
                    }
                    _ => None,
                };
                if method == Method::Geographic && region.is_none() && m.region.is_none() {
                    self.bad(
                        Some(target_name.span()),
                        format!(
                            "policy {name}: member {} has no region (give the member or its PoP a region)",
                            target_name.get_ref()
                        ),
                    );
                }
                let mut subnets = Vec::new();
                match &m.subnets {
                    Some(list) if method != Method::Subnet => self.bad(
                        Some(list.span()),
                        format!("policy {name}: subnets apply to the subnet method only"),
                    ),
                    Some(list) => {
                        if list.get_ref().is_empty() {
                            self.bad(
                                Some(list.span()),
                                format!(
                                    "policy {name}: empty subnets (leave the key out for the fallback member)"
                                ),
                            );
                        }
                        for text in list.get_ref() {
                            if let Some(net) = self.cidr(text, &format!("policy {name}: subnet")) {
                                let dup = members
                                    .iter()
                                    .flat_map(|x| &x.subnets)
                                    .chain(&subnets)
                                    .any(|n| *n == net);
                                if dup {
                                    self.bad(
                                        Some(text.span()),
                                        format!("policy {name}: subnet {net} is mapped twice"),
                                    );
                                } else {
                                    subnets.push(net);
                                }
                            }
                        }
                    }
                    None => {}
                }
                members.push(Member {
                    target,
                    weight,
                    priority,
                    region,
                    subnets,
                });
            }
            if method == Method::Subnet {
                let fallbacks = policy
                    .members
                    .get_ref()
                    .iter()
                    .filter(|m| m.get_ref().subnets.is_none())
                    .count();
                if fallbacks != 1 {
                    self.bad(
                        Some(policy.members.span()),
                        format!(
                            "policy {name}: a subnet policy needs exactly one member without subnets (the fallback member), not {fallbacks}"
                        ),
                    );
                }
            }
            let mut hysteresis = Hysteresis::default();
            for (v, key, range) in [
                (&policy.hysteresis_ms, "hysteresis_ms", 0..=10_000),
                (&policy.hysteresis_percent, "hysteresis_percent", 0..=1000),
            ] {
                let Some(v) = v else { continue };
                if method != Method::Performance {
                    self.bad(
                        Some(v.span()),
                        format!("policy {name}: {key} applies to the performance method only"),
                    );
                } else if let Some(n) = self.ranged(v, range, &format!("policy {name}: {key}")) {
                    if key == "hysteresis_ms" {
                        hysteresis.absolute = Duration::from_millis(n as u64);
                    } else {
                        hysteresis.percent = n as u32;
                    }
                }
            }
            out.push(PlannedPolicy {
                name: name.clone(),
                method,
                members,
                // Set once the exits are known (`fallbacks`).
                fallback: Fallback::Pass,
                hysteresis,
                // Set below, once every member is known.
                domain: None,
            });
        }
        self.nesting(policies, &out);
        self.policy_domains(policies, &mut out, pops, domains);
        out
    }

    /// Each policy's domain: the one its PoPs and nested policies are in.
    /// A policy mixing domains is refused (traffic of one domain would
    /// leave through another's ports); so is a subnet policy or a
    /// `transit` fallback in a private domain (neither exists there).
    fn policy_domains(
        &mut self,
        config: &[PolicyConfig],
        policies: &mut [PlannedPolicy],
        pops: &[PlannedPop],
        domains: &[String],
    ) {
        fn walk(
            policies: &[PlannedPolicy],
            pops: &[PlannedPop],
            doubtful: &[bool],
            at: usize,
            seen: &mut Vec<bool>,
            out: &mut Vec<Option<u32>>,
        ) {
            if std::mem::replace(&mut seen[at], true) {
                return;
            }
            for m in &policies[at].members {
                match m.target {
                    // A PoP whose egress had a problem says nothing.
                    Target::Pop(p) if doubtful.get(p as usize) == Some(&true) => {}
                    Target::Pop(p) => out.push(pops[p as usize].domain),
                    Target::Policy(q) => walk(policies, pops, doubtful, q as usize, seen, out),
                }
            }
        }
        let name = |d: Option<u32>| d.map_or(PUBLIC, |d| domains[d as usize].as_str());
        for i in 0..policies.len() {
            let mut found = Vec::new();
            let doubtful = self.doubtful_pops.clone();
            walk(
                policies,
                pops,
                &doubtful,
                i,
                &mut vec![false; policies.len()],
                &mut found,
            );
            found.sort();
            found.dedup();
            let Some(&first) = found.first() else {
                continue;
            };
            if found.len() > 1 {
                let names: Vec<&str> = found.iter().map(|&d| name(d)).collect();
                self.bad(
                    Some(config[i].name.span()),
                    format!(
                        "policy {}: its PoPs are in domains {} (a policy's PoPs, nested ones included, are all in one domain)",
                        policies[i].name,
                        names.join(", ")
                    ),
                );
                continue;
            }
            policies[i].domain = first;
            if first.is_some() && config[i].method == Method::Subnet {
                self.bad(
                    Some(config[i].name.span()),
                    format!(
                        "policy {}: subnet policies are for the public domain, and its PoPs are in domain {}",
                        policies[i].name,
                        name(first)
                    ),
                );
            }
            if let Some(f) = &config[i].fallback
                && first.is_some()
                && *f.get_ref() == Fallback::Transit
            {
                self.bad(
                    Some(f.span()),
                    format!(
                        "policy {}: fallback = \"transit\" would take domain {}'s traffic out of it; a private domain's policy falls back to \"pass\" (dropped and counted, no_next_hop)",
                        policies[i].name,
                        name(first)
                    ),
                );
            }
        }
    }

    /// Resolves what a prefix (or a route source) asks for: its policy (a
    /// `pop` shorthand becomes a one-member policy), DSCP and protection.
    pub(super) fn attrs(
        &mut self,
        what: &str,
        c: AttrsConfig<'_>,
        ports: &[PlannedPort],
        port_ids: &HashMap<&str, u32>,
        pop_ids: &HashMap<&str, u32>,
        policies: &mut Vec<PlannedPolicy>,
    ) -> Option<Attrs> {
        let policy = match (&c.policy, &c.pop) {
            (Some(_), Some(pop)) => {
                self.bad(
                    Some(pop.span()),
                    format!("{what}: give either policy or pop, not both"),
                );
                return None;
            }
            (Some(name), None) => match policies.iter().position(|p| &p.name == name.get_ref()) {
                Some(id) => Some(id as u32),
                None => {
                    self.bad(
                        Some(name.span()),
                        format!("{what}: unknown policy {:?}", name.get_ref()),
                    );
                    return None;
                }
            },
            (None, Some(pop)) => {
                let pop_id = self.pop_ref(pop, pop_ids, what)?;
                let domain = self.pop_domains.get(pop_id as usize).copied().flatten();
                Some(pop_policy(policies, pop.get_ref(), pop_id, domain))
            }
            (None, None) if c.preference == Preference::Internet => None,
            (None, None) => {
                self.bad(
                    Some(c.at.clone()),
                    format!("{what}: the microsoft preference needs a policy (or a pop)"),
                );
                return None;
            }
        };
        let dscp = match c.dscp {
            None => None,
            Some(d) => match d.get_ref() {
                Dscp::Number(n) if (0..=63).contains(n) => Some(*n as u8),
                Dscp::Number(n) => {
                    self.bad(Some(d.span()), format!("{what}: DSCP {n} is outside 0-63"));
                    None
                }
                Dscp::Name(name) => match dscp_by_name(name) {
                    Some(v) => Some(v),
                    None => {
                        self.bad(Some(d.span()), format!("{what}: unknown DSCP class {name:?} (ef, af11-af43, cs0-cs7, be, le, va, or 0-63)"));
                        None
                    }
                },
            },
        };
        let mut protect = Vec::new();
        for p in c.protect {
            match port_ids.get(p.get_ref().as_str()) {
                Some(&id) if ports[id as usize].domain.is_some() => self.bad(
                    Some(p.span()),
                    format!(
                        "{what}: protect names {}, a port of a private domain (protection is the public domain's)",
                        p.get_ref()
                    ),
                ),
                Some(&id) if ports[id as usize].role == Role::Peering => protect.push(id),
                Some(_) => self.bad(
                    Some(p.span()),
                    format!(
                        "{what}: protect names {}, which is not a peering port",
                        p.get_ref()
                    ),
                ),
                None => self.bad(
                    Some(p.span()),
                    format!("{what}: protect names unknown port {:?}", p.get_ref()),
                ),
            }
        }
        Some(Attrs {
            policy,
            dscp,
            protect,
        })
    }
}

/// The id of PoP `pop_id`'s one-member policy `pop:NAME` (method
/// `priority`, fallback `pass`), created on first use: what `pop = "NAME"`
/// means on a prefix, a route source or an exit.
pub(super) fn pop_policy(
    policies: &mut Vec<PlannedPolicy>,
    name: &str,
    pop_id: u32,
    domain: Option<u32>,
) -> u32 {
    let name = format!("pop:{name}");
    match policies.iter().position(|p| p.name == name) {
        Some(id) => id as u32,
        None => {
            policies.push(PlannedPolicy {
                name,
                method: Method::Priority,
                members: vec![Member::pop(pop_id, 1, 1)],
                fallback: Fallback::Pass,
                hysteresis: Hysteresis::default(),
                domain,
            });
            (policies.len() - 1) as u32
        }
    }
}
