//! Failover tests (tier 3): three PoPs behind the edge, health probes run
//! by edged, a sequence-numbered stream toward the customer; a PoP fails
//! and comes back, or gets slower, and the traffic follows within the
//! promised time.

use std::{
    net::UdpSocket,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use edge_tests::{
    three_pops::*,
    topology::{Edged, Stream, send_streams, sock},
};

/// Arrival log of one PoP's customer socket: (when, sequence number).
type Log = Arc<Mutex<Vec<(Instant, u32)>>>;

fn spawn_log(sock: UdpSocket, done: Arc<AtomicBool>) -> (Log, std::thread::JoinHandle<()>) {
    let log: Log = Arc::default();
    let l = log.clone();
    let h = std::thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 2048];
        loop {
            match sock.recv(&mut buf) {
                Ok(n) if n >= 4 => l.lock().unwrap().push((
                    Instant::now(),
                    u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]),
                )),
                Ok(_) => {}
                Err(_) if done.load(Ordering::Relaxed) => return,
                Err(_) => {}
            }
        }
    });
    (log, h)
}

/// The first arrival at or after `t`.
fn first_after(log: &Log, t: Instant) -> Option<Instant> {
    log.lock()
        .unwrap()
        .iter()
        .map(|(at, _)| *at)
        .find(|at| *at >= t)
}

/// Waits until `log` has an arrival at or after `t` (bounded by `limit`).
fn wait_arrival(log: &Log, t: Instant, limit: Duration) -> Option<Duration> {
    let deadline = t + limit;
    while Instant::now() < deadline {
        if let Some(at) = first_after(log, t) {
            return Some(at - t);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

const INTERVAL_MS: u64 = 200;
const RISE: u64 = 2;
const FALL: u64 = 3;

struct Setup {
    /// Kept for its namespaces (the test fails PoPs through their probes).
    _lab: ThreePopLab,
    edged: Edged,
    echoes: Vec<UdpEcho>,
    logs: Vec<Log>,
    receivers: Vec<std::thread::JoinHandle<()>>,
    done: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    sender: Option<std::thread::JoinHandle<Vec<u32>>>,
    config: std::path::PathBuf,
}

impl Setup {
    fn new(tag: &str, method: &str) -> Self {
        let lab = ThreePopLab::build(tag);
        let probe = format!(
            "{{ type = \"udp\", address = \"ADDR\", port = 7, interval_ms = {INTERVAL_MS}, timeout_ms = 100, rise = {RISE}, fall = {FALL} }}"
        );
        let config = lab.config(method, Some(&probe));
        let path = std::env::temp_dir().join(format!("{}.toml", lab.edge));
        std::fs::write(&path, &config).unwrap();
        let echoes: Vec<UdpEcho> = (0..3)
            .map(|i| UdpEcho::start(&lab.pops[i], &format!("{}:7", pop_addrs(i).0)))
            .collect();
        let pin = std::path::PathBuf::from(format!("/sys/fs/bpf/{}", lab.edge));
        let edged = Edged::start(&lab.edge, &path, &pin);
        let done = Arc::new(AtomicBool::new(false));
        let (logs, receivers): (Vec<_>, Vec<_>) = (0..3)
            .map(|i| spawn_log(lab.customer_socket(i, false, 6100), done.clone()))
            .unzip();
        let stop = Arc::new(AtomicBool::new(false));
        let stream = Stream {
            ns: lab.transit.clone(),
            from: sock(TRANSIT_V4, 0),
            to: sock(CUSTOMER_V4, 6100),
        };
        let s = stop.clone();
        // 1000 datagrams/s until stopped (at most 60 s).
        let sender = std::thread::spawn(move || {
            send_streams(&[stream], 60_000, 1000, &|| s.load(Ordering::Relaxed))
        });
        Setup {
            _lab: lab,
            edged,
            echoes,
            logs,
            receivers,
            done,
            stop,
            sender: Some(sender),
            config: path,
        }
    }

    /// Stops the stream; (sent, received per PoP).
    fn finish(mut self) -> (u32, Vec<usize>) {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.sender.take().unwrap().join().unwrap()[0];
        std::thread::sleep(Duration::from_millis(200));
        self.done.store(true, Ordering::Relaxed);
        for r in self.receivers.drain(..) {
            r.join().unwrap();
        }
        let got = self.logs.iter().map(|l| l.lock().unwrap().len()).collect();
        let _ = std::fs::remove_file(&self.config);
        (sent, got)
    }

    fn pop_state(&self, name: &str) -> String {
        let list = self.edged.ctl_ok(&["pop", "list"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["health"]["state"].as_str().unwrap().to_string())
            .unwrap()
    }
}

#[test]
fn a_failed_pop_fails_over_within_fall_intervals_and_comes_back_after_rise() {
    let s = Setup::new("fo", "priority");
    // Steady state: everything at pop1.
    let t = Instant::now();
    assert!(
        wait_arrival(&s.logs[0], t, Duration::from_secs(3)).is_some(),
        "the stream reaches pop1"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.pop_state("pop1"), "up");

    // pop1 stops answering beyond a link that stays up (its probe replies
    // dropped): only the probes can tell. (A link that loses its carrier
    // takes its PoPs down at once: the exits test below, and
    // tests/tests/interfaces.rs.)
    let failed = Instant::now();
    s.echoes[0].set_silent(true);
    let budget = Duration::from_millis((FALL + 2) * INTERVAL_MS);
    let to_backup = wait_arrival(&s.logs[1], failed, Duration::from_secs(5))
        .expect("traffic reaches the backup pop2");
    println!(
        "failover: traffic at pop2 {to_backup:?} after pop1 failed (fall {FALL} × {INTERVAL_MS} ms + 2 × {INTERVAL_MS} ms = {budget:?})"
    );
    assert!(to_backup < budget, "{to_backup:?} ≥ {budget:?}");
    assert_eq!(s.pop_state("pop1"), "down");
    let lookup = s.edged.ctl_ok(&["prefix", "lookup", CUSTOMER_V4]);
    assert_eq!(lookup["toward_customer"][0]["pop"], "pop2", "{lookup}");

    // Its probe replies stay dropped: it stays down. Then its probe
    // answers again: traffic returns after rise probes.
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(s.pop_state("pop1"), "down");
    assert!(first_after(&s.logs[0], Instant::now() - Duration::from_millis(1000)).is_none());
    let back = Instant::now();
    s.echoes[0].set_silent(false);
    let returned =
        wait_arrival(&s.logs[0], back, Duration::from_secs(5)).expect("traffic returns to pop1");
    let budget = Duration::from_millis((RISE + 2) * INTERVAL_MS);
    println!(
        "return: traffic at pop1 {returned:?} after its probe answered again (rise {RISE} × {INTERVAL_MS} ms + 2 × {INTERVAL_MS} ms = {budget:?})"
    );
    assert!(
        returned >= Duration::from_millis((RISE - 1) * INTERVAL_MS),
        "not before rise probes: {returned:?}"
    );
    assert!(returned < budget, "{returned:?} ≥ {budget:?}");
    let m = s.edged.ctl_ok(&["stats"]);
    let (sent, got) = s.finish();
    println!("sent {sent}, received at pop1/pop2/pop3: {got:?}; {m}");
    assert!(got[0] > 0 && got[1] > 0 && got[2] == 0, "{got:?}");
}

#[test]
fn the_performance_method_moves_to_a_faster_pop() {
    let s = Setup::new("perf", "performance");
    // Which PoP gets the stream now?
    std::thread::sleep(Duration::from_millis(1500));
    let at = |s: &Setup| -> usize {
        let t = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        (0..3)
            .max_by_key(|&i| {
                s.logs[i]
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(a, _)| *a >= t)
                    .count()
            })
            .unwrap()
    };
    let first = at(&s);
    // It gets 80 ms slower: the stream moves to another PoP.
    s.echoes[first].set_delay(Duration::from_millis(80));
    let slowed = Instant::now();
    let deadline = slowed + Duration::from_secs(10);
    let mut moved = None;
    while Instant::now() < deadline {
        for i in (0..3).filter(|&i| i != first) {
            if let Some(t) = first_after(&s.logs[i], slowed) {
                moved = Some((i, t - slowed));
            }
        }
        if moved.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (to, after) = moved.expect("the stream moves off the slow PoP");
    println!(
        "performance: pop{} slowed by 80 ms; stream moved to pop{} after {after:?}",
        first + 1,
        to + 1
    );
    let list = s.edged.ctl_ok(&["pop", "list"]);
    let rtt = |i: usize| list[i]["health"]["rtt_ms"].as_f64().unwrap();
    assert!(rtt(first) > rtt(to) + 5.0, "{list}");
    let report = s.edged.ctl_ok(&["report", "latency", "--window", "60"]);
    assert!(
        report["pops"][first]["max_ms"].as_f64().unwrap() >= 80.0,
        "{report}"
    );
    assert!(
        report["pops"][to]["samples"].as_u64().unwrap() > 5,
        "{report}"
    );
    let _ = s.finish();
}

/// Waits until edged's probe state of `pop` is `state` (bounded).
fn wait_state(edged: &Edged, pop: &str, state: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let list = edged.ctl_ok(&["pop", "list"]);
        if list
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == pop && p["health"]["state"] == state)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The exits follow health (issue 14): the backbone exit is one PoP
/// (pop1), so when its link fails the customer's cold-potato traffic falls
/// back to the transit exit, and returns when pop1 answers again; the
/// transit exit is a priority policy (transit, then pop3), so when the
/// transit link fails the hot-potato traffic moves to pop3 and returns.
/// Each move happens within fall × interval + 2 intervals, and the loss of
/// each stream is bounded by that much traffic.
#[test]
fn the_exits_fail_over_within_fall_intervals_and_come_back() {
    let lab = ThreePopLab::build("fx");
    let probe = format!(
        "{{ type = \"udp\", address = \"ADDR\", port = 7, interval_ms = {INTERVAL_MS}, timeout_ms = 100, rise = {RISE}, fall = {FALL} }}"
    );
    let path = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&path, lab.exit_config(&probe)).unwrap();
    let mut echoes: Vec<UdpEcho> = (0..3)
        .map(|i| UdpEcho::start(&lab.pops[i], &format!("{}:7", pop_addrs(i).0)))
        .collect();
    echoes.push(UdpEcho::start(&lab.transit, &format!("{TRANSIT_V4}:7")));
    let pin = std::path::PathBuf::from(format!("/sys/fs/bpf/{}", lab.edge));
    let edged = Edged::start(&lab.edge, &path, &pin);

    // Receivers: the backbone stream (port 6300) at pop1 or the transit
    // host, the transit stream (6301) at the transit host or pop3.
    let done = Arc::new(AtomicBool::new(false));
    let mut receivers = Vec::new();
    let mut log = |ns: &str, port| {
        let (l, h) = spawn_log(lab.internet_socket(ns, port), done.clone());
        receivers.push(h);
        l
    };
    let bb_pop1 = log(&lab.pops[0], 6300);
    let bb_transit = log(&lab.transit, 6300);
    let tr_transit = log(&lab.transit, 6301);
    let tr_pop3 = log(&lab.pops[2], 6301);
    let stop = Arc::new(AtomicBool::new(false));
    let streams = [
        Stream {
            ns: lab.cust.clone(),
            from: sock(CUST_MICROSOFT_V4, 0),
            to: sock(INTERNET_V4, 6300),
        },
        Stream {
            ns: lab.cust.clone(),
            from: sock(CUST_INTERNET_V4, 0),
            to: sock(INTERNET_V4, 6301),
        },
    ];
    let s = stop.clone();
    let sender = std::thread::spawn(move || {
        send_streams(&streams, 60_000, 1000, &|| s.load(Ordering::Relaxed))
    });
    let t = Instant::now();
    assert!(
        wait_arrival(&bb_pop1, t, Duration::from_secs(3)).is_some(),
        "the customer's microsoft traffic reaches the backbone exit pop1"
    );
    assert!(
        wait_arrival(&tr_transit, t, Duration::from_secs(3)).is_some(),
        "the customer's internet traffic reaches the transit exit"
    );
    let exit_pops = |addr: &str| {
        let l = edged.ctl_ok(&["prefix", "lookup", addr]);
        (
            l["from_customer"].as_str().unwrap_or("-").to_string(),
            l["from_customer_pops"][0]["pop"]
                .as_str()
                .unwrap_or("-")
                .to_string(),
        )
    };
    assert_eq!(
        exit_pops(CUST_MICROSOFT_V4),
        ("pop:pop1".into(), "pop1".into())
    );
    assert_eq!(
        exit_pops(CUST_INTERNET_V4),
        ("transits".into(), "transit".into())
    );
    let budget = Duration::from_millis((FALL + 2) * INTERVAL_MS);

    // The backbone exit's link fails: to the transit exit (its fallback).
    let failed = Instant::now();
    lab.stop_pop(0);
    let moved = wait_arrival(&bb_transit, failed, Duration::from_secs(5))
        .expect("backbone traffic reaches the transit exit");
    println!("backbone exit: at the transit exit {moved:?} after pop1 failed (budget {budget:?})");
    assert!(moved < budget, "{moved:?} ≥ {budget:?}");
    assert_eq!(
        exit_pops(CUST_MICROSOFT_V4),
        ("pop:pop1".into(), "transit".into())
    );
    let events = edged.ctl_ok(&["events"]);
    assert!(
        events.to_string().contains("backbone_exit pop:pop1"),
        "a fallback event names the exit: {events}"
    );
    // Back: link up, then the probe answers again.
    echoes[0].set_silent(true);
    lab.start_pop(0);
    std::thread::sleep(Duration::from_millis(1000));
    let back = Instant::now();
    echoes[0].set_silent(false);
    let returned = wait_arrival(&bb_pop1, back, Duration::from_secs(5))
        .expect("backbone traffic returns to pop1");
    println!("backbone exit: back at pop1 {returned:?} after its probe answered");
    assert!(returned < Duration::from_millis((RISE + 2) * INTERVAL_MS));
    assert!(wait_state(&edged, "pop1", "up", Duration::from_secs(2)));

    // The transit exit's first PoP fails: to pop3, its second.
    let failed = Instant::now();
    lab.stop_transit();
    let moved = wait_arrival(&tr_pop3, failed, Duration::from_secs(5))
        .expect("transit traffic reaches pop3");
    println!("transit exit: at pop3 {moved:?} after transit failed (budget {budget:?})");
    assert!(moved < budget, "{moved:?} ≥ {budget:?}");
    assert_eq!(
        exit_pops(CUST_INTERNET_V4),
        ("transits".into(), "pop3".into())
    );
    echoes[3].set_silent(true);
    lab.start_transit();
    std::thread::sleep(Duration::from_millis(1000));
    let back = Instant::now();
    echoes[3].set_silent(false);
    let returned = wait_arrival(&tr_transit, back, Duration::from_secs(5))
        .expect("transit traffic returns to the transit host");
    println!("transit exit: back at transit {returned:?} after its probe answered");
    assert!(returned < Duration::from_millis((RISE + 2) * INTERVAL_MS));
    std::thread::sleep(Duration::from_millis(300));

    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, Ordering::Relaxed);
    for r in receivers {
        r.join().unwrap();
    }
    let got = |logs: [&Log; 2]| logs.iter().map(|l| l.lock().unwrap().len()).sum::<usize>();
    let (bb, tr) = (got([&bb_pop1, &bb_transit]), got([&tr_transit, &tr_pop3]));
    let bound = (budget.as_millis() as usize) * 1000 / 1000;
    println!(
        "backbone stream: sent {}, received {bb}; transit stream: sent {}, received {tr}; loss bound {bound} each",
        sent[0], sent[1]
    );
    assert!(
        (sent[0] as usize).saturating_sub(bb) <= bound,
        "backbone loss {}",
        (sent[0] as usize).saturating_sub(bb)
    );
    assert!(
        (sent[1] as usize).saturating_sub(tr) <= bound,
        "transit loss {}",
        (sent[1] as usize).saturating_sub(tr)
    );
    let _ = std::fs::remove_file(&path);
}
