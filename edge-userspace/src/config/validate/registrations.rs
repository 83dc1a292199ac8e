//! `[[registrations]]` (route analytics: the ASNs that may announce a
//! registration's prefixes; customer latency: its objective), `[bmp]`
//! (where edged listens for BGP speakers) and `[latency]`.

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use toml::Spanned;

use super::{super::schema::*, Validator};
use crate::plan::*;

/// AS_TRANS (RFC 6793): stands in for a 4-byte ASN on 2-byte sessions,
/// never a real origin or upstream.
const AS_TRANS: i64 = 23456;

impl Validator {
    // Each section takes what the sections before it resolved.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn registrations(
        &mut self,
        config: &[RegistrationConfig],
        prefixes: &[PlannedPrefix],
        domain_prefixes: &[(u32, PlannedPrefix)],
        route_sources: &[PlannedRouteSource],
        ports: &[PlannedPort],
        policies: &[PlannedPolicy],
        pops: &[PlannedPop],
    ) -> Vec<PlannedRegistration> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for r in config {
            let name = r.name.get_ref();
            if name.is_empty() {
                self.bad(Some(r.name.span()), "registration name is empty");
                continue;
            }
            if !seen.insert(name.as_str()) {
                self.bad(
                    Some(r.name.span()),
                    format!("registration {name:?} is declared twice"),
                );
                continue;
            }
            let used = prefixes.iter().any(|p| p.registration == *name)
                || domain_prefixes.iter().any(|(_, p)| p.registration == *name)
                || route_sources
                    .iter()
                    .any(|s| s.registration.as_deref() == Some(name));
            if !used {
                self.bad(
                    Some(r.name.span()),
                    format!(
                        "registration {name:?}: no [[prefixes]] entry or [[route_sources]] entry has registration = {name:?}, so it would monitor nothing"
                    ),
                );
            }
            let origin_asns = match &r.origin_asns {
                Some(list) => {
                    if list.get_ref().is_empty() {
                        self.bad(
                            Some(list.span()),
                            format!("registration {name:?}: origin_asns is empty (list the ASNs that may originate its prefixes)"),
                        );
                    }
                    self.asns(name, "origin_asns", list)
                }
                None => Vec::new(),
            };
            let upstream_asns = match &r.upstream_asns {
                Some(u) if r.origin_asns.is_none() => {
                    self.bad(
                        Some(u.span()),
                        format!("registration {name:?}: upstream_asns without origin_asns: route analytics checks paths of registrations that list their origin ASNs"),
                    );
                    Vec::new()
                }
                Some(u) => self.asns(name, "upstream_asns", u),
                None => Vec::new(),
            };
            let rtt_p90 = r.rtt_p90_ms.as_ref().and_then(|v| {
                self.millis(v, &format!("registration {name:?}: rtt_p90_ms"), 1, 60_000)
            });
            if r.origin_asns.is_none() && r.rtt_p90_ms.is_none() && r.continent.is_none() {
                self.bad(
                    Some(r.name.span()),
                    format!("registration {name:?} declares none of origin_asns (route analytics), rtt_p90_ms (a customer latency objective) and continent (its scope)"),
                );
            }
            let hold_on_hijack = self.hold_on_hijack(name, r, ports);
            let continent = r
                .continent
                .as_ref()
                .and_then(|c| self.region(c, &format!("registration {name:?}: continent")));
            let scope = r.scope.as_ref().map_or(Scope::Continent, |s| *s.get_ref());
            if let (Some(s), None) = (&r.scope, &r.continent)
                && *s.get_ref() == Scope::Continent
            {
                self.bad(
                    Some(s.span()),
                    format!("registration {name:?}: scope = \"continent\" needs continent (the region path of the connection's continent, e.g. \"world > europe\")"),
                );
            }
            if let (Some(c), Some(continent), Scope::Continent) = (&r.continent, &continent, scope)
            {
                // Every policy the registration's prefixes use.
                let used: BTreeSet<u32> = prefixes
                    .iter()
                    .chain(domain_prefixes.iter().map(|(_, p)| p))
                    .filter(|p| p.registration == *name)
                    .filter_map(|p| p.policy)
                    .chain(
                        route_sources
                            .iter()
                            .filter(|s| s.registration.as_deref() == Some(name))
                            .filter_map(|s| s.policy),
                    )
                    .collect();
                self.in_scope(name, c, continent, &used, policies, pops);
            }
            out.push(PlannedRegistration {
                name: name.clone(),
                origin_asns,
                upstream_asns,
                rtt_p90,
                hold_on_hijack,
                continent,
                scope,
            });
        }
        out
    }

    /// A live prefix is a public one: its policy (or PoP) must be too.
    pub(crate) fn live_in_public(
        &mut self,
        p: &PlannedPrefix,
        policies: &[PlannedPolicy],
        plan: &Plan,
    ) -> bool {
        let Some(id) = p.policy else { return true };
        let domain = policies[id as usize].domain;
        if domain.is_none() {
            return true;
        }
        self.bad(
            Some(0..1),
            format!(
                "prefix {}: {} is in domain {}; without --domain a live change registers a prefix of the public domain (add --domain {} for that domain's)",
                p.net,
                policies[id as usize].name,
                plan.domain_name(domain),
                plan.domain_name(domain)
            ),
        );
        false
    }

    /// A live prefix of a registration with scope `continent` keeps to
    /// it, as the config's prefixes do.
    pub(crate) fn live_in_scope(
        &mut self,
        p: &PlannedPrefix,
        policies: &[PlannedPolicy],
        plan: &Plan,
    ) {
        let Some(policy) = p.policy else { return };
        let Some(r) = plan.registrations.iter().find(|r| r.name == p.registration) else {
            return;
        };
        if let (Some(continent), Scope::Continent) = (&r.continent, r.scope) {
            let at = Spanned::new(0..1, r.name.clone());
            self.in_scope(
                &r.name,
                &at,
                continent,
                &BTreeSet::from([policy]),
                policies,
                &plan.pops,
            );
        }
    }

    /// Scope `continent`: every PoP the policies `used` may choose (nested
    /// ones included) lies in `continent`, so no failover leaves it. One
    /// problem per policy, naming the PoPs outside.
    fn in_scope(
        &mut self,
        name: &str,
        at: &Spanned<String>,
        continent: &Region,
        used: &BTreeSet<u32>,
        policies: &[PlannedPolicy],
        pops: &[PlannedPop],
    ) {
        fn walk(
            policies: &[PlannedPolicy],
            at: u32,
            seen: &mut BTreeSet<u32>,
            out: &mut BTreeSet<u32>,
        ) {
            if !seen.insert(at) {
                return;
            }
            for m in &policies[at as usize].members {
                match m.target {
                    Target::Pop(p) => {
                        out.insert(p);
                    }
                    Target::Policy(q) => walk(policies, q, seen, out),
                }
            }
        }
        for &policy in used {
            let mut members = BTreeSet::new();
            walk(policies, policy, &mut BTreeSet::new(), &mut members);
            let outside: Vec<String> = members
                .iter()
                .map(|&p| &pops[p as usize])
                .filter(|p| !p.region.as_ref().is_some_and(|r| r.within(continent)))
                .map(|p| match &p.region {
                    Some(r) => format!("{} ({r})", p.name),
                    None => format!("{} (no region)", p.name),
                })
                .collect();
            if !outside.is_empty() {
                self.bad(
                    Some(at.span()),
                    format!(
                        "registration {name:?} (scope continent, {continent}): policy {} may choose PoPs outside the continent: {}; give them a region within it, use a policy without them, or set scope = \"global\"",
                        policies[policy as usize].name,
                        outside.join(", ")
                    ),
                );
            }
        }
    }

    /// `hold_on_hijack`: known peering ports, no duplicates, with
    /// `origin_asns` (only route analytics raises a hijack); port ids.
    fn hold_on_hijack(
        &mut self,
        name: &str,
        r: &RegistrationConfig,
        ports: &[PlannedPort],
    ) -> Vec<u32> {
        let Some(list) = &r.hold_on_hijack else {
            return Vec::new();
        };
        if r.origin_asns.is_none() {
            self.bad(
                Some(list.span()),
                format!("registration {name:?}: hold_on_hijack without origin_asns: only route analytics raises a hijack, and it checks registrations that list their origin ASNs"),
            );
            return Vec::new();
        }
        if list.get_ref().is_empty() {
            self.bad(
                Some(list.span()),
                format!("registration {name:?}: hold_on_hijack is empty (list the peering ports its prefixes' traffic arrives on, or leave the key out)"),
            );
        }
        let mut out = Vec::new();
        for p in list.get_ref() {
            let port = p.get_ref();
            match ports.iter().position(|q| q.name == *port) {
                Some(id) if ports[id].domain.is_some() => self.bad(
                    Some(p.span()),
                    format!("registration {name:?}: hold_on_hijack names {port}, a port of a private domain (protection is the public domain's)"),
                ),
                Some(id) if ports[id].role != Role::Peering => self.bad(
                    Some(p.span()),
                    format!("registration {name:?}: hold_on_hijack names {port}, which is not a peering port"),
                ),
                Some(id) if out.contains(&(id as u32)) => self.bad(
                    Some(p.span()),
                    format!("registration {name:?}: hold_on_hijack: {port} is listed twice"),
                ),
                Some(id) => out.push(id as u32),
                None => self.bad(
                    Some(p.span()),
                    format!("registration {name:?}: hold_on_hijack names unknown port {port:?}"),
                ),
            }
        }
        out.sort_unstable();
        out
    }

    /// A list of ASNs: each 1..=4294967295, not AS_TRANS, no duplicates;
    /// sorted.
    fn asns(&mut self, name: &str, key: &str, list: &Spanned<Vec<Spanned<i64>>>) -> Vec<u32> {
        let mut out = BTreeSet::new();
        for asn in list.get_ref() {
            let n = *asn.get_ref();
            if !(1..=i64::from(u32::MAX)).contains(&n) {
                self.bad(
                    Some(asn.span()),
                    format!("registration {name:?}: {key}: {n} is not an ASN (1-4294967295)"),
                );
            } else if n == AS_TRANS {
                self.bad(
                    Some(asn.span()),
                    format!("registration {name:?}: {key}: 23456 is AS_TRANS (RFC 6793), never a real AS: give the 4-byte ASN"),
                );
            } else if !out.insert(n as u32) {
                self.bad(
                    Some(asn.span()),
                    format!("registration {name:?}: {key}: {n} is listed twice"),
                );
            }
        }
        out.into_iter().collect()
    }

    /// `[bmp] listen`, required when registrations are declared (nothing
    /// else feeds them).
    pub(super) fn bmp(
        &mut self,
        bmp: Option<&BmpConfig>,
        declared: &[RegistrationConfig],
    ) -> Option<SocketAddr> {
        let Some(bmp) = bmp else {
            if let Some((r, origins)) = declared
                .iter()
                .find_map(|r| Some((r, r.origin_asns.as_ref()?)))
            {
                self.bad(
                    Some(origins.span()),
                    format!(
                        "registration {:?} declares origin_asns, which only BMP feeds check: add a [bmp] section with `listen = \"IP:port\"` (the address edged accepts BMP sessions on) and point the BGP speaker's BMP at it",
                        r.name.get_ref()
                    ),
                );
            }
            return None;
        };
        match bmp.listen.get_ref().parse::<SocketAddr>() {
            Ok(a) if a.port() == 0 => {
                self.bad(
                    Some(bmp.listen.span()),
                    format!(
                        "[bmp] listen {:?}: port 0 is not a port a BGP speaker can connect to",
                        bmp.listen.get_ref()
                    ),
                );
                None
            }
            Ok(a) => Some(a),
            Err(_) => {
                self.bad(
                    Some(bmp.listen.span()),
                    format!(
                        "[bmp] listen {:?} is not an IP:port (say \"127.0.0.1:11019\" or \"[::1]:11019\")",
                        bmp.listen.get_ref()
                    ),
                );
                None
            }
        }
    }

    /// A duration in milliseconds within `min..=max`.
    fn millis(&mut self, v: &Spanned<i64>, key: &str, min: i64, max: i64) -> Option<Duration> {
        let n = *v.get_ref();
        if (min..=max).contains(&n) {
            Some(Duration::from_millis(n as u64))
        } else {
            self.bad(Some(v.span()), format!("{key} {n} is outside {min}-{max}"));
            None
        }
    }

    /// `[latency]`; a registration's `rtt_p90_ms` needs it.
    pub(super) fn latency(
        &mut self,
        config: Option<&LatencyConfig>,
        declared: &[RegistrationConfig],
    ) -> Option<LatencyPlan> {
        let Some(c) = config else {
            if let Some((r, v)) = declared
                .iter()
                .find_map(|r| Some((r, r.rtt_p90_ms.as_ref()?)))
            {
                self.bad(
                    Some(v.span()),
                    format!(
                        "registration {:?} sets rtt_p90_ms, but customer latency is not measured: add a [latency] section",
                        r.name.get_ref()
                    ),
                );
            }
            return None;
        };
        let d = LatencyPlan::default();
        let mut ms =
            |v: &Option<Spanned<i64>>, key: &str, min: i64, max: i64, default: Duration| {
                v.as_ref()
                    .map_or(Some(default), |v| {
                        self.millis(v, &format!("[latency] {key}"), min, max)
                    })
                    .unwrap_or(default)
            };
        let sample_interval = ms(
            &c.sample_interval_ms,
            "sample_interval_ms",
            10,
            60_000,
            d.sample_interval,
        );
        let period = ms(&c.period_ms, "period_ms", 100, 60_000, d.period);
        let window = ms(&c.window_ms, "window_ms", 100, 3_600_000, d.window);
        let hold = ms(&c.hold_ms, "hold_ms", 0, 3_600_000, d.hold);
        let retain = match &c.retain_minutes {
            None => d.retain,
            Some(v) if (1..=1440).contains(v.get_ref()) => {
                Duration::from_secs(*v.get_ref() as u64 * 60)
            }
            Some(v) => {
                self.bad(
                    Some(v.span()),
                    format!("[latency] retain_minutes {} is outside 1-1440", v.get_ref()),
                );
                d.retain
            }
        };
        let rtt_p90 = c
            .rtt_p90_ms
            .as_ref()
            .and_then(|v| self.millis(v, "[latency] rtt_p90_ms", 1, 60_000));
        let min_samples = match &c.min_samples {
            None => d.min_samples,
            Some(v) if (1..=1_000_000).contains(v.get_ref()) => *v.get_ref() as u64,
            Some(v) => {
                self.bad(
                    Some(v.span()),
                    format!("[latency] min_samples {} is outside 1-1000000", v.get_ref()),
                );
                d.min_samples
            }
        };
        if window < period {
            let span = c.window_ms.as_ref().map(|v| v.span());
            self.bad(
                span,
                format!(
                    "[latency] window_ms {} is shorter than period_ms {}: an objective is judged over whole periods",
                    window.as_millis(),
                    period.as_millis()
                ),
            );
        }
        if window > retain {
            let span = c.window_ms.as_ref().map(|v| v.span());
            self.bad(
                span,
                format!(
                    "[latency] window_ms {} reaches further back than retain_minutes keeps ({} min)",
                    window.as_millis(),
                    retain.as_secs() / 60
                ),
            );
        }
        (c.enabled != Some(false)).then_some(LatencyPlan {
            sample_interval,
            period,
            retain,
            rtt_p90,
            window,
            hold,
            min_samples,
        })
    }
}
