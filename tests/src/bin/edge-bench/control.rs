//! Control plane: prefix load time and memory, failover rewrites, edged's compile and apply of a whole config, route sync through a running edged.

use std::{
    fmt::Write as _,
    net::Ipv4Addr,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use edge_common::{POLICY_SLOTS, PrefixEntry};
use edge_tests::{
    harness::{
        config, desired, loader,
        maps::{Counters, Tables},
        plan::{self, Member, Method},
        policy::{self, Choices, PopView as PopHealth},
        state::State,
    },
    netns::netns_command,
    topology::Edged,
};
use ipnet::{IpNet, Ipv4Net};

use crate::{
    CONFIG, RUNS, Sizes, bench_lab,
    prefixes::{PrefixGen, bench_entry},
};

/// (prefixes, seconds, loader VmRSS KiB, RssAnon KiB, map memory by name).
pub type Load = (usize, f64, u64, u64, Vec<(String, u64)>);

#[derive(Default)]
pub struct Control {
    /// (prefixes, seconds, loader VmRSS KiB, RssAnon KiB, map memory by name).
    pub loads: Vec<Load>,
    /// Rewriting every policy table after a PoP failure: (policies, members, ms).
    pub failover: (u32, usize, f64),
    /// edged's path for a whole config, and a 1% reload.
    pub full: Vec<FullLoad>,
    /// Route sync through a running edged.
    pub sync: Vec<SyncRun>,
}

pub fn control_plane(sizes: &Sizes) -> Result<Control> {
    let mut c = Control::default();
    let exe = std::env::current_exe()?;
    for &n in &sizes.load {
        let out = Command::new(&exe)
            .args(["--load-only", "v4", &n.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running the loader")?;
        ensure!(out.status.success(), "loader of {n} prefixes failed");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let maps = v["maps"]
            .as_object()
            .context("maps")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
            .collect();
        let secs = v["load_s"].as_f64().context("load_s")?;
        eprintln!("load of {n} IPv4 prefixes: {secs:.2} s");
        c.loads.push((
            n,
            secs,
            v["vm_rss_kib"].as_u64().unwrap_or(0),
            v["rss_anon_kib"].as_u64().unwrap_or(0),
            maps,
        ));
    }

    // Failover: every policy table rewritten with one member down.
    let mut ebpf = loader::load()?;
    let mut tables = Tables::take(&mut ebpf)?;
    let policies = edge_common::limits::MAX_POLICIES;
    let members: Vec<Member> = (0..8)
        .map(|pop| Member::pop(pop, 1 + pop % 3, pop))
        .collect();
    let mut times = Vec::new();
    for run in 0..RUNS {
        let down = run as u32 % 8;
        let t = Instant::now();
        for id in 0..policies {
            let table = policy::table(Method::Weighted, &members, |p| p != down);
            tables.set_policy(id, &table)?;
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        let check = tables.policy(policies - 1)?;
        ensure!(
            check.pops[..POLICY_SLOTS]
                .iter()
                .all(|&p| u32::from(p) != down)
        );
    }
    times.sort_by(f64::total_cmp);
    c.failover = (policies, members.len(), times[RUNS / 2]);
    eprintln!(
        "failover: {policies} policy tables rewritten in {:.2} ms",
        c.failover.2
    );
    drop(tables);
    drop(ebpf);

    c.full = full_loads(sizes)?;
    for &n in &sizes.load {
        eprintln!("route sync: {n} IPv4 routes through edged");
        c.sync.push(route_sync(n)?);
    }
    Ok(c)
}

pub fn status_kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Memory the kernel charges for each of this process's maps (fdinfo memlock).
pub fn map_memory() -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for fd in std::fs::read_dir("/proc/self/fdinfo")? {
        let Ok(info) = std::fs::read_to_string(fd?.path()) else {
            continue;
        };
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let (Some(id), Some(memlock)) = (field("map_id:"), field("memlock:")) {
            let info = aya::maps::MapInfo::from_id(id as u32)?;
            out.push((info.name_as_str().unwrap_or("?").to_string(), memlock));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// `--load-only FAMILY COUNT`: a fresh process loads the object and
/// registers COUNT prefixes, like edged does, then reports.
pub fn load_only(family: &str, n: usize) -> Result<()> {
    ensure!(family == "v4", "only v4 loads are measured");
    let mut generator = PrefixGen::new(1);
    let nets: Vec<Ipv4Net> = (0..n).map(|_| generator.v4()).collect();
    drop(generator);
    let mut ebpf = loader::load()?;
    let mut tables = Tables::take(&mut ebpf)?;
    let items: Vec<(IpNet, PrefixEntry)> = nets
        .iter()
        .enumerate()
        .map(|(i, net)| (IpNet::V4(*net), bench_entry(i)))
        .collect();
    let t = Instant::now();
    for (k, chunk) in items.chunks(200_000).enumerate() {
        let (_, result) = tables.set_prefixes(chunk);
        result?;
        eprintln!("  loading: {} of {n}", k * 200_000 + chunk.len());
    }
    let secs = t.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let maps: serde_json::Map<String, serde_json::Value> = map_memory()?
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "load_s": secs,
            "vm_rss_kib": status_kib(&status, "VmRSS:"),
            "rss_anon_kib": status_kib(&status, "RssAnon:"),
            "maps": maps,
        })
    );
    drop(tables);
    Ok(())
}

// ---------------------------------------------------------------- daemon path

/// The bench config with one policy for every prefix the bench adds.
pub fn planned(net: Ipv4Net, dscp: Option<u8>) -> plan::PlannedPrefix {
    plan::PlannedPrefix {
        net: IpNet::V4(net),
        registration: "bench".into(),
        origin: plan::Origin::Config,
        preference: plan::Preference::Microsoft,
        policy: Some(0),
        dscp,
        protect: Vec::new(),
        region: None,
        held: Vec::new(),
    }
}

/// `--compile-only COUNT`: edged's path for a whole config in a fresh
/// process: `desired::compile` then `desired::apply` into fresh maps, then a
/// reload where 1% of the prefixes change (half get another DSCP, half are
/// replaced by other prefixes), as edged makes it: a delta
/// (`desired::delta::plan_reload`), checked against the whole compile.
/// Prints JSON.
pub fn compile_only(n: usize) -> Result<()> {
    let mut plan = config::parse(CONFIG).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut generator = PrefixGen::new(1);
    for p in &plan.prefixes {
        generator.seen.insert(p.net);
    }
    plan.prefixes
        .extend((0..n).map(|_| planned(generator.v4(), None)));
    let mut ebpf = loader::load()?;
    let mut tables = Tables::take(&mut ebpf)?;
    let mut counters = Counters::take(&mut ebpf)?;
    let up = |_| PopHealth::UP;
    let empty = desired::dump(&tables)?;

    let t = Instant::now();
    let c = desired::compile(&plan, &State::default(), &empty, &up, &Choices::default())?;
    let compile_s = t.elapsed().as_secs_f64();
    eprintln!("  {n} prefixes: compiled in {compile_s:.2} s");
    let t = Instant::now();
    let changes = desired::apply(&mut tables, Some(&mut counters), &empty, &c.desired)?;
    let apply_s = t.elapsed().as_secs_f64();
    eprintln!(
        "  {n} prefixes: applied in {apply_s:.2} s ({} written)",
        changes.written
    );

    // The reload: 1% of the bench's prefixes change.
    let base = plan.prefixes.len() - n;
    let mut reloaded = plan.clone();
    let mut changed = 0;
    for (k, i) in (base..plan.prefixes.len()).step_by(100).enumerate() {
        let p = &mut reloaded.prefixes[i];
        if k % 2 == 0 {
            p.dscp = Some(46);
        } else {
            *p = planned(generator.v4(), None);
        }
        changed += 1;
    }
    let state = State {
        ids: c.ids.clone(),
        ..State::default()
    };
    // As edged reloads a file whose prefixes alone changed: a delta of the
    // running prefixes (`desired::delta::plan_reload`), its writes applied
    // with undo, then the running state changed in place.
    let port_ids: Vec<u32> = plan
        .ports
        .iter()
        .map(|p| c.ids.ports[&p.interface])
        .collect();
    let mut slots = desired::delta::Slots::of(&c.view.prefixes);
    let mut layout = c.layout.clone();
    let mut current = c.desired.clone();
    let mut view = c.view.clone();
    view.prefixes = std::sync::Arc::new(c.view.prefixes.to_vec());
    let t = Instant::now();
    let d = desired::delta::plan_reload(
        &desired::delta::Registered {
            plan: &plan,
            layout: &c.layout,
            current: &c.desired,
            prefixes: &c.view.prefixes,
            slots: &slots,
            table_ids: &c.table_ids,
            port_ids: &port_ids,
            file_removed: &|_| false,
        },
        &reloaded,
    )
    .context("a reload of prefixes alone is a delta")?;
    let reload_compile_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let reload = desired::apply_prefixes(
        &mut desired::Maps {
            tables: &mut tables,
            counters: Some(&mut counters),
        },
        &d.writes,
        &d.removals,
    )?;
    d.commit(desired::delta::ReloadTarget {
        layout: &mut layout,
        current: &mut current,
        prefixes: std::sync::Arc::make_mut(&mut view.prefixes),
        slots: &mut slots,
    });
    let reload_apply_s = t.elapsed().as_secs_f64();
    eprintln!(
        "  reload changing {changed} prefixes as a delta: worked out in {reload_compile_s:.3} s, applied in {reload_apply_s:.3} s ({} written, {} removed)",
        reload.written, reload.removed
    );
    // The whole compile it stands for, for comparison and as the check.
    let t = Instant::now();
    let c2 = desired::compile(&reloaded, &state, &c.desired, &up, &Choices::default())?;
    let reload_whole_s = t.elapsed().as_secs_f64();
    eprintln!("  the same reload compiled whole: {reload_whole_s:.2} s");
    ensure!(
        current == c2.desired && layout == c2.layout && view.prefixes == c2.view.prefixes,
        "the reload as a delta differs from the whole compile"
    );
    ensure!(
        slots == desired::delta::Slots::of(&c2.view.prefixes),
        "the reload as a delta gives other counter slots"
    );
    // What the maps hold is what was compiled.
    let held = tables.prefixes()?;
    ensure!(
        held.len() == c2.desired.prefixes.len()
            && held
                .iter()
                .all(|(net, e)| c2.desired.prefixes.get(net) == Some(e)),
        "the maps do not hold the reloaded config"
    );
    for p in reloaded.prefixes.iter().skip(base).step_by(997) {
        let want = c2.desired.prefixes[&p.net];
        let got = tables.lookup(p.net.addr())?;
        ensure!(
            got.is_some_and(|g| g.policy == want.policy),
            "lookup of {} in the DIR-24-8 tables",
            p.net
        );
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    println!(
        "{}",
        serde_json::json!({
            "compile_s": compile_s,
            "apply_s": apply_s,
            "written": changes.written,
            "reload_changed": changed,
            "reload_compile_s": reload_compile_s,
            "reload_apply_s": reload_apply_s,
            "reload_whole_s": reload_whole_s,
            "reload_written": reload.written,
            "reload_removed": reload.removed,
            "vm_rss_kib": status_kib(&status, "VmRSS:"),
            "rss_anon_kib": status_kib(&status, "RssAnon:"),
        })
    );
    Ok(())
}

/// One `--compile-only` run: (prefixes, compile s, apply s, changed, reload
/// compile s, reload apply s, RssAnon KiB).
#[derive(Clone, Copy, Default)]
pub struct FullLoad {
    pub prefixes: usize,
    pub compile_s: f64,
    pub apply_s: f64,
    pub changed: u64,
    pub reload_compile_s: f64,
    pub reload_apply_s: f64,
    /// The same reload compiled whole (as before deltas), s.
    pub reload_whole_s: f64,
    pub rss_anon_kib: u64,
}

pub fn full_loads(sizes: &Sizes) -> Result<Vec<FullLoad>> {
    let (lab, ns) = bench_lab("benchcp", "cp");
    let exe = std::env::current_exe()?;
    let mut out = Vec::new();
    for &n in &sizes.load {
        eprintln!("daemon path: config of {n} IPv4 prefixes");
        let o = netns_command(&ns, &exe)
            .args(["--compile-only", &n.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running the compile-only process")?;
        ensure!(o.status.success(), "compile-only of {n} prefixes failed");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
        let f = |k: &str| v[k].as_f64().with_context(|| k.to_string());
        out.push(FullLoad {
            prefixes: n,
            compile_s: f("compile_s")?,
            apply_s: f("apply_s")?,
            changed: v["reload_changed"].as_u64().unwrap_or(0),
            reload_compile_s: f("reload_compile_s")?,
            reload_apply_s: f("reload_apply_s")?,
            reload_whole_s: f("reload_whole_s")?,
            rss_anon_kib: v["rss_anon_kib"].as_u64().unwrap_or(0),
        });
    }
    drop(lab);
    Ok(out)
}

// ---------------------------------------------------------------- route sync

#[derive(Clone, Copy, Default)]
pub struct SyncRun {
    pub routes: usize,
    /// `ip -batch` alone.
    pub install_s: f64,
    /// From the batch's start until edgectl status shows every route in the maps.
    pub synced_s: f64,
    pub resyncs: u64,
    /// edged's VmRSS and RssAnon with every route in the maps, KiB.
    pub rss_kib: u64,
    pub anon_kib: u64,
}

/// An edged in a namespace follows table 200; `ip -batch` installs N
/// blackhole /32s in 10.0.0.0/8 there (routes only: nothing is sent).
pub fn route_sync(n: usize) -> Result<SyncRun> {
    let (lab, ns) = bench_lab("benchrt", "rt");
    let dir = std::env::temp_dir().join(format!("edge-bench-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("edged.toml");
    std::fs::write(
        &config,
        format!(
            "{CONFIG}\n[[route_sources]]\ntable = 200\nregistration = \"bgp\"\npolicy = \"to-cust\"\n"
        ),
    )?;
    let pin = PathBuf::from(format!("/sys/fs/bpf/edge-bench-rt-{}", std::process::id()));
    let edged = Edged::start(&ns, &config, &pin);
    let used = |edged: &Edged| -> u64 {
        edged.ctl_ok(&["status"])["maps"]["prefixes_v4"]["used"]
            .as_u64()
            .unwrap_or(0)
    };
    let base = used(&edged);
    let batch = dir.join("routes.batch");
    let mut text = String::with_capacity(n * 48);
    for i in 0..n as u32 {
        let a = Ipv4Addr::from((10u32 << 24) | i);
        let _ = writeln!(text, "route add blackhole {a}/32 table 200");
    }
    std::fs::write(&batch, text)?;
    let t = Instant::now();
    let mut ip = netns_command(&ns, std::path::Path::new("ip"))
        .arg("-batch")
        .arg(&batch)
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("ip -batch")?;
    let mut install_s = None;
    let mut shown = 0;
    let want = base + n as u64;
    loop {
        if install_s.is_none()
            && let Some(status) = ip.try_wait()?
        {
            ensure!(status.success(), "ip -batch failed");
            install_s = Some(t.elapsed().as_secs_f64());
            eprintln!("  ip -batch done after {:.1} s", install_s.unwrap());
        }
        let u = used(&edged);
        if u / 100_000 != shown {
            shown = u / 100_000;
            eprintln!(
                "  {} of {n} routes in the maps after {:.1} s",
                u.saturating_sub(base),
                t.elapsed().as_secs_f64()
            );
        }
        if u >= want && install_s.is_some() {
            break;
        }
        ensure!(
            t.elapsed() < Duration::from_secs(600),
            "route sync of {n} routes: {u} of {want} after 600 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let synced_s = t.elapsed().as_secs_f64();
    let s = edged.ctl_ok(&["status"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", edged.pid()))?;
    let run = SyncRun {
        routes: n,
        install_s: install_s.unwrap_or(synced_s),
        synced_s,
        resyncs: s["routes"]["resyncs"].as_u64().unwrap_or(0),
        rss_kib: status_kib(&status, "VmRSS:"),
        anon_kib: status_kib(&status, "RssAnon:"),
    };
    eprintln!(
        "route sync of {n} routes: all in the maps after {synced_s:.1} s (ip -batch {:.1} s), {} full dumps, edged VmRSS {} MiB",
        run.install_s,
        run.resyncs,
        run.rss_kib / 1024
    );
    drop(edged);
    drop(lab);
    std::fs::remove_dir_all(&dir)?;
    Ok(run)
}
