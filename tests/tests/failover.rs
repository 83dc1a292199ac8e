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
    lab: ThreePopLab,
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
            lab,
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

    // pop1 goes off the wire.
    let failed = Instant::now();
    s.lab.stop_pop(0);
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

    // pop1's link comes back but its probe replies stay dropped: it stays
    // down (the link's own settling, ARP and the kernel's link-watch delay
    // are not edged's to measure). Then its probe answers again: traffic
    // returns after rise probes.
    s.echoes[0].set_silent(true);
    s.lab.start_pop(0);
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
