//! The metrics endpoint under hostile local clients (issue 15): half-open,
//! slow and pipelining connections beyond its limit, and edged out of file
//! descriptors. edged in the lab's edge namespace, metrics on the default
//! 127.0.0.1:9477 there. Needs root.

use std::{
    io::{ErrorKind, Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    os::unix::process::CommandExt as _,
    time::{Duration, Instant},
};

use edge_tests::{netns::in_netns, topology::*};

const METRICS: &str = "127.0.0.1:9477";
/// The endpoint's bounds (edge-userspace/src/metrics/endpoint.rs LIMITS).
const LIMIT: f64 = 64.0;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const DEADLINE: Duration = Duration::from_secs(10);

fn addr() -> SocketAddr {
    METRICS.parse().unwrap()
}

/// A line of /proc/PID/status or /proc/PID/limits, after its label.
fn proc_field(pid: i32, file: &str, label: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/{file}: {e} (edged gone?)"));
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in /proc/{pid}/{file}"))
        .trim()
        .to_string()
}

fn threads(pid: i32) -> u32 {
    proc_field(pid, "status", "Threads:").parse().unwrap()
}

/// (soft, hard) limit on open files.
fn nofile(pid: i32) -> (u64, u64) {
    let f = proc_field(pid, "limits", "Max open files");
    let mut it = f.split_whitespace().map(|n| n.parse().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

fn open_fds(pid: i32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|t| !t.trim_start().starts_with('Z'))
    })
}

/// One scrape with `within` for everything: (status line, body, time), or
/// the error.
fn try_scrape(ns: &str, within: Duration) -> Result<(String, String, Duration), String> {
    in_netns(ns, move || {
        let t = Instant::now();
        let mut s = TcpStream::connect_timeout(&addr(), within).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(within)).unwrap();
        s.set_write_timeout(Some(within)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        s.read_to_end(&mut response).map_err(|e| e.to_string())?;
        let took = t.elapsed();
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
        let status = head.lines().next().unwrap_or_default().to_string();
        Ok((status, body.to_string(), took))
    })
}

/// A scrape that must answer 200 within `within`: (body, time).
fn scrape(ns: &str, within: Duration) -> (String, Duration) {
    let (status, body, took) = try_scrape(ns, within).unwrap_or_else(|e| panic!("scrape: {e}"));
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(took <= within, "the scrape took {took:?}");
    (body, took)
}

fn value(body: &str, series: &str) -> f64 {
    sample(body, series).unwrap_or_else(|| panic!("no {series} in:\n{body}"))
}

/// `n` connections from `ns`, each having sent `sent` (and then nothing).
fn hold(ns: &str, n: usize, sent: &'static [u8]) -> Vec<TcpStream> {
    in_netns(ns, move || {
        (0..n)
            .map(|i| {
                let mut s = TcpStream::connect_timeout(&addr(), Duration::from_secs(2))
                    .unwrap_or_else(|e| panic!("connection {i}: {e}"));
                if !sent.is_empty() {
                    s.write_all(sent).unwrap();
                }
                s
            })
            .collect()
    })
}

/// Whether the server closed `s` within `until` (EOF or reset), with the
/// bytes it sent before.
fn closed_by(s: &mut TcpStream, until: Instant) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Some(got), // reset: closed with our bytes unread
        }
    }
}

/// 300 silent connections, 50 that send half a request line and one that
/// pipelines 1000 requests without reading: a scrape still answers within
/// 1 s, edged's threads stay bounded, the server closes every one of them
/// (at once to make room, or at the 5 s header timeout) and counts it;
/// the pipelining client gets at most one response.
#[test]
fn the_metrics_endpoint_holds_against_half_open_slow_and_pipelining_clients() {
    let lab = EdgeLab::build("mf");
    let config = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&config, LAB_CONFIG).unwrap();
    let mut edged = Edged::unstarted(&lab.edge, &config, &lab.pin_path());
    // Started with a soft limit on open files below the hard one: edged
    // raises it.
    let mut command = edged.command(&[]);
    // SAFETY: setrlimit only, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut l = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            l.rlim_cur = 256.min(l.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let log = edged
        .spawn_logged(command)
        .unwrap_or_else(|(s, log)| panic!("edged exited ({s:?}): {log:?}"));
    let pid = edged.pid();
    let (soft, hard) = nofile(pid);
    assert!(hard > 256, "the hard limit {hard} leaves nothing to raise");
    assert_eq!(soft, hard, "edged raises its soft limit to the hard one");
    // The log comes through its own reader: the line may trail readiness.
    assert!(
        log.wait_for(
            &format!("soft limit raised from 256 to the hard limit, {hard}"),
            Duration::from_secs(5)
        )
        .is_some(),
        "{:?}",
        log.lines()
    );

    let (before, _) = scrape(&lab.edge, Duration::from_secs(2));
    assert_eq!(value(&before, "edge_metrics_connections_limit"), LIMIT);
    let threads_before = threads(pid);

    // The flood.
    let flood_start = Instant::now();
    let mut held = hold(&lab.edge, 300, b"");
    held.extend(hold(&lab.edge, 50, b"GET /metrics HTTP/1.1\r\nHost: 127.0"));
    let flooded = held.len();
    let mut pipeliner = hold(&lab.edge, 1, b"").pop().unwrap();
    let writer = {
        let mut w = pipeliner.try_clone().unwrap();
        std::thread::spawn(move || {
            w.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
            let burst = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(1000);
            // Until the server closes or the buffers fill: either is fine.
            let _ = w.write_all(burst.as_bytes());
        })
    };

    // While they are open: scrapes answer within 1 s; threads stay few.
    let mut slowest = Duration::ZERO;
    let mut most_threads = threads(pid);
    let mut during = String::new();
    for _ in 0..5 {
        let (body, took) = scrape(&lab.edge, Duration::from_secs(1));
        slowest = slowest.max(took);
        most_threads = most_threads.max(threads(pid));
        during = body;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        flood_start.elapsed() < HEADER_TIMEOUT,
        "the scrapes ran after the flood's connections could have timed out ({:?})",
        flood_start.elapsed()
    );
    let open = value(&during, "edge_metrics_connections");
    eprintln!(
        "during the flood: slowest scrape {slowest:?}, edged threads {threads_before} before, at most {most_threads}, {open} connections open"
    );
    assert!(open <= LIMIT, "{open} open");
    assert!(
        value(&during, "edge_metrics_connections_evicted_total") >= (flooded as f64 - LIMIT),
        "{during}"
    );
    // No thread per connection: at most the runtime's few blocking threads
    // more (a render, the daemon's own blocking work), whatever the flood.
    assert!(
        most_threads <= threads_before + 4,
        "edged grew from {threads_before} to {most_threads} threads"
    );

    // Every flood connection is closed by the server: the header timeout
    // counts from accept, the last accept was before the scrapes.
    let until = flood_start + HEADER_TIMEOUT + Duration::from_secs(2);
    for (i, s) in held.iter_mut().enumerate() {
        let got = closed_by(s, until).unwrap_or_else(|| {
            panic!(
                "flood connection {i} still open after {:?}",
                flood_start.elapsed()
            )
        });
        assert!(
            got.is_empty(),
            "connection {i} got {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    let all_closed = flood_start.elapsed();
    let got = closed_by(
        &mut pipeliner,
        flood_start + DEADLINE + Duration::from_secs(2),
    )
    .expect("the pipelining client is closed by the server");
    writer.join().unwrap();
    let responses = String::from_utf8_lossy(&got).matches("HTTP/1.1 ").count();
    assert!(
        responses <= 1,
        "the pipelining client got {responses} responses"
    );
    eprintln!(
        "all {flooded} flood connections closed by the server {all_closed:?} after the flood began; the pipelining client got {responses} response(s)"
    );
    drop(held);
    drop(pipeliner);

    let (after, _) = scrape(&lab.edge, Duration::from_secs(1));
    let count = |s: &str| value(&after, s) - value(&before, s);
    let (evicted, timed_out, rejected) = (
        count("edge_metrics_connections_evicted_total"),
        count("edge_metrics_connections_timed_out_total"),
        count("edge_metrics_connections_rejected_total"),
    );
    eprintln!("endpoint counters: {evicted} evicted, {timed_out} timed out, {rejected} rejected");
    // Each flood connection ended one of these ways; none got a response.
    assert!(
        evicted + timed_out + rejected >= flooded as f64,
        "{evicted} + {timed_out} + {rejected} < {flooded}"
    );
    assert!(
        timed_out >= 1.0,
        "the ones left were closed at the header timeout"
    );
    assert!(
        count("edge_metrics_connections_accepted_total") >= flooded as f64 + 6.0,
        "{after}"
    );
    assert!(alive(pid));
    assert!(log.matching("panicked").is_empty(), "{:?}", log.lines());
    let _ = std::fs::remove_file(&config);
}

/// edged out of file descriptors (its soft limit lowered to what it has
/// open plus 8, 100 connections queued): accepts fail, are counted and
/// logged at most every 10 s, nothing panics; the endpoint answers again
/// as soon as the clients go away, and edged lives on.
#[test]
fn the_metrics_endpoint_recovers_when_edged_runs_out_of_file_descriptors() {
    let lab = EdgeLab::build("mr");
    let config = std::env::temp_dir().join(format!("{}.toml", lab.edge));
    std::fs::write(&config, LAB_CONFIG).unwrap();
    let (edged, log) = Edged::start_logged(&lab.edge, &config, &lab.pin_path(), &[]);
    let pid = edged.pid();
    let (before, _) = scrape(&lab.edge, Duration::from_secs(2));
    assert_eq!(value(&before, "edge_metrics_accept_errors_total"), 0.0);

    let (_, hard) = nofile(pid);
    let low = open_fds(pid) + 8;
    let prlimit = |soft: u64| {
        let out = std::process::Command::new("prlimit")
            .args([
                "--pid",
                &pid.to_string(),
                &format!("--nofile={soft}:{hard}"),
            ])
            .output()
            .expect("prlimit (util-linux)");
        assert!(out.status.success(), "prlimit: {out:?}");
        assert_eq!(nofile(pid), (soft, hard));
    };
    prlimit(low);
    let t = Instant::now();
    let held = hold(&lab.edge, 100, b"");
    // edged fills its 8 descriptors and fails the next accepts.
    let emfile = "metrics endpoint: accept: Too many open files";
    assert!(
        log.wait_for(emfile, Duration::from_secs(5)).is_some(),
        "no accept error with {} of {low} descriptors open: {:?}",
        open_fds(pid),
        log.lines()
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert!(alive(pid));
    let errors = log.matching(emfile);
    assert!(
        errors.len() <= 1 + (t.elapsed().as_secs() / 10) as usize,
        "the accept errors are rate-limited: {errors:?}"
    );

    // The clients go away: the endpoint answers again, without a restart
    // and with the limit still low.
    drop(held);
    let gone = Instant::now();
    let answered = loop {
        match try_scrape(&lab.edge, Duration::from_secs(1)) {
            Ok((status, body, _)) if status == "HTTP/1.1 200 OK" => break body,
            other => {
                assert!(
                    gone.elapsed() < Duration::from_secs(5),
                    "no answer 5 s after the clients went away: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    let recovered = gone.elapsed();
    let accept_errors = value(&answered, "edge_metrics_accept_errors_total");
    eprintln!(
        "out of descriptors (limit {low}): {accept_errors} accept errors, {} log line(s); answering again {recovered:?} after the clients went away",
        errors.len()
    );
    assert!(accept_errors >= 1.0, "{answered}");
    assert!(recovered < Duration::from_secs(2), "{recovered:?}");
    prlimit(hard);
    scrape(&lab.edge, Duration::from_secs(1));
    assert!(alive(pid));
    assert!(log.matching("panicked").is_empty(), "{:?}", log.lines());
    drop(edged);
    let _ = std::fs::remove_file(&config);
}
