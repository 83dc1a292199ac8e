//! The change pipeline without root: a config compiled against a fixed
//! host, written into maps held in memory, recorded through a save that can
//! fail; every failure leaves the maps as they were.

use std::{cell::RefCell, collections::BTreeMap};

use edge_common::POLICY_SLOTS;
use ipnet::IpNet;

use super::*;
use crate::{
    config::{self, Live, PrefixSpec},
    daemon::walk::{Lab, up},
    desired::memory::Memory,
    policy::Choices,
};

const CONFIG: &str = r#"
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

[[policies]]
name = "spread"
method = "weighted"
members = [{ pop = "core", weight = 1 }, { pop = "west", weight = 1 }]

[[prefixes]]
prefix = "198.51.100.0/24"
policy = "spread"
"#;

/// Runs one change; `saved` collects what was recorded.
fn run(
    maps: &mut Memory,
    plan: &Plan,
    state: State,
    saved: &RefCell<Vec<State>>,
    save_fails: bool,
) -> Result<(desired::Compiled, State, Changes)> {
    let current = maps.maps.clone();
    commit(
        &Lab,
        maps,
        &current,
        plan,
        state,
        &up,
        &Choices::default(),
        |s| {
            if save_fails {
                anyhow::bail!("disk full");
            }
            saved.borrow_mut().push(s.clone());
            Ok(())
        },
    )
}

fn live_add(prefix: &str) -> State {
    State {
        live: Live {
            added: vec![PrefixSpec {
                prefix: prefix.into(),
                pop: Some("west".into()),
                ..PrefixSpec::default()
            }],
            removed: Vec::new(),
            removed_private: Vec::new(),
        },
        ..State::default()
    }
}

#[test]
fn a_config_then_a_live_change_reach_the_maps_and_the_record() {
    let saved = RefCell::new(Vec::new());
    let mut maps = Memory::holding(&Desired::default());
    let plan = config::parse(CONFIG).unwrap();
    let (c, state, changes) = run(&mut maps, &plan, State::default(), &saved, false).unwrap();
    assert_eq!(maps.maps, c.desired);
    assert_eq!(saved.borrow().last(), Some(&state));
    assert_eq!(
        state.ids.pops,
        BTreeMap::from([("core".into(), 0), ("west".into(), 1), ("isp".into(), 2)])
    );
    assert_eq!(maps.maps.ports.len(), 3);
    assert!(changes.written > 0 && changes.removed == 0);
    let net: IpNet = "198.51.100.0/24".parse().unwrap();
    let entry = maps.maps.prefixes[&net];
    // The exits are selection tables holding their PoP.
    let exit = |t: u32| maps.maps.policies[t as usize].pops[..POLICY_SLOTS].to_vec();
    assert_eq!(
        exit(maps.maps.settings.backbone_table),
        vec![0; POLICY_SLOTS]
    );
    assert_eq!(
        exit(maps.maps.settings.transit_table),
        vec![2; POLICY_SLOTS]
    );
    assert!(maps.maps.policies[entry.policy as usize].pops.contains(&1));

    // A live prefix on top: the ids stay, the new prefix gets a fresh slot.
    let live = State {
        ids: state.ids.clone(),
        ..live_add("203.0.113.0/24")
    };
    let plan = config::parse_with(CONFIG, &live.live).unwrap();
    maps.reset.clear();
    let (c2, state2, changes) = run(&mut maps, &plan, live, &saved, false).unwrap();
    assert_eq!(maps.maps, c2.desired);
    assert_eq!(state2.ids.pops, state.ids.pops);
    assert_eq!(state2.ids.ports, state.ids.ports);
    // `pop = "west"` is a one-member policy of its own; `spread` keeps its id.
    assert_eq!(state2.ids.policies["spread"], state.ids.policies["spread"]);
    assert!(state2.ids.policies.contains_key("pop:west"));
    let added = maps.maps.prefixes[&"203.0.113.0/24".parse::<IpNet>().unwrap()];
    assert_ne!(added.slot, entry.slot);
    assert_eq!(maps.reset, vec![added.slot]);
    assert_eq!(
        maps.maps.prefixes[&net], entry,
        "the config prefix is untouched"
    );
    assert!(changes.written >= 1);
}

/// The config applied, then a live add that fails: at the write numbered
/// `fail_write` (from the live add's first), or at the record. Returns the
/// error; checks that the maps and the record are as after the config.
fn failing_live_add(fail_write: Option<usize>, save_fails: bool) -> String {
    let saved = RefCell::new(Vec::new());
    let mut maps = Memory::holding(&Desired::default());
    let plan = config::parse(CONFIG).unwrap();
    run(&mut maps, &plan, State::default(), &saved, false).unwrap();
    let before = maps.maps.clone();
    let live = live_add("203.0.113.0/24");
    let plan = config::parse_with(CONFIG, &live.live).unwrap();
    maps.fail_at = fail_write.map(|n| maps.writes + n);
    let Err(err) = run(&mut maps, &plan, live, &saved, save_fails) else {
        panic!("the change must fail");
    };
    assert_eq!(maps.maps, before);
    assert_eq!(saved.borrow().len(), 1, "only the config was recorded");
    format!("{err:#}")
}

#[test]
fn a_failed_record_undoes_the_change() {
    let err = failing_live_add(None, true);
    assert!(err.contains("recording the desired state"), "{err}");
}

#[test]
fn a_failed_write_changes_nothing_and_records_nothing() {
    for n in 0..3 {
        let err = failing_live_add(Some(n), false);
        assert!(err.contains("were undone"), "{err}");
    }
}

#[test]
fn a_missing_interface_fails_before_any_write() {
    let saved = RefCell::new(Vec::new());
    let mut maps = Memory::holding(&Desired::default());
    let plan = config::parse(&CONFIG.replace("\"tr0\"", "\"tr9\"")).unwrap();
    let Err(err) = run(&mut maps, &plan, State::default(), &saved, false) else {
        panic!("the change must fail");
    };
    assert!(format!("{err:#}").contains("no interface tr9"), "{err:#}");
    assert_eq!(maps.writes, 0);
    assert!(saved.borrow().is_empty());
}

/// A PoP's `mtu` above its interface's is held to the interface's: the
/// device would drop the larger packets, unseen by any counter.
#[test]
fn a_pop_mtu_is_never_above_its_interface_mtu() {
    let saved = RefCell::new(Vec::new());
    let mut maps = Memory::holding(&Desired::default());
    let config = CONFIG.replace(
        "mac = \"02:00:00:00:00:02\"",
        "mac = \"02:00:00:00:00:02\"\nmtu = 9000",
    );
    let config = config.replace(
        "mac = \"02:00:00:00:00:01\"",
        "mac = \"02:00:00:00:00:01\"\nmtu = 1400",
    );
    let plan = config::parse(&config).unwrap();
    let (_, state, _) = run(&mut maps, &plan, State::default(), &saved, false).unwrap();
    let mtu = |name: &str| maps.maps.pops[state.ids.pops[name] as usize].mtu;
    assert_eq!((mtu("core"), mtu("west"), mtu("isp")), (1400, 1500, 1500));
}

mod reload_guard {
    //! A reload reads a file once it has settled, and refuses one that
    //! drops too many of the file's prefixes (issue 15).

    use std::time::{Duration, Instant};

    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("edge-settle-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_file_is_read_once_it_stayed_the_same_for_the_settle_time() {
        let path = temp("stall");
        let settle = Duration::from_millis(300);
        std::fs::write(&path, "first half\n").unwrap();
        // A writer that stalls 150 ms (less than the settle time) between
        // its two writes: the whole file is read, not the first half.
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(150));
                use std::io::Write as _;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                f.write_all(b"second half\n").unwrap();
            })
        };
        let t = Instant::now();
        let text = read_settled(&path, settle).unwrap();
        writer.join().unwrap();
        assert_eq!(text, "first half\nsecond half\n");
        assert!(
            t.elapsed() >= Duration::from_millis(150) + settle,
            "{:?}",
            t.elapsed()
        );

        // Unchanged for longer than the settle time already: read at once.
        std::thread::sleep(settle);
        let t = Instant::now();
        read_settled(&path, settle).unwrap();
        assert!(t.elapsed() < settle, "{:?}", t.elapsed());

        // Bytes that are not UTF-8: the config's problem, with its line.
        std::fs::write(&path, b"ok\n\xff\n").unwrap();
        let e = read_settled(&path, Duration::ZERO).unwrap_err();
        assert!(format!("{e:#}").contains("line 2: column 1"), "{e:#}");
        assert!(
            e.chain()
                .any(|c| c.downcast_ref::<config::Invalid>().is_some())
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_file_that_keeps_changing_is_not_read() {
        let path = temp("busy");
        std::fs::write(&path, "0").unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0..2000 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    std::fs::write(&path, i.to_string()).unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let t = Instant::now();
        // A settle time well above the writer's period (100×), so that a
        // writer starved on a loaded machine still looks busy (at 500 ms, a
        // writer thread was once starved that long on 2 busy CPUs).
        let e = read_settled(&path, Duration::from_secs(2)).unwrap_err();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        assert!(format!("{e:#}").contains("keeps changing"), "{e:#}");
        assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn the_shrink_guard() {
        // Up to the share: fine; beyond it: refused, saying how to force.
        assert!(check_shrink(14, 7, 50).is_ok());
        let e = check_shrink(14, 6, 50).unwrap_err().to_string();
        assert!(e.contains("registers 6 prefixes, 8 fewer than the running config's 14 (57%, more than reload_max_shrink_percent = 50)"), "{e}");
        assert!(
            e.contains("edgectl config reload --force") && e.contains("SIGHUP cannot force"),
            "{e}"
        );
        assert!(check_shrink(14, 0, 100).is_ok());
        assert!(check_shrink(14, 13, 0).is_err());
        assert!(check_shrink(0, 0, 0).is_ok());
        assert!(check_shrink(3, 10, 0).is_ok());
        let plan = config::parse(CONFIG).unwrap();
        assert_eq!(
            file_prefixes(&plan),
            plan.prefixes.len(),
            "every prefix of a plan without live changes or routes is the file's"
        );
    }
}
