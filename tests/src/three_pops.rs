//! A three-PoP lab for failover and routing-method tests: the edge host
//! with three backbone PoPs and a transit host, each in its own network
//! namespace.
//!
//! ```text
//!  edge:bb1 (backbone) ── pop1:eth0   198.51.100.2,  2001:db8:ff:1::2
//!  edge:bb2 (backbone) ── pop2:eth0   198.51.100.6,  2001:db8:ff:2::2
//!  edge:bb3 (backbone) ── pop3:eth0   198.51.100.10, 2001:db8:ff:3::2
//!  edge:tr0 (transit)  ── transit:eth0 198.51.100.14, 2001:db8:ff:f::2
//!  edge:peer0 (peering) ── cust:eth0  198.51.100.18 (sends as 203.0.113.20, 192.0.2.20)
//! ```
//!
//! The customer (203.0.113.0/24, 2001:db8:c::/48, microsoft preference) sits
//! behind every PoP: each PoP namespace holds [`CUSTOMER_V4`] and
//! [`CUSTOMER_V6`] on its loopback, so a stream from the transit host to the
//! customer lands in the PoP the policy picks, where a counter can see it.
//! Every PoP can run a UDP echo service with an adjustable delay
//! ([`UdpEcho`]) for UDP probes, and can be stopped and started
//! ([`ThreePopLab::stop_pop`]). The edge's kernel has IP forwarding off:
//! only XDP carries the streams.
//!
//! For the exits ([`ThreePopLab::exit_config`]), a customer host on a
//! peering port sends from its registered addresses toward
//! [`INTERNET_V4`], which every PoP and the transit host hold on their
//! loopback: the exit that carries a stream is where it arrives.

use std::{
    net::UdpSocket,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::{
    netns::{Lab, in_netns},
    topology::attach_pass,
};

pub const CUSTOMER_V4: &str = "203.0.113.10";
pub const CUSTOMER_V6: &str = "2001:db8:c::10";
pub const TRANSIT_V4: &str = "198.51.100.14";
pub const TRANSIT_V6: &str = "2001:db8:ff:f::2";
/// The customer host's source addresses: microsoft preference (the
/// backbone exit) and internet preference (the transit exit).
pub const CUST_MICROSOFT_V4: &str = "203.0.113.20";
pub const CUST_INTERNET_V4: &str = "192.0.2.20";
/// A destination beyond the edge, on every PoP's and the transit host's
/// loopback.
pub const INTERNET_V4: &str = "198.18.0.10";

/// PoP `i` (0-2): (IPv4, IPv6, MAC) of its `eth0`.
pub fn pop_addrs(i: usize) -> (String, String, String) {
    (
        format!("198.51.100.{}", 4 * i + 2),
        format!("2001:db8:ff:{}::2", i + 1),
        format!("02:00:00:00:3{}:01", i + 1),
    )
}

pub struct ThreePopLab {
    pub edge: String,
    pub pops: [String; 3],
    pub transit: String,
    /// The customer host behind the peering port `peer0`.
    pub cust: String,
    _pass: Vec<aya::Ebpf>,
    /// Dropped last: deletes the namespaces.
    pub lab: Lab,
}

impl ThreePopLab {
    pub fn build(tag: &str) -> Self {
        let mut lab = Lab::new(tag);
        let edge = lab.add_ns("edge");
        let pops = ["pop1", "pop2", "pop3"].map(|n| lab.add_ns(n));
        let transit = lab.add_ns("trans");
        let cust = lab.add_ns("cust");
        for (i, pop) in pops.iter().enumerate() {
            let (v4, v6, mac) = pop_addrs(i);
            let port = format!("bb{}", i + 1);
            lab.veth(
                (pop, "eth0", &mac),
                (&edge, &port, &format!("02:00:00:00:3{}:fe", i + 1)),
            );
            lab.addr(&edge, &port, &format!("198.51.100.{}/30", 4 * i + 1));
            lab.addr(&edge, &port, &format!("2001:db8:ff:{}::1/64", i + 1));
            lab.addr(pop, "eth0", &format!("{v4}/30"));
            lab.addr(pop, "eth0", &format!("{v6}/64"));
            lab.addr(pop, "lo", &format!("{CUSTOMER_V4}/32"));
            lab.addr(pop, "lo", &format!("{CUSTOMER_V6}/128"));
            lab.addr(pop, "lo", &format!("{INTERNET_V4}/32"));
            lab.ip(
                pop,
                &[
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("198.51.100.{}", 4 * i + 1),
                ],
            );
            lab.ip(
                pop,
                &[
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("2001:db8:ff:{}::1", i + 1),
                ],
            );
        }
        lab.veth(
            (&transit, "eth0", "02:00:00:00:3f:01"),
            (&edge, "tr0", "02:00:00:00:3f:fe"),
        );
        lab.addr(&edge, "tr0", "198.51.100.13/30");
        lab.addr(&edge, "tr0", "2001:db8:ff:f::1/64");
        lab.addr(&transit, "eth0", &format!("{TRANSIT_V4}/30"));
        lab.addr(&transit, "eth0", &format!("{TRANSIT_V6}/64"));
        lab.addr(&transit, "lo", &format!("{INTERNET_V4}/32"));
        lab.veth(
            (&cust, "eth0", "02:00:00:00:3e:01"),
            (&edge, "peer0", "02:00:00:00:3e:fe"),
        );
        lab.addr(&edge, "peer0", "198.51.100.17/30");
        lab.addr(&cust, "eth0", "198.51.100.18/30");
        lab.addr(&cust, "lo", &format!("{CUST_MICROSOFT_V4}/32"));
        lab.addr(&cust, "lo", &format!("{CUST_INTERNET_V4}/32"));
        lab.ip(&cust, &["route", "add", "default", "via", "198.51.100.17"]);
        lab.exec(&cust, "ethtool", &["--offload", "eth0", "tx", "off"]);
        lab.ip(
            &transit,
            &["route", "add", "default", "via", "198.51.100.13"],
        );
        lab.ip(
            &transit,
            &["-6", "route", "add", "default", "via", "2001:db8:ff:f::1"],
        );
        // XDP forwarding drops CHECKSUM_PARTIAL metadata: senders compute
        // their checksums (see topology.rs).
        lab.exec(&transit, "ethtool", &["--offload", "eth0", "tx", "off"]);
        lab.sysctl(&edge, "net.ipv4.ip_forward", "0");
        lab.sysctl(&edge, "net.ipv6.conf.all.forwarding", "0");
        let pass = pops
            .iter()
            .chain([&transit, &cust])
            .map(|ns| attach_pass(ns, "eth0"))
            .collect();
        Self {
            edge,
            pops,
            transit,
            cust,
            _pass: pass,
            lab,
        }
    }

    /// An edged config for this lab: ports, the three PoPs and transit, one
    /// policy `customer` with `method` over pop1..pop3 (priority 1, 2, 3),
    /// and the customer's prefixes. `probe`, if given, is the inline probe
    /// table of every PoP with `ADDR` standing for the PoP's IPv4 address,
    /// e.g. `{ type = "udp", address = "ADDR", port = 7, interval_ms = 100 }`.
    pub fn config(&self, method: &str, probe: Option<&str>) -> String {
        let mut c = String::from(
            "[forwarding]\ntransit_exit = \"transit\"\n\n\
             [[ports]]\ninterface = \"bb1\"\nrole = \"backbone\"\n\n\
             [[ports]]\ninterface = \"bb2\"\nrole = \"backbone\"\n\n\
             [[ports]]\ninterface = \"bb3\"\nrole = \"backbone\"\n\n\
             [[ports]]\ninterface = \"tr0\"\nrole = \"transit\"\n",
        );
        for i in 0..3 {
            let (v4, _, mac) = pop_addrs(i);
            c.push_str(&format!(
                "\n[[pops]]\nname = \"pop{n}\"\ninterface = \"bb{n}\"\nmac = \"{mac}\"\n",
                n = i + 1
            ));
            if let Some(p) = probe {
                c.push_str(&format!("probe = {}\n", p.replace("ADDR", &v4)));
            }
        }
        c.push_str(&format!(
            "\n[[pops]]\nname = \"transit\"\ninterface = \"tr0\"\nmac = \"02:00:00:00:3f:01\"\n\n\
             [[policies]]\nname = \"customer\"\nmethod = \"{method}\"\n\
             members = [{{ pop = \"pop1\" }}, {{ pop = \"pop2\" }}, {{ pop = \"pop3\" }}]\n\n\
             [[prefixes]]\nprefix = \"203.0.113.0/24\"\nregistration = \"customer\"\npolicy = \"customer\"\n\n\
             [[prefixes]]\nprefix = \"2001:db8:c::/48\"\nregistration = \"customer\"\npolicy = \"customer\"\n"
        ));
        c
    }

    /// An edged config for the exits: [`Self::config`] with the peering
    /// port `peer0`, the customer's internet-preference prefix
    /// 192.0.2.0/24, the backbone exit `pop1` (a PoP: its default fallback
    /// is the transit exit) and the transit exit `transits`, a priority
    /// policy over `transit` then `pop3`. Every PoP, transit included,
    /// gets `probe` (with `ADDR` its IPv4 address).
    pub fn exit_config(&self, probe: &str) -> String {
        let c = self.config("priority", Some(probe));
        let c = c.replacen(
            "[forwarding]\ntransit_exit = \"transit\"\n",
            "[forwarding]\nbackbone_exit = \"pop1\"\ntransit_exit = \"transits\"\n\n\
             [[ports]]\ninterface = \"peer0\"\nrole = \"peering\"\n",
            1,
        );
        let c = c.replacen(
            "mac = \"02:00:00:00:3f:01\"\n",
            &format!(
                "mac = \"02:00:00:00:3f:01\"\nprobe = {}\n",
                probe.replace("ADDR", TRANSIT_V4)
            ),
            1,
        );
        c + "\n[[policies]]\nname = \"transits\"\nmethod = \"priority\"\n\
             members = [{ pop = \"transit\" }, { pop = \"pop3\" }]\n\n\
             [[prefixes]]\nprefix = \"192.0.2.0/24\"\nregistration = \"web\"\npreference = \"internet\"\n"
    }

    /// Takes the transit host off the wire.
    pub fn stop_transit(&self) {
        self.lab.ip(&self.transit, &["link", "set", "eth0", "down"]);
    }

    /// Puts the transit host back on the wire.
    pub fn start_transit(&self) {
        self.lab.ip(&self.transit, &["link", "set", "eth0", "up"]);
    }

    /// A UDP socket on [`INTERNET_V4`] in namespace `ns`: where a customer
    /// stream arrives when that host's exit carries it.
    pub fn internet_socket(&self, ns: &str, port: u16) -> UdpSocket {
        in_netns(ns, || {
            UdpSocket::bind(format!("{INTERNET_V4}:{port}")).unwrap()
        })
    }

    /// Takes PoP `i` off the wire (its link down: probes and traffic fail).
    pub fn stop_pop(&self, i: usize) {
        self.lab.ip(&self.pops[i], &["link", "set", "eth0", "down"]);
    }

    /// Puts PoP `i` back on the wire.
    pub fn start_pop(&self, i: usize) {
        self.lab.ip(&self.pops[i], &["link", "set", "eth0", "up"]);
    }

    /// A UDP socket in PoP `i` on the customer's address (IPv4 or IPv6):
    /// what a stream to the customer through that PoP arrives on.
    pub fn customer_socket(&self, i: usize, v6: bool, port: u16) -> UdpSocket {
        let addr = if v6 {
            format!("[{CUSTOMER_V6}]:{port}")
        } else {
            format!("{CUSTOMER_V4}:{port}")
        };
        in_netns(&self.pops[i], || UdpSocket::bind(&addr).unwrap())
    }
}

/// A UDP echo service in a namespace, answering each datagram after an
/// adjustable delay (a PoP that gets slower); stopped on drop.
pub struct UdpEcho {
    delay_us: Arc<AtomicU64>,
    silent: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpEcho {
    /// Serves on `bind` (e.g. `198.51.100.2:7`) in `ns`.
    pub fn start(ns: &str, bind: &str) -> Self {
        let sock = in_netns(ns, || {
            UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind} in {ns}: {e}"))
        });
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let delay_us = Arc::new(AtomicU64::new(0));
        let silent = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, q, s) = (delay_us.clone(), silent.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    if q.load(Ordering::Relaxed) {
                        continue;
                    }
                    std::thread::sleep(Duration::from_micros(d.load(Ordering::Relaxed)));
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
        });
        Self {
            delay_us,
            silent,
            stop,
            thread: Some(thread),
        }
    }

    /// Every answer from now on waits `delay` (added RTT).
    pub fn set_delay(&self, delay: Duration) {
        self.delay_us
            .store(delay.as_micros() as u64, Ordering::Relaxed);
    }
}

impl UdpEcho {
    /// While silent, requests get no answer (the PoP's probe replies are
    /// dropped; its link stays up).
    pub fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::Relaxed);
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
