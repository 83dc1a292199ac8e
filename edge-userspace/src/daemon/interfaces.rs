//! Following the interfaces the config names, and the host's addresses:
//! an interface deleted, created again, renamed, or an address added, is
//! compiled in (or out) as it happens, from netlink link and address events
//! ([`crate::host::links::watch`]) and, as a safety net, the periodic link
//! check.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use anyhow::Result;
use log::{error, info};

use super::Daemon;
use crate::{host::netdev, plan::Plan};

/// What edged compiled from the host: each named interface's index and MAC
/// (`None`: not there), and the local addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Facts {
    pub links: BTreeMap<String, Option<Link>>,
    pub addresses: Vec<IpAddr>,
}

/// What edged compiles from one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Link {
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Up and running (carrier): PoPs on it can be sent to.
    pub running: bool,
}

/// Every interface `plan` names: its ports and its PoPs' interfaces.
pub(super) fn named(plan: &Plan) -> BTreeSet<String> {
    plan.ports
        .iter()
        .map(|p| p.interface.clone())
        .chain(plan.pops.iter().map(|p| p.interface.clone()))
        .collect()
}

impl Facts {
    /// The facts of `names` as the kernel has them now.
    pub fn read(names: &BTreeSet<String>) -> Result<Self> {
        let links = names
            .iter()
            .map(|n| {
                let found = netdev::ifindex(n).ok().map(|ifindex| Link {
                    ifindex,
                    mac: netdev::mac(n).unwrap_or_default(),
                    mtu: netdev::mtu(n).unwrap_or_default(),
                    running: netdev::running(n).unwrap_or(true),
                });
                (n.clone(), found)
            })
            .collect();
        Ok(Self {
            links,
            addresses: netdev::local_addresses()?,
        })
    }

    /// The interfaces of `names` that are not there.
    pub fn missing(&self, names: &BTreeSet<String>) -> BTreeSet<String> {
        names
            .iter()
            .filter(|n| matches!(self.links.get(*n), Some(None)))
            .cloned()
            .collect()
    }
}

/// One interface's change between two readings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Transition {
    pub interface: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    /// Deleted or renamed away (`renamed_to`: the name its index has now).
    Vanished,
    /// There again (created anew, or renamed back).
    Returned,
    /// Another interface under the same name (deleted and created again
    /// between two readings).
    Replaced,
    /// Its MAC changed.
    Readdressed,
    /// Its MTU changed (PoPs on it check packets against the new one).
    Remtu,
    /// Down or without carrier (PoPs on it down at once), and running
    /// again.
    CarrierLost,
    CarrierBack,
}

impl Kind {
    /// The label in `status` and the metrics.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Vanished => "vanished",
            Kind::Returned => "returned",
            Kind::Replaced => "replaced",
            Kind::Readdressed => "mac_changed",
            Kind::Remtu => "mtu_changed",
            Kind::CarrierLost => "carrier_lost",
            Kind::CarrierBack => "carrier_back",
        }
    }
}

/// What changed for the interfaces both readings name. Pure: the daemon
/// logs and counts what it returns.
pub(super) fn transitions(old: &Facts, new: &Facts) -> Vec<Transition> {
    let mut out = Vec::new();
    for (name, now) in &new.links {
        let Some(before) = old.links.get(name) else {
            continue; // newly named by the config: nothing to compare
        };
        let kinds = match (before, now) {
            (Some(_), None) => vec![Kind::Vanished],
            (None, Some(_)) => vec![Kind::Returned],
            (Some(a), Some(b)) if a.ifindex != b.ifindex => vec![Kind::Replaced],
            (Some(a), Some(b)) => [
                (a.mac != b.mac).then_some(Kind::Readdressed),
                (a.mtu != b.mtu).then_some(Kind::Remtu),
                (a.running && !b.running).then_some(Kind::CarrierLost),
                (!a.running && b.running).then_some(Kind::CarrierBack),
            ]
            .into_iter()
            .flatten()
            .collect(),
            (None, None) => Vec::new(),
        };
        out.extend(kinds.into_iter().map(|kind| Transition {
            interface: name.clone(),
            kind,
        }));
    }
    out
}

/// The event line for `t`; `old` is the reading before (for the index a
/// vanished interface had, to name what it was renamed to).
fn message(t: &Transition, old: &Facts, new: &Facts) -> String {
    let name = &t.interface;
    let index = |f: &Facts| f.links.get(name).copied().flatten().map(|l| l.ifindex);
    match t.kind {
        Kind::Vanished => {
            let renamed = index(old)
                .and_then(|i| nix::net::if_::if_indextoname(i).ok())
                .and_then(|c| c.into_string().ok())
                // A deleted index reads as "" on some kernels, not ENXIO.
                .filter(|to| !to.is_empty());
            match renamed {
                Some(to) => format!(
                    "interface {name} was renamed to {to}: as a port it is absent (no traffic taken from or sent to it) and PoPs on it are down until the config names {to} or {name} returns"
                ),
                None => format!(
                    "interface {name} is gone (deleted): as a port it is absent and PoPs on it are down until it returns"
                ),
            }
        }
        Kind::Returned => format!(
            "interface {name} is back (index {}): XDP attached again, its port and PoPs compiled in",
            index(new).unwrap_or(0)
        ),
        Kind::Replaced => format!(
            "interface {name} was deleted and created again (index {} -> {}): XDP attached again, its port and PoPs compiled in",
            index(old).unwrap_or(0),
            index(new).unwrap_or(0)
        ),
        Kind::Readdressed => format!("interface {name} changed its MAC: PoPs on it rewritten"),
        Kind::CarrierLost => format!(
            "interface {name} is down (no carrier): PoPs on it are down at once (their policies and exits fail over), its port stays"
        ),
        Kind::CarrierBack => format!(
            "interface {name} runs again: PoPs on it count as up again once their probes say so"
        ),
        Kind::Remtu => {
            let mtu = |f: &Facts| f.links.get(name).copied().flatten().map_or(0, |l| l.mtu);
            format!(
                "interface {name} changed its MTU ({} -> {}): PoPs on it without their own mtu check packets against {}",
                mtu(old),
                mtu(new),
                mtu(new)
            )
        }
    }
}

impl Daemon {
    /// The probed PoPs on `interface` (its carrier lost, or the interface
    /// gone) count as down from now until their probe has answered `rise`
    /// times in a row with the link running again (`carrier_hold`): not
    /// back the moment the link returns, before the probes can tell.
    fn hold_pops_on(&mut self, interface: &str, why: Kind) {
        for p in &self.applied.plan.pops {
            let Some(probe) = &p.probe else { continue };
            if p.interface != interface {
                continue;
            }
            self.failover.carrier_hold.insert(p.name.clone(), 0);
            let now = std::time::Instant::now();
            let status =
                self.failover
                    .health
                    .entry(p.name.clone())
                    .or_insert(crate::health::PopStatus {
                        healthy: true,
                        last_change: now,
                        srtt: None,
                        min_rtt: None,
                        loss: 0.0,
                        probes: 0,
                    });
            if status.healthy {
                status.healthy = false;
                status.last_change = now;
                let what = if why == Kind::CarrierLost {
                    "has no carrier"
                } else {
                    "is gone"
                };
                self.events.record_at(
                    log::Level::Warn,
                    "pop",
                    format!(
                        "{} is DOWN: {interface} {what} (up again after {} probe answers in a row once it runs)",
                        p.name, probe.rise
                    ),
                );
            }
        }
    }

    /// Compiles what changed on the host since the last change: interfaces
    /// the config names (gone, back, replaced, new MAC) and local
    /// addresses. Each interface change is an event (`edgectl events`,
    /// kind `interface`), a WARN line and a count (`status`
    /// `interface_events`, metric `edge_interface_events_total`). Nothing
    /// happens when nothing changed. Whether something did.
    pub(super) fn follow_host(&mut self) -> bool {
        let names = named(&self.applied.plan);
        let now = match Facts::read(&names) {
            Ok(f) => f,
            Err(e) => {
                error!("reading the interfaces: {e:#}");
                return false;
            }
        };
        if now == self.host.interfaces {
            return false;
        }
        let changed = transitions(&self.host.interfaces, &now);
        // An interface back (created again, renamed back) has a new veth
        // peer to check (GRO, XDP) at once, not at the next periodic check.
        let back = changed
            .iter()
            .any(|t| matches!(t.kind, Kind::Returned | Kind::Replaced));
        for t in changed {
            match t.kind {
                Kind::CarrierLost | Kind::Vanished | Kind::Replaced => {
                    self.hold_pops_on(&t.interface, t.kind);
                }
                Kind::CarrierBack => {
                    // Answers count from now on.
                    for p in &self.applied.plan.pops {
                        if p.interface == t.interface
                            && let Some(n) = self.failover.carrier_hold.get_mut(&p.name)
                        {
                            *n = 0;
                        }
                    }
                }
                _ => {}
            }
            let m = message(&t, &self.host.interfaces, &now);
            *self
                .host
                .interface_events
                .entry((t.interface.clone(), t.kind))
                .or_default() += 1;
            self.events.record("interface", m);
        }
        let addresses = now.addresses != self.host.interfaces.addresses;
        match self.change(self.source.text.clone(), self.applied.state.clone()) {
            Ok(c) => {
                info!(
                    "host changed ({}): {} written, {} removed",
                    if addresses {
                        "interfaces or local addresses"
                    } else {
                        "interfaces"
                    },
                    c.written,
                    c.removed
                );
                if back {
                    self.check_veth_peers(true);
                }
            }
            Err(e) => {
                // Not taken: read again at the next check.
                self.host.interfaces = now;
                error!("the host changed, and compiling it in failed (running state kept): {e:#}");
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(links: &[(&str, Option<u32>)]) -> Facts {
        Facts {
            links: links
                .iter()
                .map(|(n, i)| {
                    let link = i.map(|ifindex| Link {
                        ifindex,
                        mac: [2, 0, 0, 0, 0, ifindex as u8],
                        mtu: 1500,
                        running: true,
                    });
                    (n.to_string(), link)
                })
                .collect(),
            addresses: Vec::new(),
        }
    }

    #[test]
    fn each_interface_change_is_one_transition() {
        let before = facts(&[("a", Some(4)), ("b", Some(5)), ("c", None), ("d", Some(7))]);
        let after = facts(&[
            ("a", None),
            ("b", Some(9)),
            ("c", Some(8)),
            ("d", Some(7)),
            ("e", Some(10)),
        ]);
        let got: Vec<(String, Kind)> = transitions(&before, &after)
            .into_iter()
            .map(|t| (t.interface, t.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), Kind::Vanished),
                ("b".into(), Kind::Replaced),
                ("c".into(), Kind::Returned),
            ],
            "d unchanged, e newly named"
        );
        let mut mac = after.clone();
        let mut d = after.links["d"].unwrap();
        d.mac[5] = 99;
        mac.links.insert("d".into(), Some(d));
        assert_eq!(
            transitions(&after, &mac),
            vec![Transition {
                interface: "d".into(),
                kind: Kind::Readdressed
            }]
        );
        let mut mtu = after.clone();
        let mut d = after.links["d"].unwrap();
        d.mtu = 1400;
        mtu.links.insert("d".into(), Some(d));
        assert_eq!(
            transitions(&after, &mtu),
            vec![Transition {
                interface: "d".into(),
                kind: Kind::Remtu
            }]
        );
        let mut down = after.clone();
        let mut d = after.links["d"].unwrap();
        d.running = false;
        down.links.insert("d".into(), Some(d));
        let kinds = |a: &Facts, b: &Facts| -> Vec<Kind> {
            transitions(a, b).into_iter().map(|t| t.kind).collect()
        };
        assert_eq!(kinds(&after, &down), [Kind::CarrierLost]);
        assert_eq!(kinds(&down, &after), [Kind::CarrierBack]);
        // Several changes of one interface in one reading: each.
        d.mtu = 9000;
        down.links.insert("d".into(), Some(d));
        assert_eq!(kinds(&after, &down), [Kind::Remtu, Kind::CarrierLost]);
        assert!(transitions(&after, &after).is_empty());
    }

    #[test]
    fn missing_names_only_the_absent() {
        let f = facts(&[("a", Some(4)), ("b", None)]);
        let names: BTreeSet<String> = ["a", "b", "z"].iter().map(|s| s.to_string()).collect();
        assert_eq!(f.missing(&names), BTreeSet::from(["b".to_string()]));
    }
}
