//! Network-namespace labs: namespaces and veth pairs with unique names,
//! torn down by a guard on drop (also when a test panics), so tests can run
//! in parallel and leave nothing behind.
//!
//! Everything is created inside the lab's namespaces (veth ends are created
//! directly in their namespace), so deleting the namespaces removes it all
//! and nothing ever appears in the host namespace.

use std::{
    fs::File,
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use nix::sched::{CloneFlags, setns};

/// Panics with a clear message unless running as root: the lab needs
/// CAP_NET_ADMIN and CAP_BPF, and a test that cannot run must fail, not skip.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "this test needs root (network namespaces, XDP, BPF_PROG_TEST_RUN): run `cargo xtask test` as root"
        );
    }
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if !out.status.success() {
        panic!(
            "`{program} {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A set of namespaces that belong together and are deleted together.
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
}

impl Lab {
    /// A new, empty lab. `tag` (a few letters) shows up in namespace names.
    pub fn new(tag: &str) -> Self {
        require_root();
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        Self {
            prefix: format!("edge-{tag}-{}-{seq}", std::process::id()),
            namespaces: Vec::new(),
        }
    }

    /// Creates namespace `name` (loopback up) and returns its full name.
    pub fn add_ns(&mut self, name: &str) -> String {
        let full = format!("{}-{name}", self.prefix);
        sh("ip", &["netns", "add", &full]);
        self.namespaces.push(full.clone());
        self.ip(&full, &["link", "set", "lo", "up"]);
        full
    }

    /// Full name of a namespace of this lab.
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// `ip -n NS ARGS...`
    pub fn ip(&self, ns: &str, args: &[&str]) -> String {
        let mut all = vec!["-n", ns];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    /// A veth pair `a_if` in `a_ns` ↔ `b_if` in `b_ns`, both up, with the given MACs.
    pub fn veth(
        &self,
        (a_ns, a_if, a_mac): (&str, &str, &str),
        (b_ns, b_if, b_mac): (&str, &str, &str),
    ) {
        self.ip(
            a_ns,
            &[
                "link", "add", "name", a_if, "address", a_mac, "type", "veth", "peer", "name",
                b_if, "address", b_mac, "netns", b_ns,
            ],
        );
        self.ip(a_ns, &["link", "set", a_if, "up"]);
        self.ip(b_ns, &["link", "set", b_if, "up"]);
    }

    /// Adds an address (IPv6 addresses skip duplicate address detection).
    pub fn addr(&self, ns: &str, ifname: &str, cidr: &str) {
        if cidr.contains(':') {
            self.ip(ns, &["addr", "add", cidr, "dev", ifname, "nodad"]);
        } else {
            self.ip(ns, &["addr", "add", cidr, "dev", ifname]);
        }
    }

    /// Runs `program args...` inside `ns` (network namespace only).
    pub fn exec(&self, ns: &str, program: &str, args: &[&str]) -> String {
        let net = format!("--net=/run/netns/{ns}");
        let mut all = vec![net.as_str(), program];
        all.extend_from_slice(args);
        sh("nsenter", &all)
    }

    /// Sets a sysctl inside `ns`.
    pub fn sysctl(&self, ns: &str, key: &str, value: &str) {
        in_netns(ns, || {
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            std::fs::write(&path, value).unwrap_or_else(|e| panic!("writing {path}: {e}"));
        });
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
    }
}

/// Runs `f` on a thread that has entered network namespace `ns` (and only
/// the network namespace: /sys/fs/bpf stays the host's bpffs). Sockets and
/// links created by `f` belong to `ns`.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let fd = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
            setns(fd, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// A command line that runs `program` inside `ns` (network namespace only).
pub fn netns_command(ns: &str, program: &std::path::Path) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{ns}")).arg(program);
    cmd
}
