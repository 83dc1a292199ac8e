//! PoP health: probes, the health state machine and the per-PoP runner.
//!
//! - [`probe_once`] sends one probe (ICMP echo, TCP connect, HTTP GET, UDP
//!   echo) from this host toward a PoP's probe address, bound to the PoP's
//!   egress interface when the probe names one (`SO_BINDTODEVICE`), and
//!   returns the round-trip time or a [`ProbeError`] saying what went wrong.
//! - [`Health`] is pure: rise / fall counting, up / down with the time of the
//!   last change, smoothed RTT (EWMA), the recent minimum RTT and the loss
//!   over the last [`WINDOW`] probes. Operator drain is not here: it is the
//!   daemon's (the state file), and a drained PoP keeps being probed.
//! - [`run`] probes one PoP every interval and sends a [`HealthEvent`] per
//!   probe (RTT sample and state) over an mpsc channel.

use std::{
    collections::VecDeque,
    io,
    net::{IpAddr, SocketAddr},
    sync::atomic::{AtomicU16, Ordering},
    time::{Duration, Instant},
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream, UdpSocket},
    sync::mpsc,
    time::MissedTickBehavior,
};

use crate::plan::{Probe, ProbeKind};

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No route, or an ICMP destination-unreachable / time-exceeded came back.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// TCP reset, or ICMP port unreachable for UDP.
    #[error("connection refused")]
    Refused,
    /// No answer within the probe's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The HTTP status was not the expected one.
    #[error("HTTP status {got}, expected {want}")]
    BadStatus { got: u16, want: u16 },
    /// The answer was not HTTP, or ended before the status line.
    #[error("bad HTTP response: {0}")]
    BadResponse(String),
    /// The UDP or ICMP echo did not hold what was sent.
    #[error("echo mismatch: sent {sent} bytes, got back {got} different bytes")]
    BadEcho { sent: usize, got: usize },
    /// Any other socket error.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Maps a socket error to the probe error it means.
fn classify(e: io::Error) -> ProbeError {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => ProbeError::Refused,
        Some(libc::EHOSTUNREACH | libc::ENETUNREACH | libc::ENETDOWN | libc::EHOSTDOWN) => {
            ProbeError::Unreachable(e.to_string())
        }
        _ => ProbeError::Io(e),
    }
}

/// Sends one probe; the round-trip time on success. Never takes longer than
/// `probe.timeout`.
pub async fn probe_once(probe: &Probe) -> Result<Duration, ProbeError> {
    let start = Instant::now();
    let work = async {
        match &probe.kind {
            ProbeKind::Icmp => icmp(probe, start).await,
            ProbeKind::Tcp { port } => {
                tcp(probe, *port).await?;
                Ok(start.elapsed())
            }
            ProbeKind::Http {
                port,
                path,
                host,
                status,
            } => http(probe, *port, path, host.as_deref(), *status, start).await,
            ProbeKind::Udp { port, payload } => udp(probe, *port, payload, start).await,
        }
    };
    tokio::time::timeout(probe.timeout, work)
        .await
        .unwrap_or(Err(ProbeError::Timeout(probe.timeout)))
}

async fn tcp(probe: &Probe, port: u16) -> Result<TcpStream, ProbeError> {
    let socket = match probe.address {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }?;
    if let Some(dev) = &probe.device {
        socket.bind_device(Some(dev.as_bytes()))?;
    }
    // Close with a reset: no TIME_WAIT left behind per probe.
    socket.set_zero_linger()?;
    socket
        .connect(SocketAddr::new(probe.address, port))
        .await
        .map_err(classify)
}

async fn http(
    probe: &Probe,
    port: u16,
    path: &str,
    host: Option<&str>,
    want: u16,
    start: Instant,
) -> Result<Duration, ProbeError> {
    let mut stream = tcp(probe, port).await?;
    let host = match (host, probe.address) {
        (Some(h), _) => h.to_string(),
        (None, IpAddr::V6(a)) if port == 80 => format!("[{a}]"),
        (None, IpAddr::V6(a)) => format!("[{a}]:{port}"),
        (None, a) if port == 80 => a.to_string(),
        (None, a) => format!("{a}:{port}"),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: edge-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(classify)?;
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() >= 16 * 1024 {
            return Err(ProbeError::BadResponse(
                "no status line in the first 16 KiB".into(),
            ));
        }
        let mut chunk = [0u8; 2048];
        let n = stream.read(&mut chunk).await.map_err(classify)?;
        if n == 0 {
            return Err(ProbeError::BadResponse(format!(
                "connection closed after {} bytes, before the status line",
                buf.len()
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let parsed = response.parse(&buf);
        // The status line is enough; the headers need not be complete.
        if let Some(got) = response.code {
            return if got == want {
                Ok(start.elapsed())
            } else {
                Err(ProbeError::BadStatus { got, want })
            };
        }
        if let Err(e) = parsed {
            return Err(ProbeError::BadResponse(e.to_string()));
        }
    }
}

async fn udp(
    probe: &Probe,
    port: u16,
    payload: &[u8],
    start: Instant,
) -> Result<Duration, ProbeError> {
    let bind: SocketAddr = match probe.address {
        IpAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind).await?;
    if let Some(dev) = &probe.device {
        socket.bind_device(Some(dev.as_bytes()))?;
    }
    // Connected: an ICMP port unreachable comes back as ECONNREFUSED, and
    // only the probe address's datagrams are received.
    socket
        .connect(SocketAddr::new(probe.address, port))
        .await
        .map_err(classify)?;
    socket.send(payload).await.map_err(classify)?;
    let mut buf = vec![0u8; payload.len() + 512];
    let n = socket.recv(&mut buf).await.map_err(classify)?;
    if &buf[..n] == payload {
        Ok(start.elapsed())
    } else {
        Err(ProbeError::BadEcho {
            sent: payload.len(),
            got: n,
        })
    }
}

/// Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What an ICMP message received on the raw socket says about our echo.
#[derive(Debug, PartialEq, Eq)]
enum Icmp {
    /// An echo reply with our id and sequence; the payload matched or not.
    Reply { payload_ok: bool },
    /// An error message quoting our echo request: (type, code).
    Error(u8, u8),
    /// Someone else's.
    Other,
}

/// Reads an ICMP(v6) message (IPv4: with its IP header, as raw IPv4
/// sockets deliver it; IPv6: without) against our echo's id, sequence and payload.
fn read_icmp(v6: bool, packet: &[u8], id: u16, seq: u16, payload: &[u8]) -> Icmp {
    let icmp = if v6 {
        packet
    } else {
        let ihl = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        if ihl < 20 || packet.len() < ihl {
            return Icmp::Other;
        }
        &packet[ihl..]
    };
    if icmp.len() < 8 {
        return Icmp::Other;
    }
    let ours = |h: &[u8], request: u8| {
        h.len() >= 8
            && h[0] == request
            && u16::from_be_bytes([h[4], h[5]]) == id
            && u16::from_be_bytes([h[6], h[7]]) == seq
    };
    let (reply, request, errors): (u8, u8, &[u8]) = if v6 {
        (129, 128, &[1, 3])
    } else {
        (0, 8, &[3, 11])
    };
    if icmp[0] == reply
        && ours(
            &[request, 0, 0, 0, icmp[4], icmp[5], icmp[6], icmp[7]],
            request,
        )
    {
        return Icmp::Reply {
            payload_ok: &icmp[8..] == payload,
        };
    }
    if errors.contains(&icmp[0]) {
        // The quoted packet: the original IP header, then our ICMP header.
        let quoted = &icmp[8..];
        let inner = if v6 {
            quoted.get(40..)
        } else {
            let ihl = usize::from(quoted.first().map_or(0, |b| b & 0x0f)) * 4;
            if ihl < 20 { None } else { quoted.get(ihl..) }
        };
        if inner.is_some_and(|h| ours(h, request)) {
            return Icmp::Error(icmp[0], icmp[1]);
        }
    }
    Icmp::Other
}

static ICMP_SEQ: AtomicU16 = AtomicU16::new(0);

async fn icmp(probe: &Probe, start: Instant) -> Result<Duration, ProbeError> {
    let v6 = probe.address.is_ipv6();
    let socket = if v6 {
        Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
    } else {
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
    }?;
    if let Some(dev) = &probe.device {
        socket.bind_device(Some(dev.as_bytes()))?;
    }
    socket.set_nonblocking(true)?;
    // A raw socket read and written with recvfrom / sendto, like a datagram
    // socket: tokio's UdpSocket drives it.
    let socket = UdpSocket::from_std(socket.into())?;

    let id = std::process::id() as u16;
    let seq = ICMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut payload = b"edge-probe".to_vec();
    payload.extend_from_slice(&(start.elapsed().as_nanos() as u64 ^ u64::from(seq)).to_be_bytes());
    let mut packet = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&payload);
    if !v6 {
        // The kernel fills in the ICMPv6 checksum (it needs the pseudo-header).
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    socket
        .send_to(&packet, SocketAddr::new(probe.address, 0))
        .await
        .map_err(classify)?;
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await.map_err(classify)?;
        match read_icmp(v6, &buf[..n], id, seq, &payload) {
            Icmp::Reply { payload_ok } if from.ip() == probe.address => {
                return if payload_ok {
                    Ok(start.elapsed())
                } else {
                    Err(ProbeError::BadEcho {
                        sent: payload.len(),
                        got: n,
                    })
                };
            }
            Icmp::Error(kind, code) => {
                let what = match (v6, kind) {
                    (false, 3) | (true, 1) => "destination unreachable",
                    _ => "time exceeded",
                };
                return Err(ProbeError::Unreachable(format!(
                    "ICMP {what} (code {code}) from {}",
                    from.ip()
                )));
            }
            _ => continue,
        }
    }
}

/// Probes kept for loss and the recent minimum RTT.
pub const WINDOW: usize = 20;
/// Weight of a new sample in the smoothed RTT (RFC 6298's alpha).
pub const EWMA_ALPHA: f64 = 0.125;

/// The health of one PoP, fed with probe results. Pure: the caller passes
/// the time.
///
/// The first probe result decides the state at once (one success: up, one
/// failure: down); after that `rise` consecutive successes bring a down PoP
/// up and `fall` consecutive failures take an up PoP down. Before any
/// result the PoP counts as up.
#[derive(Debug, Clone)]
pub struct Health {
    rise: u32,
    fall: u32,
    healthy: bool,
    decided: bool,
    /// Consecutive results against the current state.
    streak: u32,
    last_change: Instant,
    srtt: Option<Duration>,
    /// `Some(rtt)` for a success, `None` for a failure; newest last.
    recent: VecDeque<Option<Duration>>,
    probes: u64,
}

/// A PoP's health as `edgectl pop list` would show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PopStatus {
    /// What the probes say (drain is the daemon's: its state file).
    pub healthy: bool,
    /// When `healthy` last changed (or the state machine was made).
    pub last_change: Instant,
    /// Smoothed RTT (EWMA, alpha 1/8).
    pub srtt: Option<Duration>,
    /// Lowest RTT of the last [`WINDOW`] probes.
    pub min_rtt: Option<Duration>,
    /// Fraction of the last [`WINDOW`] probes that failed (0 before any).
    pub loss: f64,
    /// Probes so far.
    pub probes: u64,
}

impl Health {
    pub fn new(rise: u32, fall: u32, now: Instant) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            healthy: true,
            decided: false,
            streak: 0,
            last_change: now,
            srtt: None,
            recent: VecDeque::with_capacity(WINDOW),
            probes: 0,
        }
    }

    /// Feeds one probe result (`Some(rtt)` or `None` for a failure);
    /// returns the new state if it changed.
    pub fn record(&mut self, result: Option<Duration>, now: Instant) -> Option<bool> {
        let before = self.healthy;
        self.probes += 1;
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(result);
        if let Some(rtt) = result {
            self.srtt = Some(match self.srtt {
                None => rtt,
                Some(s) => s.mul_f64(1.0 - EWMA_ALPHA) + rtt.mul_f64(EWMA_ALPHA),
            });
        }
        let ok = result.is_some();
        if !self.decided {
            self.decided = true;
            self.healthy = ok;
            self.streak = 0;
        } else if ok == self.healthy {
            self.streak = 0;
        } else {
            self.streak += 1;
            if self.streak >= if ok { self.rise } else { self.fall } {
                self.healthy = ok;
                self.streak = 0;
            }
        }
        self.changed(before, now)
    }

    fn changed(&mut self, before: bool, now: Instant) -> Option<bool> {
        (self.healthy != before).then(|| {
            self.last_change = now;
            self.healthy
        })
    }

    /// What the probes say.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    pub fn status(&self) -> PopStatus {
        let failed = self.recent.iter().filter(|r| r.is_none()).count();
        PopStatus {
            healthy: self.healthy,
            last_change: self.last_change,
            srtt: self.srtt,
            min_rtt: self.recent.iter().flatten().min().copied(),
            loss: if self.recent.is_empty() {
                0.0
            } else {
                failed as f64 / self.recent.len() as f64
            },
            probes: self.probes,
        }
    }
}

/// One runner report: after every probe (an RTT sample or a failure) and
/// after every drain change.
#[derive(Debug)]
pub struct HealthEvent {
    /// The PoP, by name: its one identity from the config to the daemon.
    pub pop: String,
    /// The state (`status.healthy`) changed with this probe.
    pub changed: bool,
    /// This probe's result: its RTT, or why it failed.
    pub result: Result<Duration, ProbeError>,
    pub status: PopStatus,
}

/// Probes PoP `pop` every `probe.interval` until `events` is closed (or the
/// task is aborted), sending a [`HealthEvent`] per probe. Drain is not its
/// business: a drained PoP is still probed, and the daemon counts it down.
pub async fn run(pop: String, probe: Probe, events: mpsc::Sender<HealthEvent>) {
    let mut health = Health::new(probe.rise, probe.fall, Instant::now());
    let mut ticker = tokio::time::interval(probe.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let result = probe_once(&probe).await;
        let rtt = result.as_ref().ok().copied();
        let changed = health.record(rtt, Instant::now()).is_some();
        let event = HealthEvent {
            pop: pop.clone(),
            changed,
            result,
            status: health.status(),
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

/// Probe round-trip times as a cumulative histogram (the metric
/// `edge_pop_probe_rtt_seconds`): counts per bucket since edged started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RttHistogram {
    /// Samples per bucket: `counts[i]` those at most `RTT_BUCKETS[i]`
    /// (and above the bucket before); the last, those above every bound.
    pub counts: [u64; RTT_BUCKETS.len() + 1],
    /// Sum of every sample, seconds.
    pub sum: f64,
}

/// Upper bounds of [`RttHistogram`]'s buckets, seconds: 0.5 ms to 5 s, a
/// 1-2-5 series (a LAN hop to a far continent, and probes that nearly time
/// out).
pub const RTT_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

impl RttHistogram {
    pub fn observe(&mut self, rtt: Duration) {
        let s = rtt.as_secs_f64();
        let i = RTT_BUCKETS.partition_point(|&b| b < s);
        self.counts[i] += 1;
        self.sum += s;
    }

    /// Samples in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests;
