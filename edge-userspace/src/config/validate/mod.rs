//! Whole-file validation: every problem found, with its line; names
//! resolved to ids. Split by section: ports and PoPs, policies, prefixes.

mod policies;
mod pops;
mod prefixes;
mod registrations;

use std::{collections::HashMap, ops::Range};

use edge_common::limits;
use policies::pop_policy;
pub use prefixes::{dscp_by_name, protocol_by_name};
use toml::Spanned;

use super::{Invalid, Problem, schema::*};
use crate::plan::*;

/// The built-in domain's name.
pub(super) const PUBLIC: &str = "public";

/// A name of a domain or port: it appears in metrics labels and CLI
/// arguments, so it is kept plain.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub(crate) struct Validator {
    /// The private domain of each PoP (by plan index), once PoPs are read.
    pub(super) pop_domains: Vec<Option<u32>>,
    /// PoPs (by plan index) whose egress had a problem: their domain is
    /// not known, so no problem follows from it.
    pub(super) doubtful_pops: Vec<bool>,
    /// Length of the config file's own text; entries past it are live changes.
    pub(super) base_len: usize,
    /// Byte offset where each line starts (line n at index n - 1).
    newlines: Vec<usize>,
    pub(super) problems: Vec<Problem>,
}

impl Validator {
    /// The validator of a config file's `text` (entries spanned past its
    /// end are live changes).
    pub(crate) fn new(text: &str) -> Self {
        let mut newlines = vec![0];
        newlines.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            pop_domains: Vec::new(),
            doubtful_pops: Vec::new(),
            base_len: text.len(),
            newlines,
            problems: Vec::new(),
        }
    }

    /// A validator of live changes alone: every entry is a live change
    /// (its problems say so, without a line).
    pub(crate) fn live() -> Self {
        Self::new("")
    }

    /// The problems found so far.
    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// How many problems were found so far.
    pub(crate) fn problem_count(&self) -> usize {
        self.problems.len()
    }

    /// The 1-based line of byte `pos`; `None` for a live change.
    pub(super) fn line(&self, pos: usize) -> Option<usize> {
        (pos < self.base_len).then(|| self.newlines.partition_point(|&start| start <= pos))
    }

    pub(super) fn bad(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let message = message.into();
        let (line, message) = match span {
            Some(s) if s.start >= self.base_len => (None, format!("live change: {message}")),
            Some(s) => (self.line(s.start), message),
            None => (None, message),
        };
        self.problems.push(Problem {
            line,
            message,
            map_full: false,
        });
    }

    pub(super) fn limit(&mut self, what: &str, n: usize, limit: u32) {
        if n > limit as usize {
            self.bad(None, format!("{n} {what} exceed the limit of {limit}"));
        }
    }

    pub(super) fn run(mut self, file: File) -> Result<Plan, Invalid> {
        let domains = self.domains(&file.domains);
        let ports = self.ports(&file.ports, &domains);
        let port_ids: HashMap<&str, u32> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i as u32))
            .collect();
        let pops = self.pops(&file.pops, &ports, &port_ids);
        self.pop_domains = pops.iter().map(|p| p.domain).collect();
        let pop_ids: HashMap<&str, u32> = pops
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i as u32))
            .collect();
        let mut policies = self.policies(&file.policies, &pops, &domains);
        let fwd = &file.forwarding;
        let configured = file.policies.len();
        let backbone_exit = self.exit(fwd, ExitKind::Backbone, &pop_ids, &mut policies, configured);
        let transit_exit = self.exit(fwd, ExitKind::Transit, &pop_ids, &mut policies, configured);
        let encap_ttl = match &fwd.encap_ttl {
            None => 64,
            Some(t) if (1..=255).contains(t.get_ref()) => *t.get_ref() as u8,
            Some(t) => {
                self.bad(
                    Some(t.span()),
                    format!("encap_ttl {} is outside 1-255", t.get_ref()),
                );
                64
            }
        };
        let limits = self.limits(&file.limits);
        let (prefixes, domain_prefixes) = self.prefixes(
            &file.prefixes,
            &ports,
            &port_ids,
            &pop_ids,
            &mut policies,
            limits,
            &domains,
        );
        let route_sources = self.route_sources(
            &file.route_sources,
            &ports,
            &port_ids,
            &pop_ids,
            &mut policies,
            &domains,
        );
        self.fallbacks(&file.policies, &mut policies, transit_exit.is_some());
        let metrics_address = match &file.daemon.metrics_address {
            None => DEFAULT_METRICS_ADDRESS.parse().ok(),
            Some(a) if a.get_ref().is_empty() => None,
            Some(a) => match a.get_ref().parse() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    self.bad(
                        Some(a.span()),
                        format!("metrics_address {:?} is not an IP:port", a.get_ref()),
                    );
                    None
                }
            },
        };

        let registrations = self.registrations(
            &file.registrations,
            &prefixes,
            &domain_prefixes,
            &route_sources,
            &ports,
            &policies,
            &pops,
        );
        let bmp_listen = self.bmp(file.bmp.as_ref(), &file.registrations);
        let latency = self.latency(file.latency.as_ref(), &file.registrations);

        self.exits_required(
            fwd.backbone_exit.is_some(),
            fwd.transit_exit.is_some(),
            &ports,
            &prefixes,
        );

        if !self.problems.is_empty() {
            return Err(Invalid(self.problems));
        }
        let plan = Plan {
            pin_path: file.daemon.pin_path,
            socket_path: file.daemon.socket_path,
            read_group: Some(file.daemon.read_group).filter(|g| !g.is_empty()),
            state_path: file.daemon.state_path,
            // Validated by `config::reload` (how the file is read).
            reload: crate::plan::ReloadGuard::default(),
            xdp_mode: file.daemon.xdp_mode,
            limits,
            metrics_address,
            prefix_metrics: file.daemon.prefix_metrics,
            default_action: fwd.default_action,
            backbone_exit,
            transit_exit,
            encap_ttl,
            domains,
            ports,
            pops,
            policies,
            prefixes,
            domain_prefixes,
            route_sources,
            registrations,
            bmp_listen,
            latency,
            shadowed: Default::default(),
            stale_removals: Default::default(),
        };
        Ok(plan)
    }

    /// The exits `prefixes` need: the backbone exit for microsoft-preference
    /// prefixes when there are peering ports, the transit exit for
    /// internet-preference ones.
    pub(crate) fn exits_required(
        &mut self,
        backbone_exit: bool,
        transit_exit: bool,
        ports: &[PlannedPort],
        prefixes: &[PlannedPrefix],
    ) {
        let peering = ports.iter().any(|p| p.role == Role::Peering);
        if !backbone_exit
            && peering
            && prefixes
                .iter()
                .any(|p| p.preference == Preference::Microsoft)
        {
            self.bad(None, "[forwarding] backbone_exit is required: peering ports carry microsoft-preference prefixes");
        }
        if !transit_exit
            && prefixes
                .iter()
                .any(|p| p.preference == Preference::Internet)
        {
            self.bad(
                None,
                "[forwarding] transit_exit is required: some prefixes have the internet preference",
            );
        }
    }

    /// Each policy's fallback: as configured, else `transit` when there is
    /// a transit exit and `pass` when there is none.
    pub(super) fn fallbacks(
        &mut self,
        config: &[PolicyConfig],
        policies: &mut [PlannedPolicy],
        transit_exit: bool,
    ) {
        for (i, policy) in policies.iter_mut().enumerate() {
            let configured = config.get(i).and_then(|c| c.fallback.as_ref());
            policy.fallback = match configured {
                // A private domain's `transit` is refused already.
                Some(_) if policy.domain.is_some() => Fallback::Pass,
                Some(f) if *f.get_ref() == Fallback::Transit && !transit_exit => {
                    self.bad(
                        Some(f.span()),
                        format!(
                            "policy {}: fallback = \"transit\" needs [forwarding] transit_exit",
                            policy.name
                        ),
                    );
                    Fallback::Pass
                }
                Some(f) if *f.get_ref() == Fallback::Backbone => {
                    self.bad(
                        Some(f.span()),
                        format!(
                            "policy {}: fallback is \"transit\" or \"pass\" (only transit_exit_fallback may be \"backbone\")",
                            policy.name
                        ),
                    );
                    Fallback::Pass
                }
                Some(f) => *f.get_ref(),
                None if transit_exit && policy.domain.is_none() => Fallback::Transit,
                None => Fallback::Pass,
            };
        }
    }

    /// `[forwarding] backbone_exit` or `transit_exit`, with its fallback.
    /// The name is a PoP (its `pop:NAME` policy, created here if no prefix
    /// made it), `pop:NAME`, or a policy among the first `configured` ones
    /// (those of the file); a name that is both a PoP and a policy must be
    /// written `pop:NAME` for the PoP.
    fn exit(
        &mut self,
        fwd: &Forwarding,
        kind: ExitKind,
        pop_ids: &HashMap<&str, u32>,
        policies: &mut Vec<PlannedPolicy>,
        configured: usize,
    ) -> Option<Exit> {
        let (name, fallback, other, other_name) = match kind {
            ExitKind::Backbone => (
                &fwd.backbone_exit,
                &fwd.backbone_exit_fallback,
                fwd.transit_exit.is_some(),
                Fallback::Transit,
            ),
            ExitKind::Transit => (
                &fwd.transit_exit,
                &fwd.transit_exit_fallback,
                fwd.backbone_exit.is_some(),
                Fallback::Backbone,
            ),
        };
        let key = format!("{}_exit", kind.name());
        let Some(name) = name else {
            if let Some(f) = fallback {
                self.bad(
                    Some(f.span()),
                    format!("[forwarding] {key}_fallback without {key}"),
                );
            }
            return None;
        };
        let text = name.get_ref().as_str();
        let policy = policies[..configured].iter().position(|p| p.name == text);
        let pop = text.strip_prefix("pop:").unwrap_or(text);
        let id = match (pop_ids.get(pop), policy) {
            (Some(_), Some(_)) if !text.starts_with("pop:") => {
                self.bad(
                    Some(name.span()),
                    format!("{key}: {text:?} is both a PoP and a policy; write \"pop:{text}\" for the PoP, or rename one"),
                );
                return None;
            }
            (Some(&pop_id), _) => {
                let domain = self.pop_domains.get(pop_id as usize).copied().flatten();
                pop_policy(policies, pop, pop_id, domain)
            }
            (None, Some(id)) => id as u32,
            (None, None) => {
                self.bad(
                    Some(name.span()),
                    format!("{key}: unknown PoP or policy {text:?}"),
                );
                return None;
            }
        };
        if policies[id as usize].method == Method::Subnet {
            self.bad(
                Some(name.span()),
                format!("{key}: policy {text:?} is a subnet policy, which maps customer addresses; an exit needs another method"),
            );
            return None;
        }
        if policies[id as usize].domain.is_some() {
            self.bad(
                Some(name.span()),
                format!(
                    "{key}: {text:?} is in a private domain; the exits are the public domain's"
                ),
            );
            return None;
        }
        let fallback = match fallback {
            None if other && kind == ExitKind::Backbone => Fallback::Transit,
            None => Fallback::Pass,
            Some(f) if *f.get_ref() == Fallback::Pass => Fallback::Pass,
            Some(f) if *f.get_ref() == other_name => {
                if !other {
                    self.bad(
                        Some(f.span()),
                        format!(
                            "{key}_fallback = {:?} needs [forwarding] {}_exit",
                            other_name.name(),
                            other_name.name()
                        ),
                    );
                }
                other_name
            }
            Some(f) => {
                self.bad(
                    Some(f.span()),
                    format!(
                        "{key}_fallback is {:?} or \"pass\", not {:?}",
                        other_name.name(),
                        f.get_ref().name()
                    ),
                );
                Fallback::Pass
            }
        };
        Some(Exit {
            policy: id,
            fallback,
        })
    }

    pub(super) fn limits(&mut self, l: &LimitsConfig) -> Limits {
        let mut size = |v: &Option<Spanned<i64>>, key: &str, default: u32, max: u32| match v {
            None => default,
            Some(v) if (1..=i64::from(max)).contains(v.get_ref()) => *v.get_ref() as u32,
            Some(v) => {
                self.bad(
                    Some(v.span()),
                    format!("[limits] {key} {} is outside 1-{max}", v.get_ref()),
                );
                default
            }
        };
        Limits {
            prefixes_v4: size(
                &l.prefixes_v4,
                "prefixes_v4",
                limits::MAX_PREFIXES_V4,
                limits::MAX_PREFIXES_V4,
            ),
            prefixes_v6: size(
                &l.prefixes_v6,
                "prefixes_v6",
                limits::MAX_PREFIXES_V6,
                limits::MAX_PREFIXES_V6,
            ),
            // Beyond the defaults × 16 the kernel memory (40-byte flows,
            // 8 bytes per CPU per pair) stops being a small-host matter.
            rtt_flows: size(
                &l.rtt_flows,
                "rtt_flows",
                limits::RTT_FLOWS,
                limits::RTT_FLOWS * 16,
            ),
            rtt_buckets: size(
                &l.rtt_buckets,
                "rtt_buckets",
                limits::RTT_BUCKETS,
                limits::RTT_BUCKETS * 16,
            ),
        }
    }

    pub(super) fn pop_ref(
        &mut self,
        name: &Spanned<String>,
        pop_ids: &HashMap<&str, u32>,
        what: &str,
    ) -> Option<u32> {
        let id = pop_ids.get(name.get_ref().as_str()).copied();
        if id.is_none() {
            self.bad(
                Some(name.span()),
                format!("{what}: unknown PoP {:?}", name.get_ref()),
            );
        }
        id
    }

    /// Nested policies form no cycle.
    pub(super) fn nesting(&mut self, config: &[PolicyConfig], planned: &[PlannedPolicy]) {
        for (id, (policy, c)) in planned.iter().zip(config).enumerate() {
            // A path from `id` back to itself; reported once, at the
            // policy of the cycle that comes first in the file.
            if let Some(cycle) = cycle_from(planned, id as u32)
                && cycle.iter().all(|&q| q >= id as u32)
            {
                let names: Vec<&str> = cycle
                    .iter()
                    .chain([&(id as u32)])
                    .map(|&q| planned[q as usize].name.as_str())
                    .collect();
                self.bad(
                    Some(c.name.span()),
                    format!(
                        "policy {}: nested policies form a cycle: {}",
                        policy.name,
                        names.join(" > ")
                    ),
                );
            }
        }
    }
}

/// The policies on a path of nested members from `start` back to `start`
/// (starting with `start`), if there is one.
fn cycle_from(policies: &[PlannedPolicy], start: u32) -> Option<Vec<u32>> {
    pub(super) fn walk(
        policies: &[PlannedPolicy],
        at: u32,
        start: u32,
        path: &mut Vec<u32>,
        seen: &mut Vec<bool>,
    ) -> bool {
        path.push(at);
        for m in &policies[at as usize].members {
            if let Target::Policy(q) = m.target {
                if q == start {
                    return true;
                }
                if !seen[q as usize] {
                    seen[q as usize] = true;
                    if walk(policies, q, start, path, seen) {
                        return true;
                    }
                }
            }
        }
        path.pop();
        false
    }
    let mut path = Vec::new();
    let mut seen = vec![false; policies.len()];
    walk(policies, start, start, &mut path, &mut seen).then_some(path)
}

/// 1-based line of byte offset `pos`.
pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}
