//! A delay line for labs on machines without netem: two interfaces of one
//! namespace joined in userspace, every frame that arrives on one sent out
//! of the other a set time later (in order; the delay of each direction
//! can change while it runs). Frames are copied as they are: for the hosts
//! on either side it is a wire with a latency.
//!
//! One thing it does besides: it completes IPv4 TCP and UDP checksums.
//! A veth hands frames over with the checksum left to "hardware"
//! (CHECKSUM_PARTIAL), and a frame the XDP program redirects, or this line
//! copies through a packet socket, loses that note on the way, so the
//! receiver would see a wrong checksum and drop the segment. A real NIC
//! computes it before the wire; so does this line.
//!
//! Bounded: it stops when dropped, or after `LIFETIME` whatever happens.

use std::{
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::netns::in_netns;

/// The longest a delay line runs.
pub const LIFETIME: Duration = Duration::from_secs(600);
/// How often a receiver looks at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// Two interfaces joined with a delay; see the module documentation.
pub struct DelayLine {
    stop: Arc<AtomicBool>,
    /// Delay from the first interface to the second, and back, in ns.
    delays: [Arc<AtomicU64>; 2],
    /// Frames received so far from the first interface, and from the second.
    carried: [Arc<AtomicU64>; 2],
    threads: Vec<JoinHandle<u64>>,
}

impl DelayLine {
    /// Joins `a` and `b` (interfaces of namespace `ns`): frames from `a`
    /// leave `b` after `a_to_b`, frames from `b` leave `a` after `b_to_a`.
    pub fn start(ns: &str, a: &str, b: &str, a_to_b: Duration, b_to_a: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let delays = [
            Arc::new(AtomicU64::new(a_to_b.as_nanos() as u64)),
            Arc::new(AtomicU64::new(b_to_a.as_nanos() as u64)),
        ];
        let carried = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
        let (sa, sb) = (packet_socket(ns, a), packet_socket(ns, b));
        let (sa, sb) = (Arc::new(sa), Arc::new(sb));
        let mut threads = Vec::new();
        for (from, to, delay, count) in [
            (
                sa.clone(),
                sb.clone(),
                delays[0].clone(),
                carried[0].clone(),
            ),
            (sb, sa, delays[1].clone(), carried[1].clone()),
        ] {
            let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
            let stop_rx = stop.clone();
            threads.push(std::thread::spawn(move || {
                receive(&from, &tx, &delay, &count, &stop_rx)
            }));
            threads.push(std::thread::spawn(move || transmit(&to, &rx)));
        }
        Self {
            stop,
            delays,
            carried,
            threads,
        }
    }

    /// Frames received so far in each direction (a → b, b → a).
    pub fn carried(&self) -> (u64, u64) {
        (
            self.carried[0].load(Ordering::Relaxed),
            self.carried[1].load(Ordering::Relaxed),
        )
    }

    /// Changes the delays (frames already in the line keep theirs).
    pub fn set(&self, a_to_b: Duration, b_to_a: Duration) {
        self.delays[0].store(a_to_b.as_nanos() as u64, Ordering::Relaxed);
        self.delays[1].store(b_to_a.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Stops the line; frames carried in each direction (a → b, b → a).
    pub fn stop(mut self) -> (u64, u64) {
        self.halt()
    }

    fn halt(&mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let counts: Vec<u64> = self
            .threads
            .drain(..)
            .map(|t| t.join().unwrap_or(0))
            .collect();
        match counts[..] {
            [ab, _, ba, _] => (ab, ba),
            _ => (0, 0),
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.halt();
        }
    }
}

/// Receives frames on `sock` until stopped; queues each with its send time.
fn receive(
    sock: &OwnedFd,
    tx: &mpsc::Sender<(Instant, Vec<u8>)>,
    delay: &AtomicU64,
    count: &AtomicU64,
    stop: &AtomicBool,
) -> u64 {
    let started = Instant::now();
    let mut buf = vec![0u8; 65536];
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < LIFETIME {
        // SAFETY: valid fd and buffer; sockaddr_ll sized for the kernel.
        let len = unsafe {
            let mut from: libc::sockaddr_ll = std::mem::zeroed();
            let mut alen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            let len = libc::recvfrom(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut from).cast(),
                &mut alen,
            );
            // What this line sends out of the interface comes back as outgoing.
            if len > 0 && from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            len
        };
        if len <= 0 {
            continue;
        }
        let at = Instant::now() + Duration::from_nanos(delay.load(Ordering::Relaxed));
        let mut frame = buf[..len as usize].to_vec();
        complete_checksum(&mut frame);
        if tx.send((at, frame)).is_err() {
            break;
        }
        n += 1;
        count.fetch_add(1, Ordering::Relaxed);
    }
    n
}

/// Writes the TCP or UDP checksum of an untagged IPv4 frame (see the
/// module documentation); leaves anything else alone.
pub fn complete_checksum(frame: &mut [u8]) {
    const ETH: usize = 14;
    if frame.len() < ETH + 20 || frame[12..14] != [0x08, 0x00] {
        return;
    }
    let ip = &frame[ETH..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff;
    let proto = ip[9];
    let csum_at = match proto {
        6 => 16,
        17 => 6,
        _ => return,
    };
    if ihl < 20 || total < ihl + csum_at + 2 || ETH + total > frame.len() || frag != 0 {
        return;
    }
    let l4 = ETH + ihl;
    let l4_len = total - ihl;
    frame[l4 + csum_at] = 0;
    frame[l4 + csum_at + 1] = 0;
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for pair in b.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            sum += hi | pair.get(1).map_or(0, |&lo| u32::from(lo));
        }
    };
    add(&frame[ETH + 12..ETH + 20]);
    add(&[0, proto]);
    add(&(l4_len as u16).to_be_bytes());
    add(&frame[l4..l4 + l4_len]);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut c = !(sum as u16);
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    frame[l4 + csum_at..l4 + csum_at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Sends queued frames on `sock`, each at its time, until the queue closes.
fn transmit(sock: &OwnedFd, rx: &mpsc::Receiver<(Instant, Vec<u8>)>) -> u64 {
    let mut n = 0;
    while let Ok((at, frame)) = rx.recv() {
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // SAFETY: valid fd and buffer; the socket is bound to its interface.
        let sent = unsafe { libc::send(sock.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if sent > 0 {
            n += 1;
        }
    }
    n
}

/// An AF_PACKET socket bound to `ifname` in `ns`, receiving every frame
/// with a short timeout (so the receiver sees the stop flag).
fn packet_socket(ns: &str, ifname: &str) -> OwnedFd {
    let fd = bound_packet_socket(ns, ifname);
    set_recv_timeout(&fd, POLL);
    fd
}

/// `SO_RCVTIMEO` of `fd`: a receive returns after `timeout` (at least 1 µs:
/// 0 would mean "never").
pub fn set_recv_timeout(fd: &OwnedFd, timeout: Duration) {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as _,
        tv_usec: timeout.subsec_micros().max(1) as _,
    };
    // SAFETY: valid fd and option pointer.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
    }
}

/// An AF_PACKET socket in `ns` bound to `ifname`, every protocol.
pub fn bound_packet_socket(ns: &str, ifname: &str) -> OwnedFd {
    let ifname = ifname.to_string();
    in_netns(ns, move || {
        let ifindex = crate::harness::netdev::ifindex(&ifname).expect("ifindex");
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket syscalls with checked results.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto));
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            let fd = OwnedFd::from_raw_fd(fd);
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            let rc = libc::bind(
                fd.as_raw_fd(),
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(
                rc,
                0,
                "bind AF_PACKET {ifname}: {}",
                std::io::Error::last_os_error()
            );
            fd
        }
    })
}
