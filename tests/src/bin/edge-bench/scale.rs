//! The control plane at scale (issues 15 and 19): a config file of N
//! registered prefixes, checked by `edgectl config check` and `edged
//! --check`, loaded by a starting edged, changed live (one prefix, and a
//! batch of 100,000 in one transaction), and read back (`stats`, `stats
//! --watch`, `prefix list`, the metrics scrape), with edged's memory.
//!
//! Everything runs the real binaries (`--bin-dir`, default the directory of
//! this executable: `target/release` under `cargo xtask bench`), so the same
//! run measures an older build too. Every step is bounded by a timeout; a
//! step that runs out is reported as such, not waited for.
//!
//! Addresses: IPv4 /32s of 198.18.0.0/15 (benchmarking, RFC 2544; 131,072)
//! and IPv6 /64s of 2001:db8::/32 (documentation), half and half while
//! they last; the IPv6 map holds 262,144 entries, so a million prefixes take
//! the rest as IPv4 /32s of 10.0.0.0/8. Nothing is ever sent to them: edged
//! runs in a namespace of its own with two veths and no traffic.

use std::{
    fmt::Write as _,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Ipv4Addr, Ipv6Addr},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use edge_tests::netns::{in_netns, netns_command};

use crate::{CONFIG, bench_lab, control::status_kib};

/// Prefixes of one registration (a customer registers a few dozen).
pub const PER_REGISTRATION: usize = 64;
/// The batch of live adds.
pub const BATCH: usize = 100_000;
/// Live adds timed one by one (median).
pub const SINGLE_ADDS: usize = 5;
/// The IPv6 map's size (`[limits] prefixes_v6` at most).
const V6_LIMIT: usize = 262_144;
/// 198.18.0.0/15 as /32s.
const BENCHMARK_V4: usize = 1 << 17;

/// The `i`-th IPv4 /32 of the stream: 198.18.0.0/15, then 10.0.0.0/8.
fn v4(i: usize) -> String {
    let a = if i < BENCHMARK_V4 {
        u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i as u32
    } else {
        u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (i - BENCHMARK_V4) as u32
    };
    format!("{}/32", Ipv4Addr::from(a))
}

/// The `i`-th IPv6 /64 of 2001:db8::/32.
fn v6(i: usize) -> String {
    let hi = (i >> 16) as u16;
    let lo = (i & 0xffff) as u16;
    format!("{}/64", Ipv6Addr::new(0x2001, 0xdb8, hi, lo, 0, 0, 0, 0))
}

/// How many of `n` prefixes are IPv6 when `used6` are taken: half, as
/// long as the IPv6 map has room.
fn v6_share(n: usize, used6: usize) -> usize {
    (n / 2).min(V6_LIMIT - used6)
}

/// The config's prefixes (v4 count, v6 count) for `n`.
pub fn split(n: usize) -> (usize, usize) {
    let six = v6_share(n, 0);
    (n - six, six)
}

/// The bench config with `n` prefixes, each `[[prefixes]]` table with its
/// policy and registration.
pub fn config_text(n: usize) -> String {
    let (four, six) = split(n);
    let mut s = String::with_capacity(n * 90 + CONFIG.len());
    s.push_str(CONFIG);
    let mut k = 0;
    let mut push = |s: &mut String, net: String| {
        let _ = write!(
            s,
            "\n[[prefixes]]\nprefix = \"{net}\"\npolicy = \"to-cust\"\nregistration = \"cust-{}\"\n",
            k / PER_REGISTRATION
        );
        k += 1;
    };
    for i in 0..four.max(six) {
        if i < four {
            push(&mut s, v4(i));
        }
        if i < six {
            push(&mut s, v6(i));
        }
    }
    s
}

/// The batch file: `BATCH` prefixes after the config's, one per line in
/// `edgectl prefix add`'s argument syntax.
pub fn batch_text(n: usize) -> String {
    let (four, six) = split(n);
    let six_more = v6_share(BATCH, six);
    let four_more = BATCH - six_more;
    let mut s = String::with_capacity(BATCH * 60);
    s.push_str("# edge-bench: a batch of live adds\n");
    for i in 0..four_more {
        let _ = writeln!(
            s,
            "{} --policy to-cust --registration batch-{}",
            v4(four + i),
            i / PER_REGISTRATION
        );
    }
    for i in 0..six_more {
        let _ = writeln!(
            s,
            "{} --policy to-cust --registration batch6-{}",
            v6(six + i),
            i / PER_REGISTRATION
        );
    }
    s
}

/// What one command took: wall time, the child's peak RSS (at least this
/// process's RSS when it was spawned: the kernel carries it over), success.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timed {
    pub secs: f64,
    pub max_rss_kib: u64,
    pub ok: bool,
}

/// Runs `cmd` (stdout to `out`), waiting at most `timeout`: `None` when it
/// ran out (the child is killed).
fn run_timed(cmd: &mut Command, timeout: Duration) -> Result<Option<Timed>> {
    let t = Instant::now();
    let child = cmd.spawn().context("spawning")?;
    let pid = child.id() as libc::pid_t;
    loop {
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            return Ok(Some(Timed {
                secs: t.elapsed().as_secs_f64(),
                max_rss_kib: usage.ru_maxrss as u64,
                ok: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            }));
        }
        if r < 0 {
            bail!("wait4: {}", std::io::Error::last_os_error());
        }
        if t.elapsed() > timeout {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One size's figures; `None`: the step ran out of time (or was not run).
#[derive(Clone, Debug, Default)]
pub struct ScaleRun {
    pub prefixes: usize,
    pub config_mib: f64,
    pub check: Option<Timed>,
    pub edged_check: Option<Timed>,
    /// From spawn to "edged: ready" (forwarding, socket served).
    pub start_s: Option<f64>,
    /// edged's VmRSS / RssAnon right after the start, KiB.
    pub rss_start_kib: (u64, u64),
    /// Median of `SINGLE_ADDS` live adds (edgectl's wall time), and a del.
    pub add_ms: Option<f64>,
    pub del_ms: Option<f64>,
    /// `prefix add --file` of `BATCH` prefixes (None also when the edgectl
    /// has no `--file`).
    pub batch: Option<Timed>,
    pub batch_supported: bool,
    /// Median of `SINGLE_ADDS` live adds after the batch (its 100,000 live
    /// entries in the state file).
    pub add_after_batch_ms: Option<f64>,
    /// Reads: wall time of edgectl (output to /dev/null).
    pub stats: Option<Timed>,
    pub stats_json: Option<Timed>,
    /// `stats --watch --json --interval 1`: time to its first line minus
    /// the interval (two samples and the rates).
    pub watch_s: Option<f64>,
    pub list: Option<Timed>,
    pub list_json: Option<Timed>,
    /// `prefix list --top 10` / `stats --top 10`, when supported.
    pub list_top: Option<Timed>,
    pub stats_top: Option<Timed>,
    /// GET /metrics: seconds and bytes.
    pub scrape: Option<(f64, usize)>,
    /// `edgectl config reload` of the unchanged file (a whole compile of
    /// every prefix); then, after a reload setting `prefix_metrics =
    /// "prefix"` (refused by a build without the key: `None`), a scrape
    /// with a series per prefix.
    pub reload: Option<Timed>,
    pub scrape_prefix: Option<(f64, usize)>,
    /// The reload that set `prefix_metrics` (the file changed: parsed and
    /// compiled whole).
    pub reload_changed: Option<Timed>,
    /// edged's VmRSS / RssAnon after the reads, and its peak (VmHWM), KiB.
    pub rss_end_kib: (u64, u64),
    pub hwm_kib: u64,
    /// edged's VmHWM just before the reads (after the changes), KiB.
    pub hwm_before_reads_kib: u64,
    /// edged's VmHWM after the reloads, KiB.
    pub hwm_reload_kib: u64,
}

/// edged running in the bench namespace, with its own paths.
struct Daemon {
    child: Child,
    bin: PathBuf,
    ns: String,
    config: PathBuf,
    pin: PathBuf,
    socket: PathBuf,
    state: PathBuf,
}

impl Daemon {
    fn ctl(&self) -> Command {
        let mut c = netns_command(&self.ns, &self.bin.join("edgectl"));
        c.arg("--socket").arg(&self.socket);
        c.arg("--timeout").arg("900");
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c
    }

    fn status(&self) -> String {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default()
    }

    fn rss(&self) -> (u64, u64) {
        let s = self.status();
        (status_kib(&s, "VmRSS:"), status_kib(&s, "RssAnon:"))
    }

    fn hwm(&self) -> u64 {
        status_kib(&self.status(), "VmHWM:")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.ctl().arg("teardown").stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = netns_command(&self.ns, &self.bin.join("edged"))
            .arg("--config")
            .arg(&self.config)
            .arg("--pin-path")
            .arg(&self.pin)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--state")
            .arg(&self.state)
            .arg("--detach")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Options of the scale section.
pub struct ScaleOptions {
    pub bin_dir: PathBuf,
    pub sizes: Vec<usize>,
    pub timeout: Duration,
}

pub fn scale(o: &ScaleOptions) -> Result<Vec<ScaleRun>> {
    let mut out = Vec::new();
    for &n in &o.sizes {
        eprintln!("== control plane at {n} prefixes ({})", o.bin_dir.display());
        out.push(scale_one(o, n)?);
    }
    Ok(out)
}

fn secs(t: &Option<Timed>) -> String {
    match t {
        Some(t) if t.ok => format!("{:.3} s (peak RSS {} MiB)", t.secs, t.max_rss_kib / 1024),
        Some(t) => format!("FAILED after {:.3} s", t.secs),
        None => "timed out".into(),
    }
}

fn scale_one(o: &ScaleOptions, n: usize) -> Result<ScaleRun> {
    let mut run = ScaleRun {
        prefixes: n,
        ..ScaleRun::default()
    };
    let dir = std::env::temp_dir().join(format!("edge-bench-scale-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("edge.toml");
    let text = config_text(n);
    run.config_mib = text.len() as f64 / (1 << 20) as f64;
    std::fs::write(&config, &text)?;
    drop(text);
    let batch = dir.join("batch.txt");
    std::fs::write(&batch, batch_text(n))?;
    // Give the freed text back: a child starts with this process's peak
    // RSS as its own (the kernel keeps it across fork and exec), which
    // would hide the children's own peaks.
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
    let state = dir.join("state.json");
    let socket = dir.join("edged.sock");
    let pin = PathBuf::from(format!(
        "/sys/fs/bpf/edge-bench-scale-{}",
        std::process::id()
    ));
    let edgectl = o.bin_dir.join("edgectl");
    let edged = o.bin_dir.join("edged");

    run.check = run_timed(
        Command::new(&edgectl)
            .args(["config", "check"])
            .arg(&config)
            .stdout(Stdio::null()),
        o.timeout,
    )?;
    eprintln!("  edgectl config check: {}", secs(&run.check));
    run.edged_check = run_timed(
        Command::new(&edged)
            .arg("--check")
            .arg("--config")
            .arg(&config)
            .arg("--state")
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        o.timeout,
    )?;
    eprintln!("  edged --check: {}", secs(&run.edged_check));

    let (lab, ns) = bench_lab("benchsc", "sc");
    let log = std::fs::File::create(dir.join("edged.log"))?;
    let t = Instant::now();
    let mut child = netns_command(&ns, &edged)
        .arg("--config")
        .arg(&config)
        .arg("--pin-path")
        .arg(&pin)
        .arg("--socket")
        .arg(&socket)
        .arg("--state")
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("spawning edged")?;
    let stdout = child.stdout.take().context("edged's stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("edged: ready") {
                let _ = tx.send(());
            }
        }
    });
    let d = Daemon {
        child,
        bin: o.bin_dir.clone(),
        ns: ns.clone(),
        config: config.clone(),
        pin,
        socket,
        state,
    };
    if rx.recv_timeout(o.timeout).is_err() {
        eprintln!("  edged not ready after {:?}: giving up on {n}", o.timeout);
        drop(d);
        drop(lab);
        return Ok(run);
    }
    run.start_s = Some(t.elapsed().as_secs_f64());
    run.rss_start_kib = d.rss();
    eprintln!(
        "  edged start: {:.2} s, VmRSS {} MiB (anonymous {} MiB)",
        run.start_s.unwrap_or_default(),
        run.rss_start_kib.0 / 1024,
        run.rss_start_kib.1 / 1024
    );

    // One live add at a time (203.0.113.0/24 split into /32s: not in the
    // config), then one del.
    run.add_ms = single_adds(&d, o.timeout, 10)?;
    if run.add_ms.is_some() {
        let r = run_timed(
            d.ctl()
                .args(["prefix", "del", "203.0.113.10/32"])
                .stderr(Stdio::null()),
            o.timeout,
        )?;
        run.del_ms = r.filter(|r| r.ok).map(|r| r.secs * 1e3);
    }
    eprintln!(
        "  live add: {:?} ms (median of {SINGLE_ADDS}), del {:?} ms",
        run.add_ms, run.del_ms
    );

    // The batch, if this edgectl has it.
    let help = Command::new(&edgectl)
        .args(["prefix", "add", "--help"])
        .output()?;
    run.batch_supported = String::from_utf8_lossy(&help.stdout).contains("--file");
    if run.batch_supported && run.add_ms.is_some() {
        run.batch = run_timed(
            d.ctl()
                .args(["prefix", "add", "--file"])
                .arg(&batch)
                .stderr(Stdio::inherit()),
            o.timeout,
        )?;
        eprintln!("  batch of {BATCH}: {}", secs(&run.batch));
        if run.batch.is_some_and(|b| b.ok) {
            run.add_after_batch_ms = single_adds(&d, o.timeout, 100)?;
            eprintln!(
                "  live add after the batch: {:?} ms (median of {SINGLE_ADDS})",
                run.add_after_batch_ms
            );
        }
    }

    // Reads, with traffic counted in every prefix counter slot (written
    // into the pinned per-CPU map, as if packets had come: nothing is sent).
    fill_prefix_counters(&d.pin)?;
    run.hwm_before_reads_kib = d.hwm();
    let read = |args: &[&str]| -> Result<Option<Timed>> {
        let r = run_timed(d.ctl().args(args).stderr(Stdio::null()), o.timeout)?;
        eprintln!("  edgectl {}: {}", args.join(" "), secs(&r));
        Ok(r)
    };
    run.stats = read(&["stats"])?;
    run.stats_json = read(&["--json", "stats"])?;
    run.list = read(&["prefix", "list"])?;
    run.list_json = read(&["--json", "prefix", "list"])?;
    let top = Command::new(&edgectl)
        .args(["prefix", "list", "--help"])
        .output()?;
    if String::from_utf8_lossy(&top.stdout).contains("--top") {
        run.list_top = read(&["prefix", "list", "--top", "10"])?;
        run.stats_top = read(&["stats", "--top", "10"])?;
    }
    run.watch_s = watch(&d, o.timeout)?;
    eprintln!("  stats --watch: {:?} s", run.watch_s);
    run.scrape = scrape(&ns, o.timeout)?;
    eprintln!("  metrics scrape: {:?}", run.scrape);
    run.rss_end_kib = d.rss();
    run.hwm_kib = d.hwm();
    // A reload of the unchanged file: the whole pipeline.
    run.reload = read(&["config", "reload"])?;
    // Per-prefix series (an edged without the key refuses the file).
    let text = std::fs::read_to_string(&config)?;
    std::fs::write(
        &config,
        format!("[daemon]\nprefix_metrics = \"prefix\"\n\n{text}"),
    )?;
    drop(text);
    run.reload_changed = read(&["config", "reload"])?;
    if run.reload_changed.is_some_and(|r| r.ok) {
        run.scrape_prefix = scrape(&ns, o.timeout)?;
        eprintln!("  metrics scrape, per prefix: {:?}", run.scrape_prefix);
    }
    run.hwm_reload_kib = d.hwm();
    eprintln!(
        "  edged VmRSS {} MiB (anonymous {} MiB) after the reads, peak {} MiB ({} MiB before the reads, {} MiB after the reloads)",
        run.rss_end_kib.0 / 1024,
        run.rss_end_kib.1 / 1024,
        run.hwm_kib / 1024,
        run.hwm_before_reads_kib / 1024,
        run.hwm_reload_kib / 1024
    );
    drop(d);
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(run)
}

/// The median of `SINGLE_ADDS` live adds of 203.0.113.`first`+i/32, each
/// edgectl's wall time; `None` if one fails or runs out of time.
fn single_adds(d: &Daemon, timeout: Duration, first: usize) -> Result<Option<f64>> {
    let mut adds = Vec::new();
    for i in 0..SINGLE_ADDS {
        let p = format!("203.0.113.{}/32", first + i);
        let r = run_timed(
            d.ctl()
                .args(["prefix", "add", &p, "--policy", "to-cust"])
                .stderr(Stdio::null()),
            timeout,
        )?;
        match r {
            Some(r) if r.ok => adds.push(r.secs * 1e3),
            other => {
                eprintln!("  live add of {p}: {}", secs(&other));
                return Ok(None);
            }
        }
    }
    adds.sort_by(f64::total_cmp);
    Ok(Some(adds[SINGLE_ADDS / 2]))
}

/// Counts something in every prefix counter slot (on CPU 0), so that the
/// reads render a row for every slot, as under traffic.
fn fill_prefix_counters(pin: &Path) -> Result<()> {
    use aya::maps::{Map, MapData, PerCpuArray, PerCpuValues};
    use edge_common::{Counter, limits, map_names};
    let data = MapData::from_pin(pin.join(map_names::PREFIX_STATS))?;
    let mut map: PerCpuArray<MapData, Counter> = Map::from_map_data(data)?.try_into()?;
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
    for slot in 1..limits::MAX_PREFIX_SLOTS {
        let mut v = vec![Counter::default(); cpus];
        v[0] = Counter {
            packets: u64::from(slot),
            bytes: 100 * u64::from(slot),
        };
        map.set(slot, PerCpuValues::try_from(v)?, 0)?;
    }
    Ok(())
}

/// `stats --watch --json --interval 1`: seconds to its first line, minus
/// the interval.
fn watch(d: &Daemon, timeout: Duration) -> Result<Option<f64>> {
    let t = Instant::now();
    let mut child = d
        .ctl()
        .args(["--json", "stats", "--watch", "--interval", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        if r.read_line(&mut line).is_ok() && !line.is_empty() {
            let _ = tx.send(());
        }
        // Drain until killed.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    let got = rx.recv_timeout(timeout).is_ok();
    let secs = t.elapsed().as_secs_f64() - 1.0;
    let _ = child.kill();
    let _ = child.wait();
    Ok(got.then_some(secs))
}

/// GET /metrics on edged's default address in `ns`: (seconds, bytes).
fn scrape(ns: &str, timeout: Duration) -> Result<Option<(f64, usize)>> {
    in_netns(ns, || -> Result<Option<(f64, usize)>> {
        let t = Instant::now();
        let mut s = std::net::TcpStream::connect("127.0.0.1:9477").context("metrics")?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
        let mut body = Vec::new();
        match s.read_to_end(&mut body) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let secs = t.elapsed().as_secs_f64();
        if !body.starts_with(b"HTTP/1.1 200") {
            bail!(
                "metrics answered {:?}",
                String::from_utf8_lossy(&body[..body.len().min(80)])
            );
        }
        Ok(Some((secs, body.len())))
    })
}

/// A run as `print_json` wrote it.
pub fn from_json(v: &serde_json::Value) -> ScaleRun {
    let t = |k: &str| {
        let x = &v[k];
        x.is_object().then(|| Timed {
            secs: x["s"].as_f64().unwrap_or(0.0),
            max_rss_kib: x["max_rss_kib"].as_u64().unwrap_or(0),
            ok: x["ok"].as_bool().unwrap_or(false),
        })
    };
    let pair = |k: &str| {
        let x = &v[k];
        (x[0].as_u64().unwrap_or(0), x[1].as_u64().unwrap_or(0))
    };
    let scrape = |k: &str| {
        let x = &v[k];
        x.is_object().then(|| {
            (
                x["s"].as_f64().unwrap_or(0.0),
                x["bytes"].as_u64().unwrap_or(0) as usize,
            )
        })
    };
    ScaleRun {
        prefixes: v["prefixes"].as_u64().unwrap_or(0) as usize,
        config_mib: v["config_mib"].as_f64().unwrap_or(0.0),
        check: t("check"),
        edged_check: t("edged_check"),
        start_s: v["start_s"].as_f64(),
        rss_start_kib: pair("rss_start_kib"),
        add_ms: v["add_ms"].as_f64(),
        del_ms: v["del_ms"].as_f64(),
        batch: t("batch"),
        batch_supported: v["batch"].is_object(),
        add_after_batch_ms: v["add_after_batch_ms"].as_f64(),
        stats: t("stats"),
        stats_json: t("stats_json"),
        watch_s: v["watch_s"].as_f64(),
        list: t("list"),
        list_json: t("list_json"),
        list_top: t("list_top"),
        stats_top: t("stats_top"),
        scrape: scrape("scrape"),
        reload: t("reload"),
        reload_changed: t("reload_changed"),
        scrape_prefix: scrape("scrape_prefix"),
        rss_end_kib: pair("rss_end_kib"),
        hwm_kib: v["hwm_kib"].as_u64().unwrap_or(0),
        hwm_before_reads_kib: v["hwm_before_reads_kib"].as_u64().unwrap_or(0),
        hwm_reload_kib: v["hwm_reload_kib"].as_u64().unwrap_or(0),
    }
}

/// The figures of the build before this work (commit 48c4607, measured
/// with this bench and `--bin-dir`), kept for the comparison.
pub const BEFORE: &str = include_str!("../../../fixtures/scale-before.jsonl");

/// The "Control plane at scale" section of BENCHMARKS.md.
pub fn markdown(runs: &[ScaleRun], timeout: Duration, commit: &str) -> String {
    let before: Vec<ScaleRun> = BEFORE
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| from_json(&v))
        .collect();
    let before_commit = BEFORE
        .lines()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["commit"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let (cpu, kernel, cores) = crate::report::machine();
    let out_of = format!("> {} s", timeout.as_secs());
    let secs = |t: &Option<Timed>| match t {
        Some(t) if t.ok => format!("{:.2} s", t.secs),
        Some(_) => "failed".into(),
        None => out_of.clone(),
    };
    let secs_rss = |t: &Option<Timed>| match t {
        Some(t) if t.ok => format!("{:.2} s ({} MiB)", t.secs, t.max_rss_kib / 1024),
        other => secs(other),
    };
    let ms = |v: Option<f64>| v.map_or_else(|| out_of.clone(), |v| format!("{v:.1} ms"));
    let mib = |kib: u64| format!("{} MiB", kib / 1024);
    let scrape = |v: &Option<(f64, usize)>| match v {
        Some((s, b)) => format!("{s:.2} s ({:.1} MB)", *b as f64 / 1e6),
        None => out_of.clone(),
    };
    type Row<'a> = (&'a str, Box<dyn Fn(&ScaleRun) -> String + 'a>, &'a str);
    let rows: Vec<Row> = vec![
        (
            "config file",
            Box::new(|r| format!("{:.1} MiB", r.config_mib)),
            "",
        ),
        (
            "`edgectl config check` (its peak RSS)",
            Box::new(|r| secs_rss(&r.check)),
            "≤ 5 s",
        ),
        (
            "`edged --check` (its peak RSS)",
            Box::new(|r| secs_rss(&r.edged_check)),
            "≤ 5 s",
        ),
        (
            "edged start: spawn to ready (forwarding, socket served)",
            Box::new(|r| {
                r.start_s
                    .map_or_else(|| out_of.clone(), |s| format!("{s:.2} s"))
            }),
            "≤ 10 s",
        ),
        (
            "edged VmRSS after start (anonymous)",
            Box::new(|r| format!("{} ({})", mib(r.rss_start_kib.0), mib(r.rss_start_kib.1))),
            "",
        ),
        (
            "one live `prefix add` (median of 5)",
            Box::new(|r| ms(r.add_ms)),
            "≤ 50 ms",
        ),
        ("one live `prefix del`", Box::new(|r| ms(r.del_ms)), ""),
        (
            "100,000 live adds in one batch (`prefix add --file`)",
            Box::new(|r| {
                if r.batch_supported {
                    secs(&r.batch)
                } else {
                    "no batch command".into()
                }
            }),
            "≤ 5 s",
        ),
        (
            "one live `prefix add` after the batch (100,000 live entries)",
            Box::new(|r| {
                if r.batch_supported {
                    ms(r.add_after_batch_ms)
                } else {
                    "-".into()
                }
            }),
            "",
        ),
        ("`edgectl stats`", Box::new(|r| secs(&r.stats)), "< 1 s"),
        (
            "`edgectl --json stats`",
            Box::new(|r| secs(&r.stats_json)),
            "< 1 s",
        ),
        (
            "`edgectl stats --top 10`",
            Box::new(|r| {
                r.stats_top
                    .map_or_else(|| "no --top".into(), |t| secs(&Some(t)))
            }),
            "< 1 s",
        ),
        (
            "`edgectl stats --watch`: two samples and the rates",
            Box::new(|r| {
                r.watch_s
                    .map_or_else(|| out_of.clone(), |s| format!("{s:.2} s"))
            }),
            "< 1 s",
        ),
        (
            "`edgectl prefix list` (every prefix)",
            Box::new(|r| secs(&r.list)),
            "< 1 s",
        ),
        (
            "`edgectl --json prefix list`",
            Box::new(|r| secs(&r.list_json)),
            "",
        ),
        (
            "`edgectl prefix list --top 10`",
            Box::new(|r| {
                r.list_top
                    .map_or_else(|| "no --top".into(), |t| secs(&Some(t)))
            }),
            "< 1 s",
        ),
        (
            "metrics scrape (default series)",
            Box::new(|r| scrape(&r.scrape)),
            "< 1 s",
        ),
        (
            "`edgectl config reload`, file unchanged",
            Box::new(|r| secs(&r.reload)),
            "",
        ),
        (
            "`edgectl config reload`, file changed (`prefix_metrics`)",
            Box::new(|r| match &r.reload_changed {
                Some(t) if !t.ok => "refused (no such key)".into(),
                other => secs(other),
            }),
            "",
        ),
        (
            "metrics scrape, `prefix_metrics = \"prefix\"`",
            Box::new(|r| match &r.scrape_prefix {
                Some(_) => scrape(&r.scrape_prefix),
                None => "no such key".into(),
            }),
            "< 1 s",
        ),
        (
            "edged peak RSS (VmHWM) before the reads",
            Box::new(|r| mib(r.hwm_before_reads_kib)),
            "",
        ),
        (
            "edged peak RSS after the reads; VmRSS then",
            Box::new(|r| format!("{}; {}", mib(r.hwm_kib), mib(r.rss_end_kib.0))),
            "no jump",
        ),
        (
            "edged peak RSS after the two reloads",
            Box::new(|r| {
                if r.hwm_reload_kib == 0 {
                    "-".into()
                } else {
                    mib(r.hwm_reload_kib)
                }
            }),
            "",
        ),
    ];
    let mut s = String::new();
    let _ = writeln!(s, "## Control plane at scale\n");
    let _ = writeln!(
        s,
        "`edge-bench --scale-only` (`cargo xtask bench -- --only scale` rewrites this section): a config \
         file of N prefixes, each its own `[[prefixes]]` table with a policy and one of N/{PER_REGISTRATION} \
         registrations: IPv4 /32s of 198.18.0.0/15 and IPv6 /64s of 2001:db8::/32, half and half while they \
         last; the IPv6 map holds 262,144 entries, so at 1,000,000 the other 606,784 are IPv4 /32s of \
         10.0.0.0/8. edged runs in a namespace of its own with two veths; nothing is sent. Before the reads \
         every prefix counter slot is given a count (written into the pinned per-CPU map), as if every \
         prefix with a slot of its own had traffic. Wall times of the real binaries (edgectl's output to \
         /dev/null), and each command's peak RSS where shown; every step is bounded ({out_of}: it ran out). \
         Machine: {cpu}, {cores} cores, kernel {kernel}, shared with other work, so figures vary by tens of \
         percent between runs.\n"
    );
    let _ = writeln!(
        s,
        "_before_: commit {before_commit}, measured with the same bench (`--bin-dir`; its edged's peak after \
         the reads includes its reloads); _after_: commit {commit}.\n"
    );
    let sizes: Vec<usize> = runs.iter().map(|r| r.prefixes).collect();
    let mut head = "| |".to_string();
    let mut rule = "|---|".to_string();
    for n in &sizes {
        let _ = write!(head, " {n} before | {n} after |");
        rule += "---:|---:|";
    }
    let _ = writeln!(s, "{head} target |\n{rule}---|");
    for (name, f, target) in &rows {
        let mut line = format!("| {name} |");
        for r in runs {
            let b = before
                .iter()
                .find(|b| b.prefixes == r.prefixes)
                .map_or_else(|| "-".into(), f);
            let _ = write!(line, " {b} | **{}** |", f(r));
        }
        let _ = writeln!(s, "{line} {target} |");
    }
    let _ = writeln!(
        s,
        "\nA live change registers or unregisters prefixes as a delta (`desired::delta`: the same maps, \
         counter slots, rows and state file as compiling the changed config as a whole, checked by a random \
         walk against whole compiles), so its cost follows the change, not the config; a change that needs \
         a new selection table, touches a subnet policy or a route entry takes the whole pipeline (as the \
         batch's first use of a PoP's `pop:NAME` policy would). `stats` lists the prefixes with a counter \
         slot of their own (65,535 at most; the others share one counter, shown once). Before, every read at \
         1,000,000 built and parsed replies of up to a million rows with quadratic lookups, and the scrape \
         carried one series per prefix slot; the default is now one per registration (`prefix_metrics`, \
         docs/metrics.md). A reload of an unchanged file reuses the running plan instead of parsing the \
         file again (then compiles and applies it whole); one that changes the file parses it too, and \
         is what raises edged's peak memory at a million prefixes. The whole `prefix list` streams: edged \
         writes its rows by hand from the view as the socket takes them, and edgectl reads and prints each \
         row as it arrives (a reader for the shape edged writes, serde for anything else), so the two \
         overlap and neither holds the whole reply (before: 1.64 s and 1.83 s with `--json` at a million, \
         commit f7bd092).\n"
    );
    s
}

/// `doc` (BENCHMARKS.md) with its "Control plane at scale" section replaced
/// by `section` (added before the plot when it has none).
pub fn replace_section(doc: &str, section: &str) -> String {
    replace_named_section(doc, "## Control plane at scale", section)
}

/// `doc` with its section under the heading `head` (up to the next `## `
/// heading or plot) replaced by `section`, or with `section` added before
/// the plots.
pub fn replace_named_section(doc: &str, head: &str, section: &str) -> String {
    let ends = |from: usize| {
        doc[from..]
            .match_indices('\n')
            .map(|(i, _)| from + i + 1)
            .find(|&i| doc[i..].starts_with("## ") || doc[i..].starts_with("!["))
    };
    match doc.find(head) {
        Some(start) => {
            let end = ends(start + head.len()).unwrap_or(doc.len());
            format!("{}{section}\n{}", &doc[..start], &doc[end..])
        }
        None => match doc.find("\n![") {
            Some(at) => format!("{}\n{section}{}", &doc[..at], &doc[at..]),
            None => format!("{doc}\n{section}"),
        },
    }
}

/// `--scale-only`: the figures as JSON lines on stdout, for comparing
/// builds (`--bin-dir`).
pub fn print_json(runs: &[ScaleRun]) {
    let t = |t: &Option<Timed>| {
        t.map(|t| serde_json::json!({"s": t.secs, "max_rss_kib": t.max_rss_kib, "ok": t.ok}))
    };
    for r in runs {
        println!(
            "{}",
            serde_json::json!({
                "prefixes": r.prefixes,
                "config_mib": r.config_mib,
                "check": t(&r.check),
                "edged_check": t(&r.edged_check),
                "start_s": r.start_s,
                "rss_start_kib": [r.rss_start_kib.0, r.rss_start_kib.1],
                "add_ms": r.add_ms,
                "del_ms": r.del_ms,
                "batch": t(&r.batch),
                "add_after_batch_ms": r.add_after_batch_ms,
                "stats": t(&r.stats),
                "stats_json": t(&r.stats_json),
                "stats_top": t(&r.stats_top),
                "watch_s": r.watch_s,
                "list": t(&r.list),
                "list_json": t(&r.list_json),
                "list_top": t(&r.list_top),
                "scrape": r.scrape.map(|(s, b)| serde_json::json!({"s": s, "bytes": b})),
                "reload": t(&r.reload),
                "reload_changed": t(&r.reload_changed),
                "scrape_prefix": r.scrape_prefix.map(|(s, b)| serde_json::json!({"s": s, "bytes": b})),
                "rss_end_kib": [r.rss_end_kib.0, r.rss_end_kib.1],
                "hwm_kib": r.hwm_kib,
                "hwm_before_reads_kib": r.hwm_before_reads_kib,
                "hwm_reload_kib": r.hwm_reload_kib,
            })
        );
    }
}

/// The directory of this executable (where cargo put edged and edgectl).
pub fn own_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_replaced_in_place() {
        let doc = "# B\n\n## Control plane\n\nx\n\n![plot](b.svg)\n";
        let once = replace_section(doc, "## Control plane at scale\n\none\n");
        assert_eq!(
            once,
            "# B\n\n## Control plane\n\nx\n\n## Control plane at scale\n\none\n\n![plot](b.svg)\n"
        );
        let twice = replace_section(&once, "## Control plane at scale\n\ntwo\n");
        assert_eq!(twice, once.replace("one", "two"));
        // The before figures parse.
        assert!(
            BEFORE
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .all(|v| from_json(&v).prefixes > 0)
        );
    }

    #[test]
    fn sizes_fit_the_maps() {
        assert_eq!(split(100_000), (50_000, 50_000));
        assert_eq!(split(1_000_000), (737_856, 262_144));
        assert_eq!(v4(0), "198.18.0.0/32");
        assert_eq!(v4(BENCHMARK_V4), "10.0.0.0/32");
        assert_eq!(v6(65_537), "2001:db8:1:1::/64");
    }
}
