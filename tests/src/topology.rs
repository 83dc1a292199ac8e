//! The standard edge lab: a customer, a rogue peer, the edge host (XDP
//! attached by edged), two backbone PoPs and a transit host, each in its own
//! network namespace.
//!
//! ```text
//!  cust:eth0  ── edge:peer0 (peering)   edge:bba0 (backbone) ── pop-a:eth0   tunnel endpoint 203.0.113.1, 2001:db8:ff::2
//!  rogue:eth0 ── edge:peer1 (peering)   edge:bbb0 (backbone) ── pop-b:eth0   backbone exit, 198.51.100.6, 2001:db8:ff:b::2
//!                                        edge:tr0  (transit)  ── transit:eth0 transit exit, 198.51.100.10, 2001:db8:ff:f::2
//! ```
//!
//! Registered (tests/lab.toml): contoso 192.0.2.0/25 + 2001:db8:c::/48
//! (microsoft, protected on peer0, reached directly on peer0), fabrikam
//! 192.0.2.128/25 + 2001:db8:d::/48 (internet, DSCP af41), northwind
//! 203.0.113.128/25 + 2001:db8:e::/48 (microsoft, nearest PoP pop-a through
//! an IP-in-IP tunnel). The edge's kernel has IP forwarding off: only XDP
//! can carry a packet between the hosts.

use std::{
    io::{BufRead as _, BufReader},
    net::{IpAddr, SocketAddr, UdpSocket},
    os::{
        fd::{AsRawFd as _, OwnedFd},
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
pub const EDGE_PEER0_MAC: &str = "02:00:00:00:0c:fe";
pub const ROGUE_MAC: &str = "02:00:00:00:0d:01";
pub const EDGE_PEER1_MAC: &str = "02:00:00:00:0d:fe";
pub const POPA_MAC: &str = "02:00:00:00:0a:01";
pub const EDGE_BBA_MAC: &str = "02:00:00:00:0a:fe";
pub const POPB_MAC: &str = "02:00:00:00:0b:01";
pub const EDGE_BBB_MAC: &str = "02:00:00:00:0b:fe";
pub const TRANSIT_MAC: &str = "02:00:00:00:0f:01";
pub const EDGE_TR_MAC: &str = "02:00:00:00:0f:fe";

pub const CONTOSO_V4: &str = "192.0.2.1";
pub const CONTOSO_V6: &str = "2001:db8:c::1";
pub const FABRIKAM_V4: &str = "192.0.2.129";
pub const FABRIKAM_V6: &str = "2001:db8:d::1";
pub const NORTHWIND_V4: &str = "203.0.113.200";
pub const NORTHWIND_V6: &str = "2001:db8:e::200";
pub const POPB_V4: &str = "198.51.100.6";
pub const POPB_V6: &str = "2001:db8:ff:b::2";
pub const TRANSIT_V4: &str = "198.51.100.10";
pub const TRANSIT_V6: &str = "2001:db8:ff:f::2";

pub struct EdgeLab {
    pub cust: String,
    pub rogue: String,
    pub edge: String,
    pub pop_a: String,
    pub pop_b: String,
    pub transit: String,
    /// XDP_PASS programs on the far ends of the edge's veths (a veth drops
    /// redirected frames unless its peer runs XDP). Detached on drop.
    _pass: Vec<aya::Ebpf>,
    /// Dropped last: deletes the namespaces.
    pub lab: Lab,
}

impl EdgeLab {
    pub fn build(tag: &str) -> Self {
        let mut lab = Lab::new(tag);
        let cust = lab.add_ns("cust");
        let rogue = lab.add_ns("rogue");
        let edge = lab.add_ns("edge");
        let pop_a = lab.add_ns("popa");
        let pop_b = lab.add_ns("popb");
        let transit = lab.add_ns("trans");
        let hosts = [
            (&cust, CUST_MAC, "peer0", EDGE_PEER0_MAC),
            (&rogue, ROGUE_MAC, "peer1", EDGE_PEER1_MAC),
            (&pop_a, POPA_MAC, "bba0", EDGE_BBA_MAC),
            (&pop_b, POPB_MAC, "bbb0", EDGE_BBB_MAC),
            (&transit, TRANSIT_MAC, "tr0", EDGE_TR_MAC),
        ];
        for (ns, mac, port, port_mac) in hosts {
            lab.veth((ns, "eth0", mac), (&edge, port, port_mac));
            // A veth hands locally sent packets on with the L4 checksum still
            // to be filled in (CHECKSUM_PARTIAL); XDP forwarding drops that
            // metadata, so receivers would see bad checksums. Real NICs
            // finish the checksum on the wire; in the lab senders compute it.
            lab.exec(ns, "ethtool", &["--offload", "eth0", "tx", "off"]);
        }
        let addrs: [(&str, &str, &[&str]); 10] = [
            (
                &cust,
                "eth0",
                &[
                    "192.0.2.1/25",
                    "192.0.2.129/25",
                    "2001:db8:c::1/64",
                    "2001:db8:d::1/64",
                ],
            ),
            (&edge, "peer0", &["192.0.2.126/25", "2001:db8:c::fe/64"]),
            (&rogue, "eth0", &["192.0.2.1/32"]),
            (&edge, "bba0", &["198.51.100.1/30", "2001:db8:ff:a::1/64"]),
            (&pop_a, "eth0", &["198.51.100.2/30", "2001:db8:ff:a::2/64"]),
            (&pop_a, "lo", &["203.0.113.1/32", "2001:db8:ff::2/128"]),
            (&edge, "bbb0", &["198.51.100.5/30", "2001:db8:ff:b::1/64"]),
            (&pop_b, "eth0", &["198.51.100.6/30", "2001:db8:ff:b::2/64"]),
            (&edge, "tr0", &["198.51.100.9/30", "2001:db8:ff:f::1/64"]),
            (
                &transit,
                "eth0",
                &["198.51.100.10/30", "2001:db8:ff:f::2/64"],
            ),
        ];
        for (ns, dev, list) in addrs {
            for a in list {
                lab.addr(ns, dev, a);
            }
        }
        lab.ip(&cust, &["route", "add", "default", "via", "192.0.2.126"]);
        lab.ip(
            &cust,
            &["-6", "route", "add", "default", "via", "2001:db8:c::fe"],
        );
        // The rogue peer spoofs contoso's address toward the edge's peer1.
        lab.ip(
            &rogue,
            &[
                "route",
                "add",
                "default",
                "via",
                "192.0.2.126",
                "dev",
                "eth0",
                "onlink",
            ],
        );
        lab.ip(
            &rogue,
            &[
                "neigh",
                "add",
                "192.0.2.126",
                "lladdr",
                EDGE_PEER1_MAC,
                "dev",
                "eth0",
                "nud",
                "permanent",
            ],
        );
        for (ns, via4, via6) in [
            (&pop_a, "198.51.100.1", "2001:db8:ff:a::1"),
            (&pop_b, "198.51.100.5", "2001:db8:ff:b::1"),
            (&transit, "198.51.100.9", "2001:db8:ff:f::1"),
        ] {
            lab.ip(ns, &["route", "add", "default", "via", via4]);
            lab.ip(ns, &["-6", "route", "add", "default", "via", via6]);
        }
        // Only XDP may forward: the edge kernel's forwarding stays off.
        lab.sysctl(&edge, "net.ipv4.ip_forward", "0");
        lab.sysctl(&edge, "net.ipv6.conf.all.forwarding", "0");

        let pass = [&cust, &rogue, &pop_a, &pop_b, &transit]
            .map(|ns| attach_pass(ns, "eth0"))
            .into();
        Self {
            cust,
            rogue,
            edge,
            pop_a,
            pop_b,
            transit,
            _pass: pass,
            lab,
        }
    }

    /// Creates the edge's port `port` (`bba0`, `bbb0` or `tr0`) and its far
    /// end again as [`EdgeLab::build`] made them, after `ip link del`
    /// (which deletes both ends): the veth pair with its MACs, addresses
    /// and the far end's default routes. The far end receives what XDP
    /// redirects with GRO on (the XDP_PASS program `build` attached went
    /// with the old interface).
    pub fn recreate_port(&self, port: &str) {
        let (ns, mac, port_mac, port_addrs, far_addrs) = match port {
            "bba0" => (
                &self.pop_a,
                POPA_MAC,
                EDGE_BBA_MAC,
                ["198.51.100.1/30", "2001:db8:ff:a::1/64"],
                ["198.51.100.2/30", "2001:db8:ff:a::2/64"],
            ),
            "bbb0" => (
                &self.pop_b,
                POPB_MAC,
                EDGE_BBB_MAC,
                ["198.51.100.5/30", "2001:db8:ff:b::1/64"],
                ["198.51.100.6/30", "2001:db8:ff:b::2/64"],
            ),
            "tr0" => (
                &self.transit,
                TRANSIT_MAC,
                EDGE_TR_MAC,
                ["198.51.100.9/30", "2001:db8:ff:f::1/64"],
                ["198.51.100.10/30", "2001:db8:ff:f::2/64"],
            ),
            other => panic!("recreate_port: {other} is not a backbone or transit port"),
        };
        self.lab
            .veth((ns, "eth0", mac), (&self.edge, port, port_mac));
        self.lab
            .exec(ns, "ethtool", &["--offload", "eth0", "tx", "off"]);
        self.lab.exec(ns, "ethtool", &["-K", "eth0", "gro", "on"]);
        for a in port_addrs {
            self.lab.addr(&self.edge, port, a);
        }
        for a in far_addrs {
            self.lab.addr(ns, "eth0", a);
        }
        let via: Vec<&str> = port_addrs
            .iter()
            .map(|a| a.split('/').next().unwrap())
            .collect();
        self.lab.ip(ns, &["route", "add", "default", "via", via[0]]);
        self.lab
            .ip(ns, &["-6", "route", "add", "default", "via", via[1]]);
    }

    /// A pin path unique to this lab.
    pub fn pin_path(&self) -> PathBuf {
        PathBuf::from(format!("/sys/fs/bpf/{}", self.edge))
    }

    /// Writes an `ip -batch` file adding `n` blackhole /56 routes in
    /// 2001:db8::/32 to table 200 (the table edged follows); returns its path.
    pub fn blackhole_batch(&self, n: u32) -> PathBuf {
        let batch = std::env::temp_dir().join(format!("{}.batch", self.edge));
        let mut text = String::with_capacity(n as usize * 48);
        for i in 0..n {
            text += &format!(
                "route add blackhole 2001:db8:{:x}:{:x}00::/56 table 200\n",
                0x100 + i / 256,
                i % 256
            );
        }
        std::fs::write(&batch, text).unwrap();
        batch
    }
}

/// Loads the object and attaches its XDP_PASS program to `ifname` in `ns`.
pub fn attach_pass(ns: &str, ifname: &str) -> aya::Ebpf {
    in_netns(ns, || {
        let mut ebpf = crate::harness::loader::load().expect("load object");
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

/// An edged in a namespace, with its own pin path, control socket and state
/// file. Dropping it tears the forwarder down (through edged if it runs,
/// else with `edged --detach`), so no pin, link or state outlives a test.
pub struct Edged {
    child: Option<Child>,
    ns: String,
    pub config: PathBuf,
    pub pin_path: PathBuf,
    pub socket: PathBuf,
    pub state: PathBuf,
}

/// What an edgectl run printed.
#[derive(Debug)]
pub struct CtlOutput {
    pub code: Option<i32>,
    pub json: serde_json::Value,
    pub stderr: String,
}

impl Edged {
    /// Starts edged in `ns` with `config`; socket and state files go in a
    /// directory named after the pin path. Waits until it is ready.
    pub fn start(ns: &str, config: &Path, pin_path: &Path) -> Self {
        let name = pin_path.file_name().expect("pin path name").to_owned();
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("edged test dir");
        let mut e = Self {
            child: None,
            ns: ns.to_string(),
            config: config.to_path_buf(),
            pin_path: pin_path.to_path_buf(),
            socket: dir.join("edged.sock"),
            state: dir.join("state.json"),
        };
        e.spawn();
        e
    }

    /// The command line of edged for this instance, plus `extra` flags.
    pub fn command(&self, extra: &[&str]) -> std::process::Command {
        let mut c = netns_command(&self.ns, &workspace_bin("edged"));
        c.args(self.args()).args(extra);
        c
    }

    /// This instance's config, pin path, socket and state file, as flags.
    fn args(&self) -> [&std::ffi::OsStr; 8] {
        [
            "--config".as_ref(),
            self.config.as_os_str(),
            "--pin-path".as_ref(),
            self.pin_path.as_os_str(),
            "--socket".as_ref(),
            self.socket.as_os_str(),
            "--state".as_ref(),
            self.state.as_os_str(),
        ]
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "edged already running");
        let mut child = self
            .command(&[])
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
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            panic!(
                "edged did not become ready within 30 s (status {:?})",
                child.try_wait()
            );
        }
        self.child = Some(child);
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("edged running").id() as i32
    }

    /// Starts edged again after [`Edged::stop`] or [`Edged::kill`].
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// SIGTERM: edged exits, the data plane keeps forwarding.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success() || std::thread::panicking(),
                    "edged exited with {status}"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("edged did not exit within 10 s of SIGTERM");
    }

    /// SIGKILL: no chance to clean anything up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGHUP (reload).
    pub fn hup(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGHUP,
        )
        .expect("SIGHUP");
    }

    /// Runs `edgectl --json --socket S ARGS...` and parses its output.
    pub fn ctl(&self, args: &[&str]) -> CtlOutput {
        let out = std::process::Command::new(workspace_bin("edgectl"))
            .arg("--json")
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run edgectl");
        let stdout = String::from_utf8_lossy(&out.stdout);
        CtlOutput {
            code: out.status.code(),
            // Usage errors (clap) print text, not JSON.
            json: serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `edgectl ARGS` must succeed; its reply's data.
    /// Runs edgectl without `--json`; its standard output (exit code 0).
    pub fn ctl_text(&self, args: &[&str]) -> String {
        let out = std::process::Command::new(workspace_bin("edgectl"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run edgectl");
        assert!(out.status.success(), "edgectl {args:?}: {out:?}");
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    pub fn ctl_ok(&self, args: &[&str]) -> serde_json::Value {
        let o = self.ctl(args);
        assert_eq!(o.code, Some(0), "edgectl {args:?}: {o:?}");
        if o.json.get("ok").is_some() && o.json.get("data").is_some() {
            o.json["data"].clone()
        } else {
            o.json
        }
    }

    /// Removes the forwarder (edgectl teardown, or edged --detach when
    /// edged is not running) and waits for edged to exit.
    pub fn teardown(&mut self) {
        if let Some(mut child) = self.child.take() {
            let o = self.ctl(&["teardown"]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            if o.code == Some(0) {
                return;
            }
        }
        let _ = self.command(&["--detach"]).output();
    }
}

impl Drop for Edged {
    fn drop(&mut self) {
        self.teardown();
        if let Some(dir) = self.socket.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// What an edged logged (its stderr), line by line as it runs; every line
/// is also copied to the test's stderr.
#[derive(Clone, Default)]
pub struct EdgedLog(Arc<std::sync::Mutex<Vec<String>>>);

impl EdgedLog {
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("log lock").clone()
    }

    /// The lines containing `needle`.
    pub fn matching(&self, needle: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect()
    }

    /// The first line containing `needle`, waiting up to `timeout` for it.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.matching(needle).into_iter().next() {
                return Some(l);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl std::fmt::Debug for EdgedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\n{}", self.lines().join("\n"))
    }
}

impl Edged {
    /// [`Edged::start`] with `extra` flags, collecting edged's log.
    pub fn start_logged(
        ns: &str,
        config: &Path,
        pin_path: &Path,
        extra: &[&str],
    ) -> (Self, EdgedLog) {
        let mut e = Self::unstarted(ns, config, pin_path);
        let log = e
            .spawn_logged(e.command(extra))
            .unwrap_or_else(|(status, log)| panic!("edged exited ({status:?}): {log:?}"));
        (e, log)
    }

    /// An instance with its paths set (as [`Edged::start`] sets them) and
    /// no edged running yet: start it with [`Edged::spawn_logged`].
    pub fn unstarted(ns: &str, config: &Path, pin_path: &Path) -> Self {
        let name = pin_path.file_name().expect("pin path name").to_owned();
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("edged test dir");
        Self {
            child: None,
            ns: ns.to_string(),
            config: config.to_path_buf(),
            pin_path: pin_path.to_path_buf(),
            socket: dir.join("edged.sock"),
            state: dir.join("state.json"),
        }
    }

    /// [`Edged::restart`] with `extra` flags, collecting edged's log.
    pub fn restart_logged(&mut self, extra: &[&str]) -> EdgedLog {
        self.spawn_logged(self.command(extra))
            .unwrap_or_else(|(status, log)| panic!("edged exited ({status:?}): {log:?}"))
    }

    /// The edged command line of [`Edged::command`] run the way `ip netns
    /// exec NS` runs it: in a mount namespace of its own, with a fresh
    /// `/sys` (so no bpffs on `/sys/fs/bpf`).
    pub fn ip_netns_exec_command(&self, extra: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", &self.ns])
            .arg(workspace_bin("edged"))
            .args(self.args())
            .args(extra);
        c
    }

    /// Runs `command` (an edged command line) as this instance's edged and
    /// waits up to 30 s until it is ready; its log is collected. When edged
    /// exits first: its exit status and log.
    pub fn spawn_logged(
        &mut self,
        mut command: std::process::Command,
    ) -> Result<EdgedLog, (Option<std::process::ExitStatus>, EdgedLog)> {
        assert!(self.child.is_none(), "edged already running");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn edged");
        let log = EdgedLog::default();
        let stderr = child.stderr.take().expect("stderr");
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("edged: {line}");
                lines.0.lock().expect("log lock").push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("edged: ready") {
                    let _ = tx.send(());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(()) => {
                self.child = Some(child);
                Ok(log)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().ok();
                // Let the log reader catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                Err((status, log))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("edged did not become ready within 30 s: {log:?}");
            }
        }
    }
}

/// A UDP socket bound in `ns`.
pub fn udp_socket(ns: &str, bind: SocketAddr) -> UdpSocket {
    in_netns(ns, || {
        UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind} in {ns}: {e}"))
    })
}

/// One sequence-numbered UDP stream: from `ns`, bound to `from`, to `to`.
#[derive(Clone, Debug)]
pub struct Stream {
    pub ns: String,
    pub from: SocketAddr,
    pub to: SocketAddr,
}

/// Sends `count` datagrams on each stream at about `rate` per second per
/// stream; each payload starts with its sequence number. Stops early when
/// `stop` says so. Returns the number sent per stream.
pub fn send_streams(
    streams: &[Stream],
    count: u32,
    rate: u32,
    stop: &dyn Fn() -> bool,
) -> Vec<u32> {
    let socks: Vec<UdpSocket> = streams.iter().map(|s| udp_socket(&s.ns, s.from)).collect();
    let mut sent = vec![0; streams.len()];
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let start = Instant::now();
    for seq in 0..count {
        if stop() {
            break;
        }
        for (i, (sock, s)) in socks.iter().zip(streams).enumerate() {
            let mut payload = [0u8; 32];
            payload[..4].copy_from_slice(&seq.to_be_bytes());
            payload[4..].copy_from_slice(b"edge lab: sequence-numbered ");
            if sock.send_to(&payload, s.to).is_ok() {
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

/// A stream of the lab's main job, with what it shows and where it lands.
pub struct LabStream {
    pub what: &'static str,
    pub stream: Stream,
    /// Namespace of the receiver.
    pub at: String,
}

/// The streams `cargo xtask run` sends (and the stream test checks).
pub fn lab_streams(lab: &EdgeLab) -> Vec<LabStream> {
    let s = |what, ns: &String, from: &str, to: &str, port: u16, at: &String| LabStream {
        what,
        stream: Stream {
            ns: ns.clone(),
            from: sock(from, 0),
            to: sock(to, port),
        },
        at: at.clone(),
    };
    vec![
        s(
            "contoso → backbone (microsoft)",
            &lab.cust,
            CONTOSO_V4,
            POPB_V4,
            5000,
            &lab.pop_b,
        ),
        s(
            "contoso → backbone (microsoft)",
            &lab.cust,
            CONTOSO_V6,
            POPB_V6,
            5000,
            &lab.pop_b,
        ),
        s(
            "fabrikam → transit (internet)",
            &lab.cust,
            FABRIKAM_V4,
            TRANSIT_V4,
            5000,
            &lab.transit,
        ),
        s(
            "fabrikam → transit (internet)",
            &lab.cust,
            FABRIKAM_V6,
            TRANSIT_V6,
            5000,
            &lab.transit,
        ),
        s(
            "backbone → contoso (policy)",
            &lab.pop_b,
            POPB_V4,
            CONTOSO_V4,
            5001,
            &lab.cust,
        ),
        s(
            "backbone → contoso (policy)",
            &lab.pop_b,
            POPB_V6,
            CONTOSO_V6,
            5001,
            &lab.cust,
        ),
    ]
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
        Self {
            fd: crate::delayline::bound_packet_socket(ns, ifname),
        }
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
            crate::delayline::set_recv_timeout(&self.fd, left);
            // SAFETY: valid fd and buffer pointers.
            let n = unsafe {
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

/// What a receiver of one sequence-numbered stream saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub sent: u32,
    pub received: u32,
    /// Sent but never received.
    pub lost: u32,
    pub duplicated: u32,
    /// Arrived after a higher sequence number.
    pub reordered: u32,
    /// The first few lost sequence numbers.
    pub first_lost: Vec<u32>,
}

impl Tally {
    /// Tallies the sequence numbers `seen` (in arrival order) of `sent` datagrams.
    pub fn of(sent: u32, seen: &[u32]) -> Self {
        let mut count = vec![0u32; sent as usize];
        let mut t = Tally {
            sent,
            received: seen.len() as u32,
            ..Tally::default()
        };
        let mut highest = None;
        for &s in seen {
            if let Some(c) = count.get_mut(s as usize) {
                *c += 1;
                if *c > 1 {
                    t.duplicated += 1;
                }
            }
            if highest.is_some_and(|h| s < h) {
                t.reordered += 1;
            }
            highest = highest.max(Some(s));
        }
        for (s, &c) in count.iter().enumerate() {
            if c == 0 {
                t.lost += 1;
                if t.first_lost.len() < 10 {
                    t.first_lost.push(s as u32);
                }
            }
        }
        t
    }
}

/// Receives datagrams on `sock` until `done` and a quiet 300 ms; returns the
/// sequence numbers (first 4 payload bytes) in arrival order.
pub fn spawn_sequence_receiver(
    sock: UdpSocket,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<u32>> {
    std::thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 2048];
        let mut seen = Vec::new();
        loop {
            match sock.recv(&mut buf) {
                Ok(n) if n >= 4 => seen.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]])),
                Ok(_) => {}
                Err(_) if done.load(Ordering::Relaxed) => return seen,
                Err(_) => {}
            }
        }
    })
}

/// The id of the XDP program attached to `ifname` in `ns`, from `ip link`.
pub fn xdp_prog_id(lab: &Lab, ns: &str, ifname: &str) -> Option<u32> {
    let out = lab.ip(ns, &["-d", "link", "show", "dev", ifname]);
    let at = out.find("prog/xdp id ")?;
    out[at + 12..]
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
}

/// `GET path` from `addr` inside `ns`, over HTTP/1.0; the body.
pub fn http_get(ns: &str, addr: SocketAddr, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let path = path.to_string();
    in_netns(ns, move || {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
        assert!(
            head.starts_with("HTTP/1.") && head.contains(" 200 "),
            "{head}"
        );
        body.to_string()
    })
}

/// Lints an exposition in the classic text format with `promtool check
/// metrics` (Debian package prometheus); panics with its findings.
pub fn promtool_check(exposition: &str) {
    use std::io::Write as _;
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (xtask setup installs the Debian package prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the sample `name{labels}` in a Prometheus exposition.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The forwarder pinned under a pin path as seen from outside edged: every
/// pin (a map with its id, a link with its id and program), the XDP program
/// on each port, the table maps' contents and the state file's bytes. Two
/// equal snapshots: nothing was changed in between.
#[derive(PartialEq)]
pub struct DataplaneSnapshot {
    /// Pin name → `map ID` or `link ID program ID`.
    pub pins: std::collections::BTreeMap<String, String>,
    /// Port → the id of the XDP program attached to it.
    pub xdp: std::collections::BTreeMap<String, Option<u32>>,
    /// The table maps, read back (`None`: they could not be opened).
    pub tables: Option<crate::harness::desired::Desired>,
    /// The state file (`None`: there is none).
    pub state: Option<Vec<u8>>,
}

impl std::fmt::Debug for DataplaneSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataplaneSnapshot")
            .field("pins", &self.pins)
            .field("xdp", &self.xdp)
            .field(
                "tables",
                &self
                    .tables
                    .as_ref()
                    .map(|t| format!("{} prefixes, {} ports", t.prefixes.len(), t.ports.len())),
            )
            .field(
                "state",
                &self
                    .state
                    .as_ref()
                    .map(|s| String::from_utf8_lossy(s).into_owned()),
            )
            .finish()
    }
}

/// Takes a [`DataplaneSnapshot`] of the forwarder pinned under `pin_path`
/// with its ports `ports` in `ns` and its state file `state`.
pub fn dataplane_snapshot(
    lab: &Lab,
    ns: &str,
    pin_path: &Path,
    state: &Path,
    ports: &[&str],
) -> DataplaneSnapshot {
    use aya::{
        maps::MapInfo,
        programs::links::{FdLink, PinnedLink},
    };
    let mut pins = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(pin_path).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Links are pinned as link_PORT or peer_PORT (a staged one with
        // next_ before that); everything else is a map.
        let link = ["link_", "peer_", "next_link_", "next_peer_"]
            .iter()
            .any(|p| name.starts_with(p));
        let what = if link {
            match PinnedLink::from_pin(e.path()).map(|l| FdLink::from(l).info()) {
                Ok(Ok(i)) => format!("link {} program {}", i.id(), i.program_id()),
                Ok(Err(e)) | Err(e) => format!("unreadable link: {e}"),
            }
        } else {
            match MapInfo::from_pin(e.path()) {
                Ok(m) => format!("map {}", m.id()),
                Err(e) => format!("unreadable map: {e}"),
            }
        };
        pins.insert(name, what);
    }
    DataplaneSnapshot {
        pins,
        xdp: ports
            .iter()
            .map(|p| (p.to_string(), xdp_prog_id(lab, ns, p)))
            .collect(),
        tables: crate::harness::maps::Tables::open(pin_path)
            .ok()
            .and_then(|t| crate::harness::desired::dump(&t).ok()),
        state: std::fs::read(state).ok(),
    }
}

/// The lab's six streams (`lab_streams`), `count` datagrams each at 1000/s:
/// panics unless every one arrives, once.
pub fn assert_lab_streams_arrive(lab: &EdgeLab, count: u32) {
    let streams = lab_streams(lab);
    let done = Arc::new(AtomicBool::new(false));
    let receivers: Vec<_> = streams
        .iter()
        .map(|l| spawn_sequence_receiver(udp_socket(&l.at, l.stream.to), done.clone()))
        .collect();
    let list: Vec<Stream> = streams.iter().map(|l| l.stream.clone()).collect();
    let sent = send_streams(&list, count, 1000, &|| false);
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    for ((l, &n), h) in streams.iter().zip(&sent).zip(receivers) {
        let t = Tally::of(n, &h.join().unwrap());
        assert_eq!(
            (t.sent, t.lost, t.duplicated),
            (count, 0, 0),
            "{}: {t:?}",
            l.what
        );
    }
}

/// A small tmpfs mounted (in the test's mount namespace, which edged
/// shares) on a directory of its own: a state directory that can be filled
/// up or made read-only. Unmounted and removed on drop, also when a test
/// panics.
pub struct TinyFs {
    pub dir: PathBuf,
}

impl TinyFs {
    /// Mounts a tmpfs of `size` (`16k`) on a new directory named after `tag`.
    pub fn mount(tag: &str, size: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{tag}-tinyfs"));
        std::fs::create_dir_all(&dir).expect("tinyfs dir");
        crate::netns::sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
                dir.to_str().unwrap(),
            ],
        );
        Self { dir }
    }

    /// Fills it up: a file grows until the filesystem says it is full.
    pub fn fill(&self) {
        use std::io::Write as _;
        let mut f = std::fs::File::create(self.dir.join("filler")).expect("filler");
        let block = [0xeeu8; 1024];
        for _ in 0..100_000 {
            if f.write_all(&block).and_then(|()| f.sync_all()).is_err() {
                return;
            }
        }
        panic!("{} never filled up", self.dir.display());
    }

    /// Room again.
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.dir.join("filler"));
    }

    /// Remounts it read-only (`true`) or read-write.
    pub fn read_only(&self, ro: bool) {
        let how = if ro { "remount,ro" } else { "remount,rw" };
        crate::netns::sh("mount", &["-o", how, self.dir.to_str().unwrap()]);
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}
