//! `[[prefixes]]` and `[[route_sources]]`: networks, DSCP and protocol names.

use std::collections::HashMap;

use edge_common::limits;
use ipnet::IpNet;
use toml::Spanned;

use super::{
    super::schema::*,
    Validator,
    policies::{Attrs, AttrsConfig},
};
use crate::plan::*;

/// Route protocol names of /etc/iproute2/rt_protos.
pub fn protocol_by_name(name: &str) -> Option<u8> {
    Some(match name {
        "redirect" => 1,
        "kernel" => 2,
        "boot" => 3,
        "static" => 4,
        "gated" => 8,
        "ra" => 9,
        "mrt" => 10,
        "zebra" => 11,
        "bird" => 12,
        "dnrouted" => 13,
        "xorp" => 14,
        "ntk" => 15,
        "dhcp" => 16,
        "keepalived" => 18,
        "babel" => 42,
        "openr" => 99,
        "bgp" => 186,
        "isis" => 187,
        "ospf" => 188,
        "rip" => 189,
        "eigrp" => 192,
        _ => return None,
    })
}

/// DSCP names (RFC 2474 class selectors, RFC 2597 AF, RFC 3246 EF, RFC 5865 VA, RFC 8622 LE).
pub fn dscp_by_name(name: &str) -> Option<u8> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "be" | "df" | "default" => 0,
        "le" => 1,
        "ef" => 46,
        "va" | "voice-admit" => 44,
        _ => {
            if let Some(c) = n.strip_prefix("cs") {
                let c: u8 = c.parse().ok().filter(|c| *c <= 7)?;
                c << 3
            } else if let Some(af) = n.strip_prefix("af") {
                let b = af.as_bytes();
                if b.len() != 2 || !(b'1'..=b'4').contains(&b[0]) || !(b'1'..=b'3').contains(&b[1])
                {
                    return None;
                }
                ((b[0] - b'0') << 3) | ((b[1] - b'0') << 1)
            } else {
                return None;
            }
        }
    })
}

impl Validator {
    pub(super) fn route_sources(
        &mut self,
        sources: &[RouteSourceConfig],
        ports: &[PlannedPort],
        port_ids: &HashMap<&str, u32>,
        pop_ids: &HashMap<&str, u32>,
        policies: &mut Vec<PlannedPolicy>,
        domains: &[String],
    ) -> Vec<PlannedRouteSource> {
        let mut out = Vec::new();
        for s in sources {
            let table = *s.table.get_ref();
            if !(1..=i64::from(u32::MAX)).contains(&table) || [253, 255].contains(&table) {
                self.bad(
                    Some(s.table.span()),
                    format!("route source table {table} must be 1-4294967295 and not local (255) or default (253)"),
                );
                continue;
            }
            let what = format!("route source table {table}");
            let Ok(domain) = self.domain_ref(s.domain.as_ref(), domains, &what) else {
                continue;
            };
            if let (Some(d), Some(first)) = (domain, s.protect.first()) {
                self.bad(
                    Some(first.span()),
                    format!(
                        "{what} (domain {}): protect applies to the public domain",
                        domains[d as usize]
                    ),
                );
                continue;
            }
            if domain.is_some() && s.preference == Preference::Internet {
                self.bad(
                    Some(s.table.span()),
                    format!("{what} (domain {}): a private domain has no transit; preference is microsoft (the default)", domains[domain.unwrap_or(0) as usize]),
                );
                continue;
            }
            let mut number = |v: &Option<Spanned<i64>>, key: &str| -> Result<Option<u32>, ()> {
                match v {
                    None => Ok(None),
                    Some(v) if (0..=i64::from(u32::MAX)).contains(v.get_ref()) => {
                        Ok(Some(*v.get_ref() as u32))
                    }
                    Some(v) => {
                        self.bad(
                            Some(v.span()),
                            format!("{what}: {key} {} is out of range", v.get_ref()),
                        );
                        Err(())
                    }
                }
            };
            let (Ok(metric), Ok(realm)) = (number(&s.metric, "metric"), number(&s.realm, "realm"))
            else {
                continue;
            };
            let protocol = match &s.protocol {
                None => None,
                Some(p) => match p.get_ref() {
                    Protocol::Number(n) if (0..=255).contains(n) => Some(*n as u8),
                    Protocol::Name(n) if protocol_by_name(n).is_some() => protocol_by_name(n),
                    _ => {
                        self.bad(
                            Some(p.span()),
                            format!("{what}: protocol must be 0-255 or a name of /etc/iproute2/rt_protos (bird, bgp, static, zebra, ...)"),
                        );
                        continue;
                    }
                },
            };
            let Some(Attrs {
                policy,
                dscp,
                protect,
            }) = self.attrs(
                &what,
                AttrsConfig {
                    at: s.table.span(),
                    preference: s.preference,
                    policy: &s.policy,
                    pop: &s.pop,
                    dscp: &s.dscp,
                    protect: &s.protect,
                },
                ports,
                port_ids,
                pop_ids,
                policies,
            )
            else {
                continue;
            };
            // A PoP with a problem of its own: its domain is not known.
            let doubtful = policy.is_some_and(|id| {
                policies[id as usize].members.iter().any(|m| {
                    matches!(m.target, Target::Pop(q) if self.doubtful_pops.get(q as usize) == Some(&true))
                })
            });
            if let Some(id) = policy
                && policies[id as usize].domain != domain
                && !doubtful
            {
                let at = s
                    .policy
                    .as_ref()
                    .or(s.pop.as_ref())
                    .map_or(s.table.span(), |x| x.span());
                let name =
                    |d: Option<u32>| d.map_or(super::PUBLIC, |d| domains[d as usize].as_str());
                self.bad(
                    Some(at),
                    format!(
                        "{what} (domain {}): {} is in domain {}; a route's traffic only goes to PoPs of the source's domain",
                        name(domain),
                        policies[id as usize].name,
                        name(policies[id as usize].domain)
                    ),
                );
                continue;
            }
            out.push(PlannedRouteSource {
                table: table as u32,
                family: s.family,
                protocol,
                metric,
                realm,
                registration: s.registration.clone(),
                preference: s.preference,
                policy,
                dscp,
                protect,
                domain,
            });
        }
        out
    }

    /// A CIDR without host bits.
    pub(super) fn cidr(&mut self, text: &Spanned<String>, what: &str) -> Option<IpNet> {
        match text.get_ref().parse::<IpNet>() {
            Ok(net) if net.trunc() != net => {
                self.bad(
                    Some(text.span()),
                    format!(
                        "{what} {net} has host bits set (did you mean {}?)",
                        net.trunc()
                    ),
                );
                None
            }
            Ok(net) => Some(net),
            Err(e) => {
                self.bad(
                    Some(text.span()),
                    format!("{what}: bad CIDR {:?}: {e}", text.get_ref()),
                );
                None
            }
        }
    }

    // Each section takes what the sections before it resolved.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn prefixes(
        &mut self,
        prefixes: &[PrefixConfig],
        ports: &[PlannedPort],
        port_ids: &HashMap<&str, u32>,
        pop_ids: &HashMap<&str, u32>,
        policies: &mut Vec<PlannedPolicy>,
        sizes: Limits,
        domains: &[String],
    ) -> (Vec<PlannedPrefix>, Vec<(u32, PlannedPrefix)>) {
        let mut out = Vec::with_capacity(prefixes.len());
        let mut private = Vec::new();
        let mut seen: HashMap<IpNet, Option<usize>> = HashMap::with_capacity(prefixes.len());
        let mut seen_private: Vec<HashMap<IpNet, Option<usize>>> =
            vec![HashMap::new(); domains.len()];
        let (mut v4, mut v6) = (0usize, 0usize);
        for entry in prefixes {
            let Ok(domain) = self.domain_ref(
                entry.domain.as_ref(),
                domains,
                &format!("prefix {}", entry.prefix.get_ref()),
            ) else {
                continue;
            };
            if let (Some(d), Some(first)) = (domain, entry.protect.first()) {
                // Reported alone (the ports it names are not checked).
                self.bad(
                    Some(first.span()),
                    format!("prefix {} (domain {}): protect applies to the public domain (a private domain's traffic is classified by destination, only on its own ports)", entry.prefix.get_ref(), domains[d as usize]),
                );
                continue;
            }
            let seen = match domain {
                Some(d) => &mut seen_private[d as usize],
                None => &mut seen,
            };
            let Some(p) = self.prefix(entry, seen, ports, port_ids, pop_ids, policies) else {
                continue;
            };
            if !self.prefix_domain(entry, &p, domain, policies, domains) {
                continue;
            }
            match domain {
                Some(d) => private.push((d, p)),
                None => {
                    match p.net {
                        IpNet::V4(_) => v4 += 1,
                        IpNet::V6(_) => v6 += 1,
                    }
                    out.push(p);
                }
            }
        }
        self.map_limits(v4, v6, sizes);
        for (family, v6) in [("IPv4", false), ("IPv6", true)] {
            let n = private
                .iter()
                .filter(|(_, p)| p.net.addr().is_ipv6() == v6)
                .count();
            self.limit(
                &format!("{family} prefixes of private domains"),
                n,
                limits::MAX_DOMAIN_PREFIXES,
            );
        }
        self.limit("policies", policies.len(), limits::MAX_POLICIES);
        (out, private)
    }

    /// What a prefix in `domain` (`None`: public) may ask for: its
    /// policy in the same domain; in a private domain, the microsoft
    /// preference (no transit there). (`protect` is refused before.)
    fn prefix_domain(
        &mut self,
        entry: &PrefixConfig,
        p: &PlannedPrefix,
        domain: Option<u32>,
        policies: &[PlannedPolicy],
        domains: &[String],
    ) -> bool {
        let name = |d: Option<u32>| d.map_or(super::PUBLIC, |d| domains[d as usize].as_str());
        let net = p.net;
        if let Some(id) = p.policy {
            let pd = policies[id as usize].domain;
            // A PoP with a problem of its own: its domain is not known.
            let doubtful = policies[id as usize].members.iter().any(|m| {
                matches!(m.target, Target::Pop(q) if self.doubtful_pops.get(q as usize) == Some(&true))
            });
            if pd != domain && !doubtful {
                let at = entry
                    .policy
                    .as_ref()
                    .or(entry.pop.as_ref())
                    .map_or(entry.prefix.span(), |s| s.span());
                self.bad(
                    Some(at),
                    format!(
                        "prefix {net} (domain {}): {} {} is in domain {}; a prefix's traffic only goes to PoPs of its own domain",
                        name(domain),
                        if entry.pop.is_some() { "PoP" } else { "policy" },
                        entry.pop.as_ref().or(entry.policy.as_ref()).map_or("", |s| s.get_ref().as_str()),
                        name(pd)
                    ),
                );
                return false;
            }
        }
        if domain.is_none() {
            return true;
        }
        if p.preference == Preference::Internet {
            self.bad(
                Some(entry.prefix.span()),
                format!("prefix {net} (domain {}): a private domain has no transit; preference is microsoft (the default)", name(domain)),
            );
            return false;
        }
        true
    }

    /// One `[[prefixes]]` entry (or live prefix), checked and resolved;
    /// `seen` holds the networks of the entries before it (and their line).
    pub(crate) fn prefix(
        &mut self,
        entry: &PrefixConfig,
        seen: &mut HashMap<IpNet, Option<usize>>,
        ports: &[PlannedPort],
        port_ids: &HashMap<&str, u32>,
        pop_ids: &HashMap<&str, u32>,
        policies: &mut Vec<PlannedPolicy>,
    ) -> Option<PlannedPrefix> {
        let text = entry.prefix.get_ref();
        let net = match text.parse::<IpNet>() {
            Ok(net) if net.trunc() != net => {
                self.bad(
                    Some(entry.prefix.span()),
                    format!(
                        "prefix {net} has host bits set (did you mean {}?)",
                        net.trunc()
                    ),
                );
                return None;
            }
            Ok(net) => match martian(&net) {
                Some(range) => {
                    self.bad(
                        Some(entry.prefix.span()),
                        format!(
                            "prefix {net} lies in {range}, which no router forwards; it cannot be registered"
                        ),
                    );
                    return None;
                }
                None => net,
            },
            Err(e) => {
                self.bad(
                    Some(entry.prefix.span()),
                    format!("bad prefix {text:?}: {e}"),
                );
                return None;
            }
        };
        if let Some(first) = seen.insert(net, self.line(entry.prefix.span().start)) {
            let at = match first {
                Some(line) => format!("on line {line}"),
                None => "by a live change".to_string(),
            };
            self.bad(
                Some(entry.prefix.span()),
                format!("prefix {net} is already registered {at}"),
            );
            return None;
        }
        let what = format!("prefix {net}");
        let Attrs {
            policy,
            dscp,
            protect,
        } = self.attrs(
            &what,
            AttrsConfig {
                at: entry.prefix.span(),
                preference: entry.preference,
                policy: &entry.policy,
                pop: &entry.pop,
                dscp: &entry.dscp,
                protect: &entry.protect,
            },
            ports,
            port_ids,
            pop_ids,
            policies,
        )?;
        let region = entry.region.as_ref().and_then(|r| self.region(r, &what));
        Some(PlannedPrefix {
            net,
            registration: entry
                .registration
                .as_deref()
                .map_or_else(|| net.to_string().into(), Into::into),
            origin: if entry.prefix.span().start >= self.base_len {
                Origin::Live
            } else {
                Origin::Config
            },
            preference: entry.preference,
            policy,
            dscp,
            protect,
            region,
            held: Vec::new(),
        })
    }

    /// `v4` and `v6` prefixes fit the prefix maps (`sizes`).
    pub(crate) fn map_limits(&mut self, v4: usize, v6: usize, sizes: Limits) {
        for (family, n, limit, map) in [
            (
                "IPv4",
                v4,
                sizes.prefixes_v4,
                edge_common::map_names::PREFIX_V4,
            ),
            (
                "IPv6",
                v6,
                sizes.prefixes_v6,
                edge_common::map_names::PREFIX_V6,
            ),
        ] {
            if n > limit as usize {
                self.bad(
                    None,
                    format!(
                        "map {map} is full: {n} {family} prefixes exceed its limit of {limit} entries ([limits] {})",
                        crate::config::limit_key(map).unwrap_or("?")
                    ),
                );
                if let Some(p) = self.problems.last_mut() {
                    p.map_full = true;
                }
            }
        }
    }
}
