//! Protection events from the kernel's ring buffer, and the daemon's event
//! log. The kernel bounds the events per CPU (a token bucket); here they
//! are logged once per (prefix, port) per interval, with how many more came
//! in between, and counted.

use std::{
    collections::{BTreeMap, VecDeque},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsFd as _, AsRawFd as _},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use aya::maps::{MapData, RingBuf};
use edge_common::ProtectionEvent;
use log::debug;
use serde::Serialize;
use tokio::sync::mpsc;

/// A violation is logged at most once per (prefix, port) per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Events kept for `edgectl events`.
pub const KEEP: usize = 1000;

/// Reads the ring buffer from a thread of its own until `stop`, passing
/// events on (dropped, and counted by the caller's channel, if the daemon
/// is busy).
pub fn spawn(
    mut ring: RingBuf<MapData>,
    tx: mpsc::Sender<ProtectionEvent>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("events".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut fds = [libc::pollfd {
                    fd: ring.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                }];
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(fds.as_mut_ptr(), 1, 200) };
                while let Some(item) = ring.next() {
                    if item.len() < size_of::<ProtectionEvent>() {
                        continue;
                    }
                    // SAFETY: a ProtectionEvent the program wrote; any bytes are valid.
                    let ev: ProtectionEvent =
                        unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) };
                    if tx.try_send(ev).is_err() {
                        debug!("event dropped: edged busy");
                    }
                }
            }
        })
}

/// The source and destination of an event.
pub fn addresses(ev: &ProtectionEvent) -> (IpAddr, IpAddr) {
    if ev.family == edge_common::event_family::IPV4 {
        let a = |b: &[u8; 16]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        (a(&ev.src), a(&ev.dst))
    } else {
        (
            IpAddr::V6(Ipv6Addr::from(ev.src)),
            IpAddr::V6(Ipv6Addr::from(ev.dst)),
        )
    }
}

/// One entry of the event log.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Seconds since the Unix epoch.
    pub time: f64,
    /// `protection`, `pop`, `fallback`.
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug, Default)]
struct Violation {
    logged: Option<Instant>,
    /// Events since the last log line.
    pending: u64,
    total: u64,
}

/// The daemon's events: recent records and protection totals.
#[derive(Debug, Default)]
pub struct Events {
    records: VecDeque<Record>,
    /// (prefix label, port name) → counts.
    violations: BTreeMap<(String, String), Violation>,
    pub received: u64,
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Events {
    /// Adds a record to the log (and the daemon's log output, at WARN).
    pub fn record(&mut self, kind: &'static str, message: String) {
        self.record_at(log::Level::Warn, kind, message);
    }

    /// Adds a record, logged once at `level` (`fallback` is an ERROR, a
    /// PoP coming up or an operator's change INFO).
    pub fn record_at(&mut self, level: log::Level, kind: &'static str, message: String) {
        log::log!(level, "{kind}: {message}");
        if self.records.len() == KEEP {
            self.records.pop_front();
        }
        self.records.push_back(Record {
            time: now_unix(),
            kind,
            message,
        });
    }

    /// A protection event, named: logged at once for a new (prefix, port),
    /// then at most once per interval with the count in between.
    pub fn protection(&mut self, prefix: String, port: String, src: IpAddr, registered_on: &str) {
        self.received += 1;
        let v = self
            .violations
            .entry((prefix.clone(), port.clone()))
            .or_default();
        v.total += 1;
        v.pending += 1;
        if v.logged.is_none_or(|t| t.elapsed() >= LOG_INTERVAL) {
            let more = v.pending - 1;
            v.pending = 0;
            v.logged = Some(Instant::now());
            let tail = if more > 0 {
                format!(" ({more} more since the last report)")
            } else {
                String::new()
            };
            self.record(
                "protection",
                format!(
                    "traffic of {prefix} from {src} arrived on {port}; it is registered on {registered_on}: dropped{tail}"
                ),
            );
        }
    }

    /// Logs the counts still pending from the last interval.
    pub fn flush(&mut self) {
        let due: Vec<(String, String, u64)> = self
            .violations
            .iter_mut()
            .filter(|(_, v)| v.pending > 0 && v.logged.is_some_and(|t| t.elapsed() >= LOG_INTERVAL))
            .map(|((p, port), v)| {
                let n = v.pending;
                v.pending = 0;
                v.logged = Some(Instant::now());
                (p.clone(), port.clone(), n)
            })
            .collect();
        for (prefix, port, n) in due {
            self.record(
                "protection",
                format!("{n} more violations of {prefix} on {port} since the last report"),
            );
        }
    }

    pub fn recent(&self, n: usize) -> Vec<Record> {
        self.records.iter().rev().take(n).rev().cloned().collect()
    }

    /// ((prefix, port), total events received).
    pub fn totals(&self) -> Vec<((String, String), u64)> {
        self.violations
            .iter()
            .map(|(k, v)| (k.clone(), v.total))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_prefix_and_port_per_interval() {
        let mut e = Events::default();
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..50 {
            e.protection(
                "192.0.2.0/25 (contoso)".into(),
                "peer1".into(),
                src,
                "peer0",
            );
        }
        e.protection(
            "2001:db8:c::/48 (contoso)".into(),
            "peer1".into(),
            src,
            "peer0",
        );
        let recent = e.recent(10);
        assert_eq!(recent.len(), 2, "{recent:?}");
        assert!(
            recent[0]
                .message
                .contains("192.0.2.0/25 (contoso) from 192.0.2.1 arrived on peer1")
        );
        assert_eq!(e.received, 51);
        assert_eq!(
            e.totals(),
            [
                (("192.0.2.0/25 (contoso)".into(), "peer1".into()), 50),
                (("2001:db8:c::/48 (contoso)".into(), "peer1".into()), 1)
            ]
        );
        // Nothing due yet: the interval has not passed.
        e.flush();
        assert_eq!(e.recent(10).len(), 2);
    }
}
