//! Route analytics ingest: a synthetic BMP sender feeds a running edged
//! N announcements (one prefix per Route Monitoring message, the worst
//! case per message; one in 1,000 inside the registered prefix, the rest
//! outside any registration, as a full table is), as fast as edged takes
//! them. Measured: messages per second from the first byte to edged having
//! applied the last message, edged's RSS before and after (and its peak),
//! and the slowest `edgectl status` answer while the ingest runs (the
//! control socket must not stall).

use std::{
    fmt::Write as _,
    io::{BufRead as _, BufReader, Write as _},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use edge_tests::netns::{in_netns, netns_command};
use edge_userspace::analytics::synth::{self, SynthPeer};
use ipnet::IpNet;

use crate::{CONFIG, bench_lab};

const PORT: u16 = 11019;

/// One ingest run.
pub struct BmpRun {
    pub announcements: usize,
    /// Every announcement inside a registered prefix (each a path kept),
    /// or one in 1,000 (a full table's shape).
    pub all_monitored: bool,
    pub bytes: usize,
    pub secs: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub hwm_kib: u64,
    pub paths: u64,
    /// The slowest `edgectl status` during the ingest, and how many ran.
    pub status_max: Duration,
    pub status_count: usize,
}

fn kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The announcements: one in 1,000 a more-specific of the registered
/// 198.51.100.0/24 (from its allowed origin), the rest distinct /24s
/// outside it; or (`all_monitored`) every one a distinct /32 inside the
/// registered 10.0.0.0/8, each a path edged keeps.
fn messages(n: usize, all_monitored: bool) -> Vec<u8> {
    let peer = SynthPeer {
        address: "203.0.113.1".parse().unwrap(),
        asn: 64496,
        post_policy: false,
    };
    let mut out = synth::initiation("edge-bench");
    for i in 0..n {
        let (net, path): (IpNet, [u32; 3]) = if all_monitored {
            (
                format!("10.{}.{}.{}/32", (i >> 16) & 255, (i >> 8) & 255, i & 255)
                    .parse()
                    .unwrap(),
                [64496, 64501, 64500],
            )
        } else if i % 1000 == 0 {
            let sub = (i / 1000) % 256;
            (
                format!("198.51.100.{sub}/32").parse().unwrap(),
                [64496, 64501, 64500],
            )
        } else {
            // 11.0.0.0 on: outside the registered 10.0.0.0/8.
            let a = 11 + (i >> 16) % 180;
            (
                format!("{a}.{}.{}.0/24", (i >> 8) & 255, i & 255)
                    .parse()
                    .unwrap(),
                [64496, 64510 + (i % 2) as u32, 65536 + (i % 16) as u32],
            )
        };
        out.extend(synth::announce(&peer, &[net], &path));
    }
    out
}

struct Edged {
    child: Child,
    bin: PathBuf,
    ns: String,
    socket: PathBuf,
    pin: PathBuf,
}

impl Edged {
    fn ctl(&self, args: &[&str]) -> Result<serde_json::Value> {
        let out = netns_command(&self.ns, &self.bin.join("edgectl"))
            .arg("--json")
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .context("edgectl")?;
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

impl Drop for Edged {
    fn drop(&mut self) {
        let _ = self.ctl(&["teardown"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.pin);
    }
}

fn start(bin: &Path, ns: &str, dir: &Path) -> Result<Edged> {
    let config = dir.join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "{CONFIG}
[[prefixes]]
prefix = \"198.51.100.0/24\"
registration = \"bench\"
policy = \"to-cust\"

[[prefixes]]
prefix = \"10.0.0.0/8\"
registration = \"bench\"
policy = \"to-cust\"

[bmp]
listen = \"127.0.0.1:{PORT}\"

[[registrations]]
name = \"bench\"
origin_asns = [64500]
upstream_asns = [64496, 64501]
"
        ),
    )?;
    let pin = PathBuf::from(format!("/sys/fs/bpf/edge-bench-bmp-{}", std::process::id()));
    let socket = dir.join("edged.sock");
    let mut child = netns_command(ns, &bin.join("edged"))
        .arg("--config")
        .arg(&config)
        .arg("--pin-path")
        .arg(&pin)
        .arg("--socket")
        .arg(&socket)
        .arg("--state")
        .arg(dir.join("state.json"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("edged.log"))?)
        .process_group(0)
        .spawn()
        .context("spawning edged")?;
    let stdout = child.stdout.take().context("edged's stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("edged: ready") {
                let _ = tx.send(());
            }
        }
    });
    let e = Edged {
        child,
        bin: bin.to_path_buf(),
        ns: ns.to_string(),
        socket,
        pin,
    };
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        bail!(
            "edged not ready within 60 s (log: {})",
            dir.join("edged.log").display()
        );
    }
    Ok(e)
}

/// Runs the ingest at each size.
pub fn ingest(bin: &Path, sizes: &[usize]) -> Result<Vec<BmpRun>> {
    let mut runs = Vec::new();
    let cases = sizes
        .iter()
        .map(|n| (*n, false))
        .chain(sizes.iter().map(|n| (*n, true)));
    for (n, all_monitored) in cases {
        let (lab, ns) = bench_lab("bmpbench", "bmp");
        let dir = std::env::temp_dir().join(format!("{ns}-bmp"));
        std::fs::create_dir_all(&dir)?;
        let edged = start(bin, &ns, &dir)?;
        let pid = edged.child.id();
        let data = messages(n, all_monitored);
        let rss_before_kib = kib(pid, "VmRSS:");
        // The control socket, answered all along.
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let done = done.clone();
            let (bin, ns, socket) = (edged.bin.clone(), ns.clone(), edged.socket.clone());
            std::thread::spawn(move || {
                let (mut max, mut count) = (Duration::ZERO, 0);
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ok = netns_command(&ns, &bin.join("edgectl"))
                        .arg("--socket")
                        .arg(&socket)
                        .arg("status")
                        .stdout(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success());
                    if ok {
                        max = max.max(t.elapsed());
                        count += 1;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                (max, count)
            })
        };
        let t = Instant::now();
        let bytes = data.len();
        let stream = in_netns(&ns, || -> Result<std::net::TcpStream> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", PORT))?;
            s.write_all(&data)?;
            Ok(s)
        })?;
        drop(data);
        let want = n as u64 + 1;
        let deadline = Instant::now() + Duration::from_secs(900);
        let (paths, applied) = loop {
            let v = edged.ctl(&["routes", "anomalies"])?;
            let totals = &v["data"]["bmp"]["totals"];
            let messages = totals["messages"].as_u64().unwrap_or(0);
            if messages >= want {
                break (totals["paths"].as_u64().unwrap_or(0), t.elapsed());
            }
            if Instant::now() > deadline {
                bail!("{n} announcements: edged applied {messages} messages in 900 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        done.store(true, Ordering::Relaxed);
        let (status_max, status_count) = watcher.join().expect("status watcher");
        let run = BmpRun {
            announcements: n,
            all_monitored,
            bytes,
            secs: applied.as_secs_f64(),
            rss_before_kib,
            rss_after_kib: kib(pid, "VmRSS:"),
            hwm_kib: kib(pid, "VmHWM:"),
            paths,
            status_max,
            status_count,
        };
        eprintln!(
            "  bmp ingest {n} (all monitored: {all_monitored}): {:.2} s, {:.0} messages/s, RSS {} -> {} MiB (peak {} MiB), {} paths kept, slowest status {:?} of {}",
            run.secs,
            n as f64 / run.secs,
            run.rss_before_kib / 1024,
            run.rss_after_kib / 1024,
            run.hwm_kib / 1024,
            run.paths,
            run.status_max,
            run.status_count
        );
        drop(stream);
        drop(edged);
        drop(lab);
        let _ = std::fs::remove_dir_all(&dir);
        runs.push(run);
    }
    Ok(runs)
}

/// The report's section.
pub fn markdown(runs: &[BmpRun]) -> String {
    let mut s = String::new();
    if runs.is_empty() {
        return s;
    }
    let _ = writeln!(s, "## Route analytics: BMP ingest\n");
    let _ = writeln!(
        s,
        "A synthetic BMP sender (`edge_userspace::analytics::synth`) writes N Route Monitoring messages of one IPv4 \
         prefix each over one TCP session to a running edged (one in 1,000 a more-specific of the registered prefix, \
         the rest outside any registration, as in a full table; then every one a distinct /32 inside a registered prefix, \
         each a path edged keeps: the worst case for memory), as fast as edged reads. Time from the first byte to \
         edged having applied the last message (its `messages` total); edged's RSS before and after, and its peak; \
         the slowest of the `edgectl status` calls made every 50 ms meanwhile.\n"
    );
    let _ = writeln!(
        s,
        "| announcements | monitored | bytes | time | messages/s | RSS before | RSS after (peak) | paths kept | slowest `edgectl status` during the ingest |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in runs {
        let _ = writeln!(
            s,
            "| {} | {} | {:.0} MiB | {:.2} s | **{:.0}** | {} MiB | {} MiB ({} MiB) | {} | {:.0} ms ({} calls) |",
            r.announcements,
            if r.all_monitored { "all" } else { "1 in 1,000" },
            r.bytes as f64 / (1 << 20) as f64,
            r.secs,
            r.announcements as f64 / r.secs,
            r.rss_before_kib / 1024,
            r.rss_after_kib / 1024,
            r.hwm_kib / 1024,
            r.paths,
            r.status_max.as_secs_f64() * 1e3,
            r.status_count
        );
    }
    s
}
