//! A random walk through the change pipeline, against table maps held in
//! memory: live adds, batches and dels (as deltas where they can be, else
//! through the whole pipeline), and reloads of other config texts, some
//! invalid; with writes and state records that fail on the way. After every
//! step the walk checks what edged promises:
//!
//! - a change that applied gives exactly what compiling the changed config
//!   as a whole gives: plan, layout, map contents, view rows, counter slots,
//!   ids; an invalid one the same problems as a whole validation;
//! - a change that failed (refused, a map write failed, the state could not
//!   be recorded) left the maps, the running state and the recorded state
//!   exactly as they were;
//! - the recorded state file decodes to the running state, and a restart
//!   from it (a compile of the file with that state over empty maps) gives
//!   the maps the running edged holds.
//!
//! The unit test drives it from a seeded generator; the cargo-fuzz target
//! `change_pipeline` from the fuzzer's bytes ([`Choose`]). Counter slots run
//! out early (a limit of 12), so slots are given, taken back and handed on.

use std::net::IpAddr;

use anyhow::{Result, anyhow};
use ipnet::IpNet;

use super::{
    Applied,
    live::{change_state, work_out},
    pipeline::{commit, forget_stale_removals},
};
use crate::{
    config::{self, PrefixSpec},
    desired::{
        self, Desired, Host,
        delta::{SLOT_LIMIT, Slots, Target},
        memory::Memory,
        state::State,
    },
    policy::{Choices, PopView},
};

/// Where the walk's choices come from.
pub trait Choose {
    /// A number below `n` (`n` ≥ 1); `None` when the choices have run out.
    fn below(&mut self, n: usize) -> Option<usize>;
}

/// The config every text of the walk is made from.
const BASE: &str = r#"
[forwarding]
backbone_exit = "core"
transit_exit = "isp"

[[ports]]
interface = "peer0"
role = "peering"

[[ports]]
interface = "bb0"
role = "backbone"

[[ports]]
interface = "tr0"
role = "transit"

[[pops]]
name = "core"
interface = "bb0"
mac = "02:00:00:00:00:01"

[[pops]]
name = "west"
interface = "bb0"
mac = "02:00:00:00:00:02"

[[pops]]
name = "isp"
interface = "tr0"
mac = "02:00:00:00:00:03"

[[pops]]
name = "east"
interface = "bb0"
mac = "02:00:00:00:00:04"
region = "world > asia"

[[policies]]
name = "spread"
method = "weighted"
members = [{ pop = "core", weight = 1 }, { pop = "west", weight = 1 }]

[[policies]]
name = "near"
method = "geographic"
members = [{ pop = "core", region = "world > europe" }, { pop = "east" }]

[[prefixes]]
prefix = "198.51.100.0/28"
policy = "spread"
registration = "contoso"

[[prefixes]]
prefix = "198.51.100.16/28"
pop = "core"

[[prefixes]]
prefix = "198.51.100.32/28"
pop = "west"
dscp = "ef"

[[prefixes]]
prefix = "2001:db8:1::/48"
preference = "internet"

[[prefixes]]
prefix = "2001:db8:2::/48"
policy = "near"
region = "world > asia"

[[prefixes]]
prefix = "198.51.100.48/28"
policy = "near"
"#;

/// The config texts a reload chooses from: the base, a file prefix gone,
/// other weights and a new file prefix (maybe live already), a new PoP in a
/// policy and a new IPv6 prefix, a prefix turned hot potato, and invalid
/// files (a prefix, a policy member naming a PoP that does not exist);
/// then texts that change prefixes alone (applied as deltas).
fn texts() -> Vec<String> {
    let rep = |from: &str, to: &str| {
        assert!(BASE.contains(from), "{from}");
        BASE.replacen(from, to, 1)
    };
    vec![
        BASE.to_string(),
        rep(
            "[[prefixes]]\nprefix = \"198.51.100.16/28\"\npop = \"core\"\n",
            "",
        ),
        rep(
            "{ pop = \"core\", weight = 1 }",
            "{ pop = \"core\", weight = 3 }",
        ) + "\n[[prefixes]]\nprefix = \"203.0.113.64/28\"\npolicy = \"spread\"\nregistration = \"r1\"\n",
        rep(
            "{ pop = \"east\" }]",
            "{ pop = \"east\" }, { pop = \"south\" }]",
        ) + "\n[[pops]]\nname = \"south\"\ninterface = \"bb0\"\nmac = \"02:00:00:00:00:05\"\nregion = \"world > africa\"\n\n[[prefixes]]\nprefix = \"2001:db8:9::/48\"\npop = \"south\"\n",
        rep("pop = \"west\"\ndscp = \"ef\"", "preference = \"internet\""),
        rep("pop = \"core\"\n", "pop = \"nowhere\"\n"),
        // Invalid whatever the live changes (a member naming no PoP).
        rep("{ pop = \"east\" }]", "{ pop = \"atlantis\" }]"),
        // Prefixes alone: one entry changed, one replaced by another
        // network, one more in the middle, one gone (reloads as deltas).
        rep(
            "registration = \"contoso\"\n",
            "registration = \"contoso\"\ndscp = \"af41\"\n",
        ),
        rep(
            "prefix = \"198.51.100.48/28\"",
            "prefix = \"198.51.100.64/28\"",
        ),
        rep(
            "[[prefixes]]\nprefix = \"198.51.100.16/28\"",
            "[[prefixes]]\nprefix = \"203.0.113.128/28\"\npolicy = \"spread\"\n\n[[prefixes]]\nprefix = \"198.51.100.16/28\"",
        ),
        rep(
            "[[prefixes]]\nprefix = \"2001:db8:1::/48\"\npreference = \"internet\"\n",
            "",
        ),
    ]
}

/// Interfaces peer0, bb0 and tr0 (ifindex 2, 3, 4); nothing else.
pub(super) struct Lab;

impl Host for Lab {
    fn ifindex(&self, interface: &str) -> Result<u32> {
        match interface {
            "peer0" => Ok(2),
            "bb0" => Ok(3),
            "tr0" => Ok(4),
            _ => anyhow::bail!("no interface {interface}"),
        }
    }
    fn mac(&self, interface: &str) -> Result<[u8; 6]> {
        Ok([2, 0xee, 0, 0, 0, self.ifindex(interface)? as u8])
    }
    fn mtu(&self, interface: &str) -> Result<u32> {
        self.ifindex(interface).map(|_| 1500)
    }
    fn local_addresses(&self) -> Result<Vec<IpAddr>> {
        Ok(vec!["192.0.2.1".parse().unwrap()])
    }
    fn neighbour(&self, _: &str, _: u32, _: IpAddr) -> Result<Option<[u8; 6]>> {
        Ok(None)
    }
}

/// Every PoP up.
pub(super) fn up(_: u32) -> PopView {
    PopView::UP
}

/// How each step ended, counted.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub steps: usize,
    /// Live changes applied as deltas.
    pub deltas: usize,
    /// Live changes applied through the whole pipeline.
    pub wholes: usize,
    /// Live changes refused as invalid.
    pub invalid: usize,
    /// Reloads applied, and refused (an invalid text or live entries it
    /// makes invalid).
    pub reloads: usize,
    /// Reloads applied as deltas (the prefixes alone changed).
    pub reload_deltas: usize,
    pub refused_reloads: usize,
    /// Changes that failed on a map write, and on recording the state.
    pub failed_writes: usize,
    pub failed_saves: usize,
}

/// A failure to inject into the next change.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// The map write numbered so (0-based, counted from the change's first).
    Write(usize),
    Save,
}

/// What a running edged keeps: the last change's pieces, its view rows,
/// the maps, the config text and the state file's bytes.
struct Running {
    applied: Applied,
    rows: Vec<desired::PrefixView>,
    maps: Memory,
    text: usize,
    saved: Vec<u8>,
}

/// The walk: a running edged over maps in memory.
pub struct Walk {
    texts: Vec<String>,
    r: Running,
    pub tally: Tally,
}

impl Default for Walk {
    fn default() -> Self {
        Self::new()
    }
}

impl Walk {
    /// edged started on the base config with an empty state.
    pub fn new() -> Self {
        // Counter slots run out early, for the thread that walks.
        SLOT_LIMIT.with(|l| l.set(12));
        let texts = texts();
        let state = State::default();
        let plan = config::parse_with(&texts[0], &state.live).expect("the base config");
        let mut maps = Memory::holding(&Desired::default());
        let mut saved = Vec::new();
        let (c, state, _) = commit(
            &Lab,
            &mut maps,
            &Desired::default(),
            &plan,
            state,
            &up,
            &Choices::default(),
            |s| {
                saved = s.encode()?;
                Ok(())
            },
        )
        .expect("the base config applies");
        let r = running(c, plan, state, maps, 0, saved);
        Self {
            texts,
            r,
            tally: Tally::default(),
        }
    }

    /// Prefixes that had to share counter slot 0 (the slots ran out).
    pub fn sharing_slot_zero(&self) -> usize {
        self.r.rows.iter().filter(|p| p.counter_slot == 0).count()
    }

    /// One step: a live change (most of the time) or a reload, maybe with a
    /// fault. `false` when the choices ran out before it was taken.
    /// Panics when edged's promises do not hold.
    pub fn step(&mut self, c: &mut impl Choose) -> bool {
        let Some(step) = self.try_step(c) else {
            return false;
        };
        let what = format!("step {}: {step}", self.tally.steps);
        self.tally.steps += 1;
        self.check_restart(&what);
        true
    }

    fn try_step(&mut self, c: &mut impl Choose) -> Option<String> {
        let fault = match c.below(20)? {
            0 => Fault::Write(c.below(4)?),
            1 => Fault::Save,
            _ => Fault::None,
        };
        if c.below(8)? == 0 {
            let text = c.below(self.texts.len())?;
            return Some(self.reload(text, fault));
        }
        let (add, del) = change(c, &self.r)?;
        Some(self.live(add, del, fault))
    }

    /// A reload of text number `text` with the running state.
    fn reload(&mut self, text: usize, fault: Fault) -> String {
        let what = format!("reload of text {text}, {fault:?}");
        let mut state = self.r.applied.state.clone();
        let plan = match config::parse_with(&self.texts[text], &state.live) {
            Ok(mut plan) => {
                forget_stale_removals(&mut state, &mut plan);
                plan
            }
            Err(_) => {
                self.tally.refused_reloads += 1;
                return what;
            }
        };
        if self
            .reload_delta(&plan, &state, text, fault, &what)
            .is_none()
        {
            self.whole_change(plan, state, text, fault, &what);
        }
        self.tally.reloads += 1;
        what
    }

    /// A reload that changes prefixes alone, as a delta (`Daemon::change`
    /// makes it so): `None` when only the whole pipeline can apply it.
    fn reload_delta(
        &mut self,
        plan: &crate::plan::Plan,
        state: &State,
        text: usize,
        fault: Fault,
        what: &str,
    ) -> Option<()> {
        let r = &self.r;
        let port_ids = plan
            .ports
            .iter()
            .map(|p| state.ids.ports.get(&p.name).copied())
            .collect::<Option<Vec<u32>>>()?;
        if state.ids != r.applied.state.ids {
            return None;
        }
        let d = desired::delta::plan_reload(
            &desired::delta::Registered {
                plan: &r.applied.plan,
                layout: &r.applied.layout,
                current: &r.applied.current,
                prefixes: &r.rows,
                slots: &r.applied.slots,
                table_ids: &r.applied.table_ids,
                port_ids: &port_ids,
                file_removed: &|_| false,
            },
            plan,
        )?;
        let what = format!("{what} (as a delta)");
        let want = desired::compile_on(
            &Lab,
            plan,
            state,
            &r.applied.current,
            &up,
            &Choices::default(),
        )
        .unwrap_or_else(|e| panic!("{what}: {e:#}"));
        if !self.apply_delta(&d.writes, &d.removals, &want.desired, fault, &what) {
            return Some(());
        }
        self.r.saved = state.encode().unwrap();
        let r = &mut self.r;
        d.commit(desired::delta::ReloadTarget {
            layout: &mut r.applied.layout,
            current: &mut r.applied.current,
            prefixes: &mut r.rows,
            slots: &mut r.applied.slots,
        });
        r.applied.plan = plan.clone();
        r.applied.state = state.clone();
        r.text = text;
        assert_eq!(r.applied.layout, want.layout, "{what}");
        same(&r.applied.current, &want.desired, &what);
        same(&r.maps.maps, &want.desired, &what);
        assert_eq!(r.rows, *want.view.prefixes, "{what}");
        assert_eq!(r.applied.slots, Slots::of(&want.view.prefixes), "{what}");
        assert_eq!(r.applied.state.ids, want.ids, "{what}");
        self.tally.reload_deltas += 1;
        Some(())
    }

    /// A change through the whole pipeline (`commit`), as edged makes it
    /// for a reload and for live changes a delta cannot express.
    /// `false`: it failed (and nothing changed).
    fn whole_change(
        &mut self,
        plan: crate::plan::Plan,
        state: State,
        text: usize,
        fault: Fault,
        what: &str,
    ) -> bool {
        let before = (self.r.maps.maps.clone(), self.r.saved.clone());
        self.arm(fault);
        let mut saved = None;
        let result = commit(
            &Lab,
            &mut self.r.maps,
            &self.r.applied.current,
            &plan,
            state,
            &up,
            &Choices::default(),
            |s| {
                if fault == Fault::Save {
                    return Err(anyhow!("no space left on device"));
                }
                saved = Some(s.encode()?);
                Ok(())
            },
        );
        self.r.maps.fail_at = None;
        match result {
            Ok((c, state, _)) => {
                same(&self.r.maps.maps, &c.desired, what);
                let maps = std::mem::take(&mut self.r.maps);
                self.r = running(c, plan, state, maps, text, saved.expect("recorded"));
                true
            }
            Err(e) => {
                assert_ne!(fault, Fault::None, "{what}: failed without a fault: {e:#}");
                self.count_fault(fault);
                let what = format!("{what}: a failed change ({e:#})");
                same(&self.r.maps.maps, &before.0, &what);
                assert!(self.r.saved == before.1, "{what}: the state file changed");
                false
            }
        }
    }

    /// Writes a delta's map changes as edged does, with `fault` injected,
    /// and checks them against the whole pipeline's (`want`): `false` when
    /// the change failed (checked: the maps are as they were), else
    /// applied (the caller records it).
    #[allow(clippy::type_complexity)]
    fn apply_delta(
        &mut self,
        writes: &[(
            IpNet,
            edge_common::PrefixEntry,
            Option<edge_common::PrefixEntry>,
        )],
        removals: &[(IpNet, edge_common::PrefixEntry)],
        want: &Desired,
        fault: Fault,
        what: &str,
    ) -> bool {
        let before = self.r.maps.maps.clone();
        self.arm(fault);
        let applied = desired::apply_prefixes(&mut self.r.maps, writes, removals);
        self.r.maps.fail_at = None;
        let changes = match applied {
            Ok(changes) => changes,
            Err(e) => {
                assert!(
                    matches!(fault, Fault::Write(_)),
                    "{what}: failed without a fault: {e:#}"
                );
                self.count_fault(fault);
                same(
                    &self.r.maps.maps,
                    &before,
                    &format!("{what}: a failed write undone"),
                );
                return false;
            }
        };
        if fault == Fault::Save {
            desired::undo_prefixes(&mut self.r.maps, writes, removals).unwrap();
            self.count_fault(fault);
            same(
                &self.r.maps.maps,
                &before,
                &format!("{what}: an unrecorded change undone"),
            );
            return false;
        }
        let whole_changes = {
            let mut m = Memory::holding(&before);
            desired::apply_to(&mut m, &before, want).unwrap()
        };
        assert_eq!(changes, whole_changes, "{what}");
        true
    }

    /// Makes the map write numbered so in the next change fail.
    fn arm(&mut self, fault: Fault) {
        if let Fault::Write(n) = fault {
            self.r.maps.fail_at = Some(self.r.maps.writes + n);
        }
    }

    fn count_fault(&mut self, fault: Fault) {
        match fault {
            Fault::Write(_) => self.tally.failed_writes += 1,
            Fault::Save => self.tally.failed_saves += 1,
            Fault::None => {}
        }
    }

    /// The whole pipeline's answer to `state` over what `current` holds.
    fn whole(&self, state: &State, current: &Desired) -> Result<desired::Compiled> {
        let plan = config::parse_with(&self.texts[self.r.text], &state.live)?;
        desired::compile_on(&Lab, &plan, state, current, &up, &Choices::default())
    }

    /// A live change, as `Daemon::live_change` makes it.
    fn live(&mut self, add: Vec<PrefixSpec>, del: Vec<IpNet>, fault: Fault) -> String {
        let what = format!("add {add:?} del {del:?}, {fault:?}");
        let r = &self.r;
        let in_file = |n: &IpNet| {
            r.applied.plan.shadowed.contains(n)
                || r.rows
                    .iter()
                    .any(|p| p.prefix == *n && p.source == crate::plan::Origin::Config)
        };
        let before = r.applied.state.clone();
        let current = r.applied.current.clone();
        let mut state = before.clone();
        let undo = change_state(&mut state, &add, &del, &in_file, &|n| {
            current.prefixes.contains_key(n)
        });
        let unremoved = undo.unremoved();
        // The undo puts the state back exactly.
        let mut back = state.clone();
        undo.revert(&mut back);
        assert_eq!(back, before, "{what}: undo");
        let want = self.whole(&state, &self.r.applied.current);
        match work_out(&self.r.applied, &self.r.rows, &add, &del, &unremoved) {
            Err(e) => {
                let want = want.err().unwrap_or_else(|| panic!("{what}: {e:#}"));
                assert_eq!(format!("{e:#}"), format!("{want:#}"), "{what}");
                self.tally.invalid += 1;
            }
            Ok(None) => {
                let want = want.unwrap_or_else(|e| panic!("{what}: {e:#}"));
                let mut plan = config::parse_with(&self.texts[self.r.text], &state.live).unwrap();
                let mut state = state;
                forget_stale_removals(&mut state, &mut plan);
                if self.whole_change(plan, state, self.r.text, fault, &what) {
                    same(&self.r.applied.current, &want.desired, &what);
                    assert_eq!(self.r.rows, *want.view.prefixes, "{what}");
                    self.tally.wholes += 1;
                }
            }
            Ok(Some(d)) => {
                let want = want.unwrap_or_else(|e| panic!("{what}: {e:#}"));
                if !self.apply_delta(&d.writes, &d.removals, &want.desired, fault, &what) {
                    return what;
                }
                self.r.saved = state.encode().unwrap();
                let r = &mut self.r;
                d.commit(Target {
                    plan: &mut r.applied.plan,
                    layout: &mut r.applied.layout,
                    current: &mut r.applied.current,
                    prefixes: &mut r.rows,
                    slots: &mut r.applied.slots,
                });
                r.applied.state = state;
                let plan = config::parse_with(&self.texts[r.text], &r.applied.state.live).unwrap();
                assert_eq!(canonical(&r.applied.plan), canonical(&plan), "{what}");
                assert_eq!(r.applied.layout, want.layout, "{what}");
                same(&r.applied.current, &want.desired, &what);
                same(&r.maps.maps, &want.desired, &what);
                assert_eq!(r.rows, *want.view.prefixes, "{what}");
                assert_eq!(r.applied.slots, Slots::of(&want.view.prefixes), "{what}");
                assert_eq!(r.applied.state.ids, want.ids, "{what}");
                self.tally.deltas += 1;
            }
        }
        what
    }

    /// The state file decodes to the running state, and a restart from it
    /// (the file compiled with that state over the maps as they are, as
    /// edged starts over pinned maps) writes nothing.
    fn check_restart(&self, what: &str) {
        let r = &self.r;
        let state = State::decode(&r.saved, "the recorded state")
            .unwrap_or_else(|e| panic!("{what}: {e:#}"));
        assert_eq!(state, r.applied.state, "{what}: the state file");
        let plan = config::parse_with(&self.texts[r.text], &state.live)
            .unwrap_or_else(|e| panic!("{what}: the recorded state does not load: {e:#}"));
        let c = desired::compile_on(&Lab, &plan, &state, &r.maps.maps, &up, &Choices::default())
            .unwrap_or_else(|e| panic!("{what}: a restart fails: {e:#}"));
        let mut m = Memory::holding(&r.maps.maps);
        let changes = desired::apply_to(&mut m, &r.maps.maps, &c.desired).unwrap();
        assert_eq!(
            (changes.written, changes.removed, m.writes),
            (0, 0, 0),
            "{what}: a restart rewrites the maps: {}",
            differences(&r.maps.maps, &c.desired)
        );
        assert!(
            *c.view.prefixes == r.rows,
            "{what}: a restart gives other rows"
        );
    }
}

/// Panics unless the map contents are the same, saying where they differ.
fn same(a: &Desired, b: &Desired, what: &str) {
    assert!(a == b, "{what}: maps differ: {}", differences(a, b));
}

/// Where two map contents differ, briefly (they are large).
fn differences(a: &Desired, b: &Desired) -> String {
    let mut out = Vec::new();
    if a.settings != b.settings {
        out.push(format!("settings {:?} / {:?}", a.settings, b.settings));
    }
    for (i, (x, y)) in a.pops.iter().zip(&b.pops).enumerate() {
        if x != y {
            out.push(format!("pop {i}: {x:?} / {y:?}"));
        }
    }
    for (i, (x, y)) in a.policies.iter().zip(&b.policies).enumerate() {
        if x != y {
            out.push(format!("policy table {i}"));
        }
    }
    let nets: std::collections::BTreeSet<_> = a.prefixes.keys().chain(b.prefixes.keys()).collect();
    for n in nets {
        if a.prefixes.get(n) != b.prefixes.get(n) {
            out.push(format!(
                "{n}: {:?} / {:?}",
                a.prefixes.get(n),
                b.prefixes.get(n)
            ));
        }
    }
    if a.ports != b.ports || a.locals != b.locals {
        out.push("ports or locals".into());
    }
    out.join("; ")
}

fn running(
    c: desired::Compiled,
    plan: crate::plan::Plan,
    state: State,
    maps: Memory,
    text: usize,
    saved: Vec<u8>,
) -> Running {
    let rows = c.view.prefixes.to_vec();
    Running {
        applied: Applied {
            plan,
            state,
            current: c.desired,
            layout: c.layout,
            resolved: c.resolved,
            pop_ids: c.pop_ids,
            table_ids: c.table_ids,
            slots: Slots::of(&rows),
        },
        rows,
        maps,
        text,
        saved,
    }
}

/// `plan` with its `pop:NAME` policies in name order and prefixes naming
/// their policy: a delta leaves those policies in the order they were
/// first used in, which a whole validation of the changed plan may not
/// (ids within one plan are consistent either way; maps and table ids go
/// by name).
fn canonical(plan: &crate::plan::Plan) -> String {
    let mut p = plan.clone();
    let names: Vec<String> = p.policies.iter().map(|x| x.name.clone()).collect();
    p.policies.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<String> = p
        .prefixes
        .iter()
        .map(|x| {
            format!("{x:?} {:?}", x.policy.map(|i| names[i as usize].as_str()))
                .replace(&format!("policy: {:?}", x.policy), "")
        })
        .collect();
    p.prefixes.clear();
    format!("{p:?} {rows:?}")
}

/// One random change: a few adds (distinct networks), or a del.
fn change(c: &mut impl Choose, r: &Running) -> Option<(Vec<PrefixSpec>, Vec<IpNet>)> {
    let chance = |c: &mut dyn FnMut(usize) -> Option<usize>, percent: usize| -> Option<bool> {
        Some(c(100)? < percent)
    };
    let mut pick = |n: usize| c.below(n);
    let registered: Vec<IpNet> = r.rows.iter().map(|p| p.prefix).collect();
    if chance(&mut pick, 35)? && !registered.is_empty() {
        return Some((Vec::new(), vec![registered[pick(registered.len())?]]));
    }
    let n = if chance(&mut pick, 30)? {
        2 + pick(4)?
    } else {
        1
    };
    let mut nets: Vec<String> = Vec::new();
    let mut tries = 0;
    while nets.len() < n && tries < 20 {
        tries += 1;
        let net = match pick(3)? {
            0 => format!("198.51.100.{}/28", 16 * pick(16)?),
            1 => format!("203.0.113.{}/28", 16 * pick(8)?),
            _ => format!("2001:DB8:{:x}::/48", 1 + pick(9)?),
        };
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    let mut specs = Vec::new();
    for prefix in nets {
        let mut s = PrefixSpec {
            prefix,
            ..PrefixSpec::default()
        };
        match pick(9)? {
            0 => s.pop = Some("core".into()),
            1 => s.pop = Some("west".into()),
            2 => s.pop = Some("east".into()),
            3 => s.preference = Some("internet".into()),
            4 => s.policy = Some("near".into()),
            5 => s.policy = Some("nope".into()),
            _ => s.policy = Some("spread".into()),
        }
        if chance(&mut pick, 20)? {
            s.dscp = Some("af41".into());
        }
        if chance(&mut pick, 20)? {
            s.protect = vec![
                if chance(&mut pick, 90)? {
                    "peer0"
                } else {
                    "bb0"
                }
                .into(),
            ];
        }
        if chance(&mut pick, 30)? {
            s.registration = Some(format!("r{}", pick(4)?));
        }
        if chance(&mut pick, 25)? {
            // A region the geographic policy has a table for, a new one,
            // the root, and one that is no region path.
            let regions = ["world > asia", "world > europe > ie", "world", "world >"];
            s.region = Some(regions[pick(regions.len())?].into());
        }
        specs.push(s);
    }
    Some((specs, Vec::new()))
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::SmallRng};

    use super::*;

    struct Seeded(SmallRng);

    impl Choose for Seeded {
        fn below(&mut self, n: usize) -> Option<usize> {
            Some(self.0.random_range(0..n))
        }
    }

    #[test]
    fn the_change_pipeline_keeps_its_promises_on_a_random_walk() {
        let mut w = Walk::new();
        let mut rng = Seeded(SmallRng::seed_from_u64(15));
        let mut shared = 0;
        for _ in 0..800 {
            assert!(w.step(&mut rng));
            shared = shared.max(w.sharing_slot_zero());
        }
        let t = &w.tally;
        println!("{t:?}");
        assert!(
            t.deltas > 250 && t.wholes > 20 && t.invalid > 20,
            "every kind of live change: {t:?}"
        );
        assert!(
            t.reloads > 30 && t.refused_reloads > 5 && t.reload_deltas > 10,
            "reloads applied (some as deltas) and refused: {t:?}"
        );
        assert!(
            t.failed_writes > 10 && t.failed_saves > 10,
            "faults injected: {t:?}"
        );
        assert!(shared > 0, "the slots ran out at some point");
    }

    /// Choices that run out end the walk without a step.
    #[test]
    fn a_walk_ends_when_its_choices_run_out() {
        struct Few(usize);
        impl Choose for Few {
            fn below(&mut self, _: usize) -> Option<usize> {
                self.0 = self.0.checked_sub(1)?;
                Some(0)
            }
        }
        let mut w = Walk::new();
        let mut few = Few(3);
        while w.step(&mut few) {}
        assert_eq!(w.tally.steps, 0);
    }

    /// A delta whose state cannot be recorded: the maps are put back.
    #[test]
    fn undone_when_the_state_cannot_be_recorded() {
        let w = Walk::new();
        let add = vec![PrefixSpec {
            prefix: "203.0.113.0/28".into(),
            policy: Some("spread".into()),
            ..PrefixSpec::default()
        }];
        let del = vec!["198.51.100.0/28".parse().unwrap()];
        let d = work_out(&w.r.applied, &w.r.rows, &add, &del, &Default::default())
            .unwrap()
            .unwrap();
        let mut m = Memory::holding(&w.r.maps.maps);
        desired::apply_prefixes(&mut m, &d.writes, &d.removals).unwrap();
        assert_ne!(m.maps, w.r.maps.maps);
        desired::undo_prefixes(&mut m, &d.writes, &d.removals).unwrap();
        assert_eq!(m.maps, w.r.maps.maps);
    }
}
