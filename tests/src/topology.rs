//! The standard edge lab: a customer host, the edge host (XDP attached by
//! edged) and two PoP hosts, each in its own namespace.
//!
//! ```text
//!  cust:eth0 ───── edge:cust0   edge:popa0 ───── pop-a:eth0   203.0.113.0/24, 2001:db8:a::/48
//!  192.0.2.1       192.0.2.254  edge:popb0 ───── pop-b:eth0   198.51.100.0/24, 2001:db8:b::/48
//!  2001:db8:c::1   2001:db8:c::fe
//! ```
//!
//! The edge's kernel has IP forwarding off: only XDP can carry a packet from
//! the customer to a PoP.

use std::{
    io::{BufRead as _, BufReader},
    net::{IpAddr, SocketAddr, UdpSocket},
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::process::CommandExt as _,
    },
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use aya::programs::{Xdp, XdpMode};
use edge_common::prog_names;

use crate::netns::{Lab, in_netns, netns_command};

/// The embedded example config the lab runs edged with.
pub const LAB_CONFIG: &str = include_str!("../lab.toml");

pub const CUST_MAC: &str = "02:00:00:00:0c:01";
pub const EDGE_CUST_MAC: &str = "02:00:00:00:0c:fe";
pub const EDGE_POPA_MAC: &str = "02:00:00:00:0a:fe";
pub const POPA_MAC: &str = "02:00:00:00:0a:01";
pub const EDGE_POPB_MAC: &str = "02:00:00:00:0b:fe";
pub const POPB_MAC: &str = "02:00:00:00:0b:01";

/// Destinations served by each PoP (addresses assigned in the PoP namespaces).
pub const POPA_V4: &str = "203.0.113.10";
pub const POPA_V6: &str = "2001:db8:a::10";
pub const POPB_V4: &str = "198.51.100.10";
pub const POPB_V6: &str = "2001:db8:b::10";

pub struct EdgeLab {
    pub cust: String,
    pub edge: String,
    pub pop_a: String,
    pub pop_b: String,
    /// XDP_PASS programs on the PoP ends of the veths (a veth drops
    /// redirected frames unless its peer runs XDP). Detached on drop.
    _pass: Vec<aya::Ebpf>,
    /// Dropped last: deletes the namespaces.
    pub lab: Lab,
}

impl EdgeLab {
    pub fn build(tag: &str) -> Self {
        let mut lab = Lab::new(tag);
        let cust = lab.add_ns("cust");
        let edge = lab.add_ns("edge");
        let pop_a = lab.add_ns("popa");
        let pop_b = lab.add_ns("popb");

        lab.veth((&cust, "eth0", CUST_MAC), (&edge, "cust0", EDGE_CUST_MAC));
        lab.veth((&edge, "popa0", EDGE_POPA_MAC), (&pop_a, "eth0", POPA_MAC));
        lab.veth((&edge, "popb0", EDGE_POPB_MAC), (&pop_b, "eth0", POPB_MAC));

        // A veth hands locally sent packets on with the L4 checksum still to
        // be filled in (CHECKSUM_PARTIAL); XDP forwarding drops that
        // metadata, so the PoP would see bad checksums. Real NICs finish the
        // checksum on the wire; in the lab the customer computes it itself.
        lab.exec(&cust, "ethtool", &["--offload", "eth0", "tx", "off"]);
        lab.addr(&cust, "eth0", "192.0.2.1/24");
        lab.addr(&cust, "eth0", "2001:db8:c::1/64");
        lab.addr(&edge, "cust0", "192.0.2.254/24");
        lab.addr(&edge, "cust0", "2001:db8:c::fe/64");
        for prefix in [
            "203.0.113.0/24",
            "198.51.100.0/24",
            "2001:db8:a::/48",
            "2001:db8:b::/48",
        ] {
            let via = if prefix.contains(':') {
                "2001:db8:c::fe"
            } else {
                "192.0.2.254"
            };
            lab.ip(&cust, &["route", "add", prefix, "via", via]);
        }
        for (ns, v4, v6) in [(&pop_a, POPA_V4, POPA_V6), (&pop_b, POPB_V4, POPB_V6)] {
            lab.addr(ns, "eth0", &format!("{v4}/24"));
            lab.addr(ns, "eth0", &format!("{v6}/48"));
            // Routes back toward the customer, so the PoP's rp_filter accepts it.
            lab.ip(ns, &["route", "add", "192.0.2.0/24", "dev", "eth0"]);
            lab.ip(ns, &["route", "add", "2001:db8:c::/64", "dev", "eth0"]);
        }
        // Only XDP may forward: the edge kernel's forwarding stays off.
        lab.sysctl(&edge, "net.ipv4.ip_forward", "0");
        lab.sysctl(&edge, "net.ipv6.conf.all.forwarding", "0");

        let pass = [&pop_a, &pop_b].map(|ns| attach_pass(ns, "eth0")).into();
        Self {
            cust,
            edge,
            pop_a,
            pop_b,
            _pass: pass,
            lab,
        }
    }

    /// A pin path unique to this lab.
    pub fn pin_path(&self) -> PathBuf {
        PathBuf::from(format!("/sys/fs/bpf/{}", self.edge))
    }
}

/// Loads the object and attaches its XDP_PASS program to `ifname` in `ns`.
pub fn attach_pass(ns: &str, ifname: &str) -> aya::Ebpf {
    in_netns(ns, || {
        let mut ebpf = edge_userspace::loader::load().expect("load object");
        let prog: &mut Xdp = ebpf
            .program_mut(prog_names::PASS)
            .expect("pass program")
            .try_into()
            .unwrap();
        prog.load().expect("load pass program");
        prog.attach(ifname, XdpMode::Driver)
            .unwrap_or_else(|e| panic!("attach pass to {ns}/{ifname}: {e}"));
        ebpf
    })
}

/// Path of a binary built from this workspace (next to the running test or tool).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build it first (`cargo build --bins`; `cargo xtask test` does)",
        path.display()
    );
    path
}

/// An edged process in a namespace; stopped with SIGTERM on drop.
pub struct Edged {
    child: Child,
    pub pin_path: PathBuf,
}

impl Edged {
    /// Starts `edged -c config --pin-path pin` in `ns` and waits until it is ready.
    pub fn start(ns: &str, config: &Path, pin_path: &Path) -> Self {
        let mut child = netns_command(ns, &workspace_bin("edged"))
            .args(["--config"])
            .arg(config)
            .arg("--pin-path")
            .arg(pin_path)
            .stdout(Stdio::piped())
            // Its own process group: a Ctrl-C on the terminal reaches the
            // lab, which reads the counters and then stops edged itself.
            .process_group(0)
            .spawn()
            .expect("spawn edged");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("edged: ready") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = child.kill();
            panic!(
                "edged did not become ready within 20 s (status {:?})",
                child.try_wait()
            );
        }
        Self {
            child,
            pin_path: pin_path.to_path_buf(),
        }
    }

    /// Stops edged (SIGTERM) and waits for a clean exit.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.child.try_wait() {
                    assert!(
                        status.success() || std::thread::panicking(),
                        "edged exited with {status}"
                    );
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Edged {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A UDP socket bound in `ns`.
pub fn udp_socket(ns: &str, bind: SocketAddr) -> UdpSocket {
    in_netns(ns, || {
        UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind} in {ns}: {e}"))
    })
}

/// Sends `count` datagrams to each of `dests` from `ns` at about `rate` per
/// second per destination; each payload carries a sequence number. Stops
/// early when `stop` says so. Returns the number sent per destination.
pub fn send_stream(
    ns: &str,
    dests: &[SocketAddr],
    count: u32,
    rate: u32,
    stop: &dyn Fn() -> bool,
) -> Vec<u32> {
    let v4 = udp_socket(ns, "0.0.0.0:0".parse().unwrap());
    let v6 = udp_socket(ns, "[::]:0".parse().unwrap());
    let mut sent = vec![0; dests.len()];
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let start = Instant::now();
    for seq in 0..count {
        if stop() {
            break;
        }
        for (i, dest) in dests.iter().enumerate() {
            let sock = if dest.is_ipv4() { &v4 } else { &v6 };
            let mut payload = [0u8; 32];
            payload[..4].copy_from_slice(&seq.to_be_bytes());
            payload[4..].copy_from_slice(b"edge lab: sequence-numbered ");
            if sock.send_to(&payload, dest).is_ok() {
                sent[i] += 1;
            }
        }
        let next = start + interval * (seq + 1);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    sent
}

/// Counts datagrams on `sock` on a thread of its own (so the socket buffer
/// never overflows) until `done` is set and 300 ms pass with nothing new.
/// Returns the count and the highest sequence number seen per receiver.
pub fn spawn_counter(sock: UdpSocket, done: Arc<AtomicBool>) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 2048];
        let mut n = 0;
        loop {
            match sock.recv(&mut buf) {
                Ok(_) => n += 1,
                Err(_) if done.load(Ordering::Relaxed) => return n,
                Err(_) => {}
            }
        }
    })
}

/// A raw AF_PACKET capture of every frame arriving on one interface.
pub struct Capture {
    fd: OwnedFd,
}

impl Capture {
    pub fn open(ns: &str, ifname: &str) -> Self {
        let ifname = ifname.to_string();
        in_netns(ns, move || {
            let ifindex = edge_userspace::netdev::ifindex(&ifname).expect("ifindex");
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
                assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
                Self { fd }
            }
        })
    }

    /// The next incoming frame for which `pred` holds, within `timeout`.
    pub fn next_matching(
        &self,
        timeout: Duration,
        pred: impl Fn(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 4096];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let tv = libc::timeval {
                tv_sec: left.as_secs() as _,
                tv_usec: left.subsec_micros().max(1) as _,
            };
            // SAFETY: valid fd, buffer and option pointers.
            let n = unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&raw const tv).cast(),
                    std::mem::size_of::<libc::timeval>() as u32,
                );
                let mut from: libc::sockaddr_ll = std::mem::zeroed();
                let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                let n = libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&raw mut from).cast(),
                    &mut len,
                );
                if n > 0 && from.sll_pkttype == libc::PACKET_OUTGOING {
                    continue;
                }
                n
            };
            if n <= 0 {
                continue;
            }
            let frame = &buf[..n as usize];
            if pred(frame) {
                return Some(frame.to_vec());
            }
        }
    }
}

/// `dest:port` as a socket address.
pub fn sock(addr: &str, port: u16) -> SocketAddr {
    SocketAddr::new(addr.parse::<IpAddr>().expect("address"), port)
}
