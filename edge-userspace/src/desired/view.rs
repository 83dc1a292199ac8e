//! Names and facts for the ids in the maps: the snapshot edgectl and the
//! metrics read.

use std::sync::Arc;

use edge_common::PolicyTable;
use ipnet::IpNet;

use crate::plan::{Method, Role};

/// Names and facts for the ids in the maps: what edgectl and the metrics
/// show. Built together with the [`Desired`] it describes; cheap to clone
/// (the prefix list is shared).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct View {
    /// Bumped on every applied change.
    pub generation: u64,
    pub ports: Vec<PortView>,
    pub pops: Vec<PopView>,
    pub policies: Vec<PolicyView>,
    pub prefixes: Arc<Vec<PrefixView>>,
    /// The private domains: (name, id in the maps).
    pub domains: Vec<(String, u32)>,
    /// The private domains' prefixes: (domain name, row).
    pub domain_prefixes: Arc<Vec<(String, PrefixView)>>,
    /// More-specific entries subnet policies add: (network, table id).
    pub more_specific: Arc<Vec<(IpNet, u32)>>,
    pub default_action: &'static str,
    /// The exits' policies (`pop:NAME` for a PoP) and selection tables.
    pub backbone_exit: Option<String>,
    pub transit_exit: Option<String>,
    pub backbone_table: Option<u32>,
    pub transit_table: Option<u32>,
    /// (map name, entries in use, limit) of the maps that fill up.
    pub maps: Vec<(&'static str, u32, u32)>,
    pub routes: RoutesView,
    /// Every PoP's health, in config order.
    pub health: Vec<PopHealthView>,
    /// Times a policy table fell back because every member was down.
    pub fallbacks: u64,
    /// Protection events received: ((prefix, port), count).
    pub protection: Vec<((String, String), u64)>,
    /// Which prefix counters the metrics carry.
    pub prefix_metrics: crate::plan::PrefixMetrics,
}

/// A PoP's health as edgectl and the metrics show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PopHealthView {
    pub pop: String,
    /// `up`, `down`, `drained`, `up (no probe)`, `up (not probed yet)`.
    pub state: &'static str,
    /// What the methods use: healthy and not drained.
    pub up: bool,
    /// Why the PoP is down whatever its probes say: its interface is gone
    /// or has no carrier, or its next hop does not resolve (`None` else).
    pub down_reason: Option<String>,
    /// Seconds since the state last changed.
    pub since_seconds: Option<f64>,
    /// Smoothed RTT and the recent minimum, milliseconds.
    pub rtt_ms: Option<f64>,
    pub min_rtt_ms: Option<f64>,
    /// Share of the recent probes that failed.
    pub loss: f64,
    pub probes: u64,
    /// Answered probes' RTTs since edged started (the metrics).
    #[serde(skip)]
    pub rtt_histogram: crate::health::RttHistogram,
}

/// Route sync figures.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RoutesView {
    /// Routes in the followed tables (best per table and network).
    pub routes: usize,
    /// Full dumps (the first included; more mean overruns or table changes).
    pub resyncs: u64,
    /// Routes left out because a prefix map was full.
    pub skipped: usize,
    /// Routes left out because they lie in a special-purpose range.
    pub martians: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PortView {
    pub id: u32,
    /// The port's name (the interface's, unless tagged or named).
    pub name: String,
    pub interface: String,
    /// VLAN tags, outermost first; empty: untagged.
    pub vlan: Vec<u16>,
    /// `public`, or a private domain's name.
    pub domain: String,
    pub role: &'static str,
    /// 0 while the interface is absent (deleted or renamed away).
    pub ifindex: u32,
    /// The interface is gone: the port takes and sends nothing.
    pub absent: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PopView {
    pub id: u32,
    pub name: String,
    pub interface: String,
    /// The port it was given by, if any.
    pub port: Option<String>,
    /// The tags of frames sent to it: `keep`, `untagged`, `set 100.20`, `push 300`.
    pub vlan: String,
    /// `public`, or its port's private domain.
    pub domain: String,
    pub mac: String,
    pub encap: Vec<String>,
    pub region: Option<String>,
    /// The probe, described (`icmp 198.51.100.6 every 1s`), if any.
    pub probe: Option<String>,
    pub drained: bool,
    /// The egress link's MTU the program checks: the config's `mtu`, else
    /// the interface's when the config was last compiled.
    pub mtu: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyView {
    pub name: String,
    /// `public`, or the private domain of its PoPs.
    pub domain: String,
    pub method: &'static str,
    pub members: Vec<MemberView>,
    /// The selection tables the policy fills (one, unless regions or
    /// subnets multiply them).
    pub tables: Vec<TableView>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberView {
    /// `pop:NAME` or `policy:NAME`.
    pub member: String,
    pub weight: u32,
    pub priority: u32,
    /// For PoPs: healthy and not drained.
    pub up: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TableView {
    pub id: u32,
    /// The table's key: policy [region] [subnet member].
    pub key: String,
    /// Slots per PoP name (`none` = to the kernel).
    pub shares: Vec<(String, u32)>,
    /// Set while no member is up and the fallback fills the table.
    pub fallback: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PrefixView {
    pub prefix: IpNet,
    /// Shared by the prefixes of one registration.
    pub registration: Arc<str>,
    pub preference: &'static str,
    pub policy: Option<Arc<str>>,
    pub dscp: Option<u8>,
    pub protect: Vec<String>,
    /// `config`, `live` (edgectl prefix add) or `route table N`.
    pub source: crate::plan::Origin,
    pub counter_slot: u32,
}

impl View {
    /// This view seen from one domain (`public` or a private domain's
    /// name): its prefixes as `prefixes`, its ports and PoPs only.
    /// `None` for a domain the config does not declare.
    pub fn in_domain(&self, domain: &str) -> Option<View> {
        // The public rows are shared, not copied (a million of them).
        let prefixes: Arc<Vec<PrefixView>> = if domain == "public" {
            self.prefixes.clone()
        } else if self.domains.iter().any(|(n, _)| n == domain) {
            Arc::new(
                self.domain_prefixes
                    .iter()
                    .filter(|(d, _)| d == domain)
                    .map(|(_, p)| p.clone())
                    .collect(),
            )
        } else {
            return None;
        };
        let mut v = self.clone();
        if domain != "public" {
            v.more_specific = Arc::new(Vec::new());
        }
        v.prefixes = prefixes;
        v.ports.retain(|p| p.domain == domain);
        v.pops.retain(|p| p.domain == domain);
        // `health` goes with `pops`, by index.
        v.health.retain(|h| v.pops.iter().any(|p| p.name == h.pop));
        v.policies.retain(|p| p.domain == domain);
        Some(v)
    }

    /// The id of private domain `name` in the maps.
    pub fn domain_id(&self, name: &str) -> Option<u32> {
        self.domains
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }

    pub fn pop_name(&self, id: u32) -> Option<&str> {
        self.pops
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.name.as_str())
    }

    /// The key of selection table `id`.
    pub fn table_name(&self, id: u32) -> Option<&str> {
        self.policies
            .iter()
            .flat_map(|p| &p.tables)
            .find(|t| t.id == id)
            .map(|t| t.key.as_str())
    }

    pub fn port(&self, id: u32) -> Option<&PortView> {
        self.ports.iter().find(|p| p.id == id)
    }

    pub fn prefix_by_slot(&self, slot: u32) -> Option<&PrefixView> {
        (slot != 0)
            .then(|| self.prefixes.iter().find(|p| p.counter_slot == slot))
            .flatten()
    }

    /// Counter slots to read: one past the highest in use.
    pub fn prefix_slots(&self) -> u32 {
        self.prefixes
            .iter()
            .map(|p| p.counter_slot)
            .max()
            .unwrap_or(0)
            + 1
    }

    pub fn prefix(&self, net: IpNet) -> Option<&PrefixView> {
        self.prefixes.iter().find(|p| p.prefix == net)
    }
}

/// Slots per PoP in `table`, named by `name`, in order of first appearance.
pub fn table_shares(table: &PolicyTable, name: impl Fn(u16) -> String) -> Vec<(String, u32)> {
    let mut shares: Vec<(u16, u32)> = Vec::new();
    for &pop in &table.pops[..edge_common::POLICY_SLOTS] {
        match shares.iter_mut().find(|(p, _)| *p == pop) {
            Some((_, n)) => *n += 1,
            None => shares.push((pop, 1)),
        }
    }
    shares
        .into_iter()
        .map(|(pop, n)| {
            let label = if pop == edge_common::NO_POP {
                "none".to_string()
            } else {
                name(pop)
            };
            (label, n)
        })
        .collect()
}

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Peering => "peering",
        Role::Backbone => "backbone",
        Role::Transit => "transit",
    }
}

pub fn method_name(m: Method) -> &'static str {
    match m {
        Method::Priority => "priority",
        Method::Weighted => "weighted",
        Method::Multivalue => "multivalue",
        Method::Performance => "performance",
        Method::Geographic => "geographic",
        Method::Subnet => "subnet",
    }
}

pub(super) fn mac_text(m: [u8; 6]) -> String {
    macaddr::MacAddr6::from(m).to_string().to_lowercase()
}
