//! Route analytics acting: a hijacked prefix's traffic held to its
//! registration's peering ports (`hold_on_hijack`) while the hijack is
//! active, through the change pipeline like every other change
//! ([`analytics::hold`] works out what to hold; docs/route-analytics.md).

use std::time::Instant;

use log::error;

use super::*;
use crate::analytics::hold::{self, Held, Holds};

impl Daemon {
    /// Brings the holds in the maps to what the active anomalies ask for
    /// under the running plan: a change (as a delta where it can be) when
    /// they differ, an event (`route`) per prefix held or released. Cheap
    /// when nothing is held or asked for. A change that fails is logged
    /// and tried again at the next call (every [`events::LOG_INTERVAL`] at
    /// the latest).
    pub fn sync_holds(&mut self) {
        let wanted = {
            let e = analytics::lock(&self.analytics.engine);
            hold::wanted(e.active(), &self.applied.plan)
        };
        if wanted.is_empty()
            && self.analytics.holds.is_empty()
            && self.analytics.held_since.is_empty()
        {
            return;
        }
        let now = hold::in_plan(&self.applied.plan);
        if hold::same(&wanted, &now) {
            self.analytics.holds = wanted;
            return;
        }
        let before = std::mem::replace(&mut self.analytics.holds, wanted);
        let t = Instant::now();
        let (text, state) = (self.source.text.clone(), self.applied.state.clone());
        match self.change_checked(text, state, |_| Ok(()), true) {
            Ok(c) => {
                let took = t.elapsed();
                let wanted = self.analytics.holds.clone();
                let (held, released) = hold::diff(&now, &wanted);
                let at = analytics::now();
                for (net, h) in held {
                    self.analytics.held_since.insert(net, at);
                    let message = format!(
                        "holding {net} ({}) to ports {} ({}): its traffic arriving on other peering ports is dropped; {} written in {took:.1?}",
                        h.registration,
                        self.port_names(&h.ports).join(", "),
                        h.because,
                        c.written,
                    );
                    self.events.record_at(log::Level::Warn, "route", message);
                }
                for (net, h) in released {
                    self.analytics.held_since.remove(&net);
                    let message = format!(
                        "released {net} ({}) from ports {}: no hijack holds it any more; {} written in {took:.1?}",
                        h.registration,
                        self.port_names(&h.ports).join(", "),
                        c.written,
                    );
                    self.events.record_at(log::Level::Info, "route", message);
                }
                self.analytics
                    .held_since
                    .retain(|net, _| wanted.contains_key(net));
            }
            Err(e) => {
                error!("route analytics: applying the holds failed (tried again later): {e:#}");
                self.analytics.holds = before;
            }
        }
    }

    /// The held prefixes (`status.bmp.held`, `routes anomalies`).
    pub(super) fn held(&self) -> Vec<Held> {
        if self.analytics.held_since.is_empty() && self.analytics.holds.is_empty() {
            return Vec::new();
        }
        hold::in_plan(&self.applied.plan)
            .into_iter()
            .map(|(prefix, h)| Held {
                ports: self.port_names(&h.ports),
                prefix,
                registration: h.registration,
                since: self
                    .analytics
                    .held_since
                    .get(&prefix)
                    .copied()
                    .unwrap_or_default(),
            })
            .collect()
    }

    fn port_names(&self, ids: &[u32]) -> Vec<String> {
        let ports = &self.applied.plan.ports;
        ids.iter()
            .filter_map(|&i| ports.get(i as usize).map(|p| p.interface.clone()))
            .collect()
    }

    /// The holds a change applies to its plan.
    pub(super) fn holds(&self) -> Option<&Holds> {
        (!self.analytics.holds.is_empty() || !self.analytics.held_since.is_empty())
            .then_some(&self.analytics.holds)
    }
}
