//! Prometheus metrics: the program's counters (summed over CPUs) and daemon
//! facts, encoded by prometheus-client in the OpenMetrics text format and
//! served over HTTP (`GET /metrics`) by [`endpoint`], on edged's runtime.

use prometheus_client::{
    encoding::{EncodeMetric, MetricEncoder, NoLabelSet, text::encode},
    metrics::{MetricType, TypedMetric, counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::{
    analytics::{self, Kind, RegistrationStats, Totals},
    dataplane::maps::{Count, Stats},
    desired::View,
    health::{RTT_BUCKETS, RttHistogram},
    latency::{Histogram, monitor::Totals as LatencyTotals},
};

pub mod endpoint;

pub use endpoint::{EndpointStats, raise_fd_limit, serve};

type Labels = Vec<(&'static str, String)>;

/// Every PoP's probe RTT histogram, as one metric family. By hand rather
/// than prometheus-client's `Histogram`: the counts live in the daemon
/// (a plain [`RttHistogram`] per PoP, published with the view), and a
/// scrape encodes them as they are.
#[derive(Debug)]
struct ProbeRtt(Vec<(Labels, RttHistogram)>);

impl TypedMetric for ProbeRtt {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for ProbeRtt {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, h) in &self.0 {
            let buckets: Vec<(f64, u64)> = RTT_BUCKETS
                .iter()
                .copied()
                .chain([f64::MAX]) // +Inf
                .zip(h.counts)
                .collect();
            encoder
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count(), &buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Customer RTT histograms (one per registration or region): the latency
/// layer's fine buckets folded into [`CUSTOMER_RTT_BUCKETS`]. By hand for
/// the same reason as [`ProbeRtt`].
#[derive(Debug)]
struct CustomerRtt(Vec<(Labels, Histogram)>);

/// Upper bounds of the customer RTT buckets, seconds: 1 ms to 10 s, a
/// 1-2-5 series (a metro customer to another continent's, and stalls).
pub const CUSTOMER_RTT_BUCKETS: [f64; 13] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

impl TypedMetric for CustomerRtt {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for CustomerRtt {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let les: Vec<std::time::Duration> = CUSTOMER_RTT_BUCKETS
            .iter()
            .map(|&s| std::time::Duration::from_secs_f64(s))
            .collect();
        for (labels, h) in &self.0 {
            let cumulative = h.cumulative(&les);
            let count = h.count();
            // prometheus-client takes each bucket's own count.
            let mut below = 0;
            let buckets: Vec<(f64, u64)> = CUSTOMER_RTT_BUCKETS
                .iter()
                .copied()
                .chain([f64::MAX]) // +Inf
                .zip(cumulative.iter().copied().chain([count]))
                .map(|(le, c)| {
                    let own = c - below;
                    below = c;
                    (le, own)
                })
                .collect();
            encoder
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(
                    h.approximate_sum().as_secs_f64(),
                    count,
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Customer latency as the daemon publishes it for the metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerFacts {
    /// `[latency]` is on.
    pub enabled: bool,
    /// Every sample since edged started, by registration and region.
    pub totals: LatencyTotals,
    /// (`registration NAME` / `region NAME`, degraded) of every group with
    /// an objective that has had a verdict.
    pub groups: Vec<(String, bool)>,
    pub degradations: u64,
    pub recoveries: u64,
    /// The kernel's sampling counters (`rtt_stats::NAMES`).
    pub counters: Vec<(&'static str, u64)>,
    /// Flows followed, and the flow table's size (counted every 10 s).
    pub flows: Option<(u64, u64)>,
}

/// Customer latency: histograms per registration and per region (bounded:
/// the config's registrations and regions), the objective verdicts, the
/// kernel's sampling counters.
fn customer_metrics(r: &mut Registry, f: &CustomerFacts) {
    if !f.enabled {
        return;
    }
    let of = |key: &'static str, m: &std::collections::BTreeMap<String, Histogram>| {
        CustomerRtt(
            m.iter()
                .map(|(name, h)| (vec![(key, name.clone())], h.clone()))
                .collect(),
        )
    };
    r.register(
        "customer_rtt_seconds",
        "Customer round-trip times (edge to customer host, passive TCP) since edged started, by registration",
        of("registration", &f.totals.registrations),
    );
    r.register(
        "customer_region_rtt_seconds",
        "Customer round-trip times since edged started, by the prefixes' region",
        of("region", &f.totals.regions),
    );
    let degraded = Family::<Labels, Gauge>::default();
    for (group, d) in &f.groups {
        let (kind, name) = group.split_once(' ').unwrap_or(("registration", group));
        degraded
            .get_or_create(&vec![
                ("kind", kind.to_string()),
                ("name", name.to_string()),
            ])
            .set(i64::from(*d));
    }
    r.register(
        "customer_latency_degraded",
        "1 while a registration or region is past its customer RTT objective",
        degraded,
    );
    let changes = Family::<Labels, Counter>::default();
    for (change, n) in [("degraded", f.degradations), ("recovered", f.recoveries)] {
        changes
            .get_or_create(&vec![("change", change.to_string())])
            .inc_by(n);
    }
    r.register(
        "customer_latency_events",
        "Customer latency degradations and recoveries since edged started",
        changes,
    );
    let sampling = Family::<Labels, Counter>::default();
    for (name, n) in &f.counters {
        sampling
            .get_or_create(&vec![("counter", name.to_string())])
            .inc_by(*n);
    }
    r.register(
        "customer_rtt_sampling",
        "The kernel's customer RTT sampling counters (docs/monitoring.md)",
        sampling,
    );
    if let Some((n, limit)) = f.flows {
        for (name, help, v) in [
            (
                "customer_rtt_flows",
                "TCP flows customer latency follows now",
                n,
            ),
            (
                "customer_rtt_flows_limit",
                "Size of the customer latency flow table ([limits] rtt_flows)",
                limit,
            ),
        ] {
            let g = Gauge::<i64>::default();
            g.set(v as i64);
            r.register(name, help, g);
        }
    }
}

/// Registers a packets/bytes counter pair and fills it from `rows`.
fn counter_pair(
    registry: &mut Registry,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, Count)>,
) {
    let packets = Family::<Labels, Counter>::default();
    let bytes = Family::<Labels, Counter>::default();
    for (labels, c) in rows {
        packets.get_or_create(&labels).inc_by(c.packets);
        bytes.get_or_create(&labels).inc_by(c.bytes);
    }
    registry.register(
        format!("{name}_packets"),
        format!("Packets {help}"),
        packets,
    );
    registry.register(format!("{name}_bytes"), format!("Bytes {help}"), bytes);
}

/// The prefix counters, as `view.prefix_metrics` says: per registration
/// (slots summed by their prefix's registration; `other` for the counter the
/// prefixes without a slot of their own share), and per prefix too. One
/// pass over the prefixes, whatever their number.
fn prefix_counters(r: &mut Registry, stats: &Stats, view: &View) {
    use crate::plan::PrefixMetrics;
    if view.prefix_metrics == PrefixMetrics::Off {
        return;
    }
    let slots = stats.prefixes.last().map_or(0, |(s, _)| *s as usize + 1);
    let mut row_of: Vec<Option<usize>> = vec![None; slots];
    for (i, p) in view.prefixes.iter().enumerate() {
        if p.counter_slot != 0
            && let Some(r) = row_of.get_mut(p.counter_slot as usize)
        {
            *r = Some(i);
        }
    }
    let row = |slot: u32| -> Option<&crate::desired::PrefixView> {
        row_of
            .get(slot as usize)
            .copied()
            .flatten()
            .filter(|_| slot != 0)
            .map(|i| &view.prefixes[i])
    };
    let mut by_registration: std::collections::BTreeMap<&str, Count> = Default::default();
    for &(slot, c) in &stats.prefixes {
        let name = row(slot).map_or("other", |p| &*p.registration);
        let t = by_registration.entry(name).or_default();
        t.packets += c.packets;
        t.bytes += c.bytes;
    }
    counter_pair(
        r,
        "registration",
        "classified into the prefixes of each registration (other: prefixes without a counter slot of their own)",
        by_registration
            .into_iter()
            .map(|(name, c)| (vec![("registration", name.to_string())], c)),
    );
    if view.prefix_metrics != PrefixMetrics::Prefix {
        return;
    }
    counter_pair(
        r,
        "prefix",
        "classified into each registered prefix",
        stats.prefixes.iter().map(|&(slot, c)| {
            let labels = match row(slot) {
                Some(p) => vec![
                    ("prefix", p.prefix.to_string()),
                    ("registration", p.registration.to_string()),
                ],
                None => vec![("prefix", "other".into()), ("registration", "other".into())],
            };
            (labels, c)
        }),
    );
}

/// What edged found when it checked the host (not from the maps).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostFacts {
    /// (port, times) its XDP link was found gone and attached again.
    pub link_repairs: Vec<(String, u64)>,
    /// (interface, kind, times) of every interface change seen.
    pub interface_events: Vec<(String, &'static str, u64)>,
    /// Whether the pins outlive edged (`None`: it could not tell).
    pub pins_persistent: Option<bool>,
    /// (port, peer, receives) of every egress veth port: whether frames XDP
    /// redirects into it reach its peer (`None`: edged cannot tell).
    pub veth_peers: Vec<(String, String, Option<bool>)>,
}

/// Route analytics' figures (BMP), read from the engine at each scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteFacts {
    pub registrations: std::collections::BTreeMap<String, RegistrationStats>,
    pub totals: Totals,
}

impl RouteFacts {
    pub fn of(engine: &analytics::Engine) -> Self {
        Self {
            registrations: engine.registration_stats(),
            totals: engine.totals.clone(),
        }
    }
}

/// Route analytics: per registration and anomaly kind (a bounded set:
/// the config's registrations times five kinds), and the BMP ingest.
fn route_metrics(r: &mut Registry, f: &RouteFacts) {
    let gauge = |r: &mut Registry, name: &str, help: &str, value: i64| {
        let g = Gauge::<i64>::default();
        g.set(value);
        r.register(name, help, g);
    };
    let active = Family::<Labels, Gauge>::default();
    let raised = Family::<Labels, Counter>::default();
    let visible = Family::<Labels, Gauge>::default();
    let registered = Family::<Labels, Gauge>::default();
    let best = Family::<Labels, Gauge>::default();
    let shortest = Family::<Labels, Gauge>::default();
    for (name, s) in &f.registrations {
        for kind in Kind::ALL {
            let labels = vec![
                ("registration", name.clone()),
                ("kind", kind.as_str().to_string()),
            ];
            active
                .get_or_create(&labels)
                .set(s.active.get(&kind).copied().unwrap_or(0) as i64);
            raised
                .get_or_create(&labels)
                .inc_by(s.raised.get(&kind).copied().unwrap_or(0));
        }
        let labels = vec![("registration", name.clone())];
        visible.get_or_create(&labels).set(s.visible as i64);
        registered.get_or_create(&labels).set(s.prefixes as i64);
        if let Some(h) = s.best_hops {
            best.get_or_create(&labels).set(i64::from(h));
        }
        if let Some(h) = s.shortest_hops {
            shortest.get_or_create(&labels).set(i64::from(h));
        }
    }
    r.register(
        "route_anomalies",
        "Active route anomalies (BMP) by registration and kind: origin_hijack, sub_prefix_hijack, route_leak, visibility_loss, as_hops",
        active,
    );
    r.register(
        "route_anomalies_raised",
        "Route anomalies raised since edged started, by registration and kind",
        raised,
    );
    r.register(
        "route_visible_prefixes",
        "Registered prefixes of the registration that at least one monitored peer announces",
        visible,
    );
    r.register(
        "route_registered_prefixes",
        "Registered prefixes of the registration that route analytics monitors",
        registered,
    );
    r.register(
        "route_as_hops_best",
        "The AS-path length of the shortest current legitimate path to the registration, over the monitored peers",
        best,
    );
    r.register(
        "route_as_hops_shortest",
        "The shortest AS-path length to the registration seen since edged started",
        shortest,
    );
    let t = &f.totals;
    gauge(
        r,
        "bmp_sessions",
        "BMP sessions open now",
        t.sessions as i64,
    );
    gauge(
        r,
        "route_paths",
        "Paths kept by route analytics (registered prefixes and their more-specifics, per monitored peer and RIB)",
        t.paths as i64,
    );
    for (name, help, n) in [
        (
            "bmp_sessions_opened",
            "BMP sessions accepted since edged started",
            t.sessions_total,
        ),
        ("bmp_messages", "BMP messages applied", t.messages),
        (
            "bmp_announcements",
            "Prefixes announced in BMP route monitoring (kept or not)",
            t.announcements,
        ),
        (
            "bmp_withdrawals",
            "Prefixes withdrawn in BMP route monitoring",
            t.withdrawals,
        ),
        (
            "bmp_malformed",
            "BMP sessions closed because a message was malformed",
            t.malformed,
        ),
        (
            "bmp_echoed",
            "Prefixes announced with the monitored router's own AS in their path (a peer echoing the router's route back): not kept",
            t.echoed,
        ),
    ] {
        let c = Counter::<u64>::default();
        c.inc_by(n);
        r.register(name, help, c);
    }
}

/// The exposition for one snapshot of the counters (and of route
/// analytics, when `[bmp]` is on).
pub fn render(
    stats: &Stats,
    view: &View,
    host: &HostFacts,
    routes: Option<&RouteFacts>,
    customers: &CustomerFacts,
    endpoint: &EndpointStats,
    uptime_seconds: u64,
) -> String {
    let mut root = Registry::default();
    process_metrics(&mut root);
    let r = root.sub_registry_with_prefix("edge");
    let named = |key: &'static str, rows: &[(&'static str, Count)]| {
        rows.iter()
            .map(move |(n, c)| (vec![(key, n.to_string())], *c))
            .collect::<Vec<_>>()
    };
    counter_pair(
        r,
        "action",
        "by XDP action",
        named("action", &stats.actions),
    );
    counter_pair(
        r,
        "reason",
        "by the reason for their action",
        named("reason", &stats.reasons),
    );
    prefix_counters(r, stats, view);
    counter_pair(
        r,
        "pop",
        "sent to each PoP",
        stats.pops.iter().map(|&(id, c)| {
            let name = view
                .pop_name(id)
                .map_or_else(|| id.to_string(), str::to_string);
            (vec![("pop", name)], c)
        }),
    );
    counter_pair(
        r,
        "port_received",
        "received on each port",
        stats.ports.iter().map(|&(id, c)| {
            let (name, role, domain) = view
                .port(id)
                .map_or((id.to_string(), "unknown", "public".to_string()), |p| {
                    (p.name.clone(), p.role, p.domain.clone())
                });
            (
                vec![
                    ("port", name),
                    ("role", role.to_string()),
                    ("domain", domain),
                ],
                c,
            )
        }),
    );
    let gauge = |r: &mut Registry, name: &str, help: &str, value: i64| {
        let g = Gauge::<i64>::default();
        g.set(value);
        r.register(name, help, g);
    };
    let info = Family::<Labels, Gauge>::default();
    info.get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_string())])
        .set(1);
    r.register("build_info", "edged build information", info);
    gauge(
        r,
        "uptime_seconds",
        "Seconds since edged started",
        uptime_seconds as i64,
    );
    gauge(
        r,
        "registered_prefixes",
        "Registered prefixes in the running config",
        view.prefixes.len() as i64,
    );
    gauge(
        r,
        "pops",
        "PoPs in the running config",
        view.pops.len() as i64,
    );
    gauge(
        r,
        "config_generation",
        "Changes applied since edged started (1 = the config at start)",
        view.generation as i64,
    );
    let drained = Family::<Labels, Gauge>::default();
    for p in &view.pops {
        drained
            .get_or_create(&vec![("pop", p.name.clone())])
            .set(i64::from(p.drained));
    }
    r.register(
        "pop_drained",
        "1 when the operator drained the PoP",
        drained,
    );
    let shares = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for t in view.policies.iter().flat_map(|p| &p.tables) {
        for (pop, slots) in &t.shares {
            shares
                .get_or_create(&vec![("policy", t.key.clone()), ("pop", pop.clone())])
                .set(f64::from(*slots) / edge_common::POLICY_SLOTS as f64);
        }
    }
    r.register(
        "policy_share",
        "Share of a policy's flows each PoP takes (none: to the kernel)",
        shares,
    );
    type FGauge = Gauge<f64, std::sync::atomic::AtomicU64>;
    let up = Family::<Labels, Gauge>::default();
    let rtt = Family::<Labels, FGauge>::default();
    let min_rtt = Family::<Labels, FGauge>::default();
    let loss = Family::<Labels, FGauge>::default();
    for h in &view.health {
        let l = vec![("pop", h.pop.clone())];
        up.get_or_create(&l).set(i64::from(h.up));
        if let Some(ms) = h.rtt_ms {
            rtt.get_or_create(&l).set(ms / 1e3);
        }
        if let Some(ms) = h.min_rtt_ms {
            min_rtt.get_or_create(&l).set(ms / 1e3);
        }
        loss.get_or_create(&l).set(h.loss);
    }
    r.register(
        "pop_up",
        "1 when the PoP takes traffic (healthy and not drained)",
        up,
    );
    r.register(
        "pop_rtt_seconds",
        "Smoothed probe round-trip time (EWMA, alpha 1/8)",
        rtt,
    );
    r.register(
        "pop_rtt_min_seconds",
        "Lowest probe round-trip time of the recent probes",
        min_rtt,
    );
    r.register(
        "pop_probe_rtt_seconds",
        "Probe round-trip times since edged started (answered probes)",
        ProbeRtt(
            view.health
                .iter()
                .filter(|h| h.rtt_histogram.count() > 0)
                .map(|h| (vec![("pop", h.pop.clone())], h.rtt_histogram))
                .collect(),
        ),
    );
    r.register(
        "pop_probe_loss_ratio",
        "Share of the recent probes that failed",
        loss,
    );
    let fallbacks = Counter::<u64>::default();
    fallbacks.inc_by(view.fallbacks);
    r.register(
        "policy_fallbacks",
        "Times a policy table fell back because every member was down",
        fallbacks,
    );
    let events = Family::<Labels, Counter>::default();
    for (outcome, n) in &stats.events {
        events
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc_by(*n);
    }
    r.register(
        "protection_events",
        "Protection events in the kernel: sent to edged, or not (rate limit, full ring)",
        events,
    );
    let received = Family::<Labels, Counter>::default();
    for ((prefix, port), n) in &view.protection {
        received
            .get_or_create(&vec![("prefix", prefix.clone()), ("port", port.clone())])
            .inc_by(*n);
    }
    r.register(
        "protection_events_received",
        "Protection events edged received, by prefix (registration) and port",
        received,
    );
    let used = Family::<Labels, Gauge>::default();
    let limit = Family::<Labels, Gauge>::default();
    for (map, u, l) in &view.maps {
        used.get_or_create(&vec![("map", map.to_string())])
            .set(i64::from(*u));
        limit
            .get_or_create(&vec![("map", map.to_string())])
            .set(i64::from(*l));
    }
    r.register("map_entries", "Entries in use per map", used);
    gauge(
        r,
        "routes",
        "Routes in the followed kernel tables (route sync)",
        view.routes.routes as i64,
    );
    gauge(
        r,
        "routes_skipped",
        "Routes left out because a prefix map is full",
        view.routes.skipped as i64,
    );
    gauge(
        r,
        "routes_martian",
        "Routes left out because they lie in a special-purpose range no router forwards",
        view.routes.martians as i64,
    );
    let resyncs = Counter::<u64>::default();
    resyncs.inc_by(view.routes.resyncs);
    r.register(
        "route_resyncs",
        "Full dumps of the followed tables (start, table change, netlink overrun)",
        resyncs,
    );
    r.register("map_limit_entries", "Entries each map can hold", limit);
    let receives = Family::<Labels, Gauge>::default();
    for (port, peer, r) in &host.veth_peers {
        receives
            .get_or_create(&vec![("port", port.clone()), ("peer", peer.clone())])
            .set(i64::from(*r == Some(true)));
    }
    r.register(
        "veth_peer_receives",
        "1 when frames XDP redirects into the veth port reach its peer; 0 when the peer drops them or edged cannot tell (edgectl status says which)",
        receives,
    );
    gauge(
        r,
        "pins_persistent",
        "1 when the pin directory is visible outside edged's mount namespace, so the data plane outlives edged; 0 when not or unknown",
        i64::from(host.pins_persistent == Some(true)),
    );
    let repairs = Family::<Labels, Counter>::default();
    for (port, n) in &host.link_repairs {
        repairs
            .get_or_create(&vec![("port", port.clone())])
            .inc_by(*n);
    }
    r.register(
        "link_repairs",
        "Times a port's XDP link was found gone (its pin deleted, the interface recreated) and attached again",
        repairs,
    );
    endpoint_metrics(r, endpoint);
    if let Some(f) = routes {
        route_metrics(r, f);
    }
    customer_metrics(r, customers);
    let changes = Family::<Labels, Counter>::default();
    for (interface, event, n) in &host.interface_events {
        changes
            .get_or_create(&vec![
                ("interface", interface.clone()),
                ("event", event.to_string()),
            ])
            .inc_by(*n);
    }
    r.register(
        "interface_events",
        "Changes of an interface the config names: vanished (deleted or renamed away), returned, replaced (deleted and created again), mac_changed, mtu_changed",
        changes,
    );
    let mut out = String::new();
    encode(&mut out, &root).expect("encoding into a String cannot fail");
    out
}

/// The standard `process_*` metrics (as Prometheus client libraries export
/// them, unprefixed, so that the usual dashboards and alerts apply): CPU
/// time, memory, file descriptors, threads, start time. A field /proc
/// cannot give is left out.
fn process_metrics(r: &mut Registry) {
    let Ok(me) = procfs::process::Process::myself() else {
        return;
    };
    let ticks = procfs::ticks_per_second() as f64;
    type FGauge = Gauge<f64, std::sync::atomic::AtomicU64>;
    let gauge = |r: &mut Registry, name: &str, help: &str, v: f64| {
        let g = FGauge::default();
        g.set(v);
        r.register(name, help, g);
    };
    if let Ok(st) = me.stat() {
        let cpu = prometheus_client::metrics::counter::Counter::<f64, std::sync::atomic::AtomicU64>::default();
        cpu.inc_by((st.utime + st.stime) as f64 / ticks);
        r.register(
            "process_cpu_seconds",
            "User and system CPU time spent, seconds",
            cpu,
        );
        gauge(
            r,
            "process_resident_memory_bytes",
            "Resident memory size, bytes",
            (st.rss * procfs::page_size()) as f64,
        );
        gauge(
            r,
            "process_virtual_memory_bytes",
            "Virtual memory size, bytes",
            st.vsize as f64,
        );
        gauge(
            r,
            "process_threads",
            "Threads in the process",
            st.num_threads as f64,
        );
        if let Ok(boot) = procfs::boot_time_secs() {
            gauge(
                r,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, seconds",
                boot as f64 + st.starttime as f64 / ticks,
            );
        }
    }
    if let Ok(n) = me.fd_count() {
        gauge(r, "process_open_fds", "Open file descriptors", n as f64);
    }
    if let Ok(l) = me.limits()
        && let procfs::process::LimitValue::Value(max) = l.max_open_files.soft_limit
    {
        gauge(
            r,
            "process_max_fds",
            "Maximum number of open file descriptors",
            max as f64,
        );
    }
}

/// The metrics endpoint's own connections (docs/metrics.md).
fn endpoint_metrics(r: &mut Registry, e: &EndpointStats) {
    let gauge = |r: &mut Registry, name: &str, help: &str, value: u64| {
        let g = Gauge::<i64>::default();
        g.set(value as i64);
        r.register(name, help, g);
    };
    let counter = |r: &mut Registry, name: &str, help: &str, value: u64| {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        r.register(name, help, c);
    };
    gauge(
        r,
        "metrics_connections",
        "Connections to the metrics endpoint open now",
        e.open,
    );
    gauge(
        r,
        "metrics_connections_limit",
        "Connections the metrics endpoint holds open at most",
        e.limit,
    );
    counter(
        r,
        "metrics_connections_accepted",
        "Connections the metrics endpoint accepted",
        e.accepted,
    );
    counter(
        r,
        "metrics_connections_rejected",
        "Connections answered 503 and closed at once: the limit was reached and every open connection had a request in progress that was moving",
        e.rejected,
    );
    counter(
        r,
        "metrics_connections_evicted",
        "Connections closed to make room for a new one (limit reached, or no file descriptor left): the oldest still waiting for its request, else the one whose response moved no byte for longest",
        e.evicted,
    );
    counter(
        r,
        "metrics_connections_timed_out",
        "Connections closed because the request head did not arrive in time or the connection outlived its deadline",
        e.timed_out,
    );
    counter(
        r,
        "metrics_accept_errors",
        "Failures to accept a connection (such as no file descriptor left), each retried after a pause",
        e.accept_errors,
    );
}

/// The classic Prometheus text format (0.0.4) of an OpenMetrics exposition
/// holding counters and gauges only: counter families are named with their
/// `_total` suffix, and there is no `# EOF`.
pub fn classic_text(openmetrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in openmetrics.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|l| l.strip_suffix(" counter"))
        {
            counters.insert(name.to_string());
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((p, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out += &format!("{p}{name}{suffix} {tail}\n");
            }
            None => {
                out += line;
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_and_labels() {
        use crate::desired::{PopView, PortView, PrefixView};
        let view = View {
            generation: 3,
            ports: vec![PortView {
                id: 0,
                name: "bb0".into(),
                interface: "bb0".into(),
                vlan: vec![],
                domain: "public".into(),
                role: "backbone",
                ifindex: 7,
                absent: false,
            }],
            pops: vec![PopView {
                id: 0,
                name: "ams".into(),
                interface: "bb0".into(),
                port: None,
                vlan: "keep".into(),
                domain: "public".into(),
                mac: "02:00:00:00:00:01".into(),
                encap: vec![],
                region: None,
                probe: None,
                drained: true,
                mtu: 1500,
            }],
            health: vec![crate::desired::PopHealthView {
                pop: "ams".into(),
                state: "down",
                up: false,
                down_reason: None,
                since_seconds: Some(3.0),
                rtt_ms: Some(1.5),
                min_rtt_ms: Some(1.0),
                loss: 0.25,
                probes: 20,
                rtt_histogram: {
                    let mut h = crate::health::RttHistogram::default();
                    for ms in [0.7, 1.5, 30.0] {
                        h.observe(std::time::Duration::from_secs_f64(ms / 1e3));
                    }
                    h
                },
            }],
            fallbacks: 2,
            protection: vec![(("192.0.2.0/24 (contoso)".into(), "peer1".into()), 3)],
            prefixes: std::sync::Arc::new(vec![PrefixView {
                prefix: "192.0.2.0/24".parse().unwrap(),
                registration: "contoso".into(),
                preference: "microsoft",
                policy: Some(std::sync::Arc::from("pop:ams")),
                dscp: None,
                protect: vec![],
                source: crate::plan::Origin::Config,
                counter_slot: 1,
            }]),
            policies: vec![crate::desired::PolicyView {
                name: "pop:ams".into(),
                domain: "public".into(),
                method: "priority",
                members: vec![],
                tables: vec![crate::desired::TableView {
                    id: 0,
                    key: "pop:ams".into(),
                    shares: vec![("ams".into(), 766), ("none".into(), 255)],
                    fallback: None,
                }],
            }],
            maps: vec![("EDGE_PFX_V4", 1, 16)],
            prefix_metrics: crate::plan::PrefixMetrics::Prefix,
            ..View::default()
        };
        let c = Count {
            packets: 7,
            bytes: 700,
        };
        let stats = Stats {
            actions: vec![("redirect", c)],
            reasons: vec![("policy", c)],
            prefixes: vec![(1, c)],
            pops: vec![(0, c)],
            ports: vec![(0, c)],
            events: vec![("sent", 3), ("rate_limited", 9), ("ring_full", 0)],
        };
        let host = HostFacts {
            link_repairs: vec![("peer0".into(), 2)],
            interface_events: vec![("bb0".into(), "vanished", 1)],
            pins_persistent: Some(true),
            veth_peers: vec![("bb0".into(), "eth0".into(), Some(false))],
        };
        let endpoint = EndpointStats {
            open: 1,
            limit: 64,
            accepted: 9,
            rejected: 2,
            evicted: 3,
            timed_out: 4,
            accept_errors: 5,
        };
        let text = render(
            &stats,
            &view,
            &host,
            None,
            &CustomerFacts::default(),
            &endpoint,
            42,
        );
        for line in [
            "edge_action_packets_total{action=\"redirect\"} 7",
            "edge_reason_bytes_total{reason=\"policy\"} 700",
            "edge_prefix_packets_total{prefix=\"192.0.2.0/24\",registration=\"contoso\"} 7",
            "edge_registration_packets_total{registration=\"contoso\"} 7",
            "edge_registration_bytes_total{registration=\"contoso\"} 700",
            "edge_pop_packets_total{pop=\"ams\"} 7",
            "edge_port_received_packets_total{port=\"bb0\",role=\"backbone\",domain=\"public\"} 7",
            "edge_build_info{version=\"0.1.0\"} 1",
            "edge_uptime_seconds 42",
            "edge_registered_prefixes 1",
            "edge_config_generation 3",
            "edge_pop_drained{pop=\"ams\"} 1",
            "edge_policy_share{policy=\"pop:ams\",pop=\"ams\"} 0.7502448579823702",
            "edge_policy_share{policy=\"pop:ams\",pop=\"none\"} 0.24975514201762978",
            "edge_map_entries{map=\"EDGE_PFX_V4\"} 1",
            "edge_pop_up{pop=\"ams\"} 0",
            "edge_pop_rtt_seconds{pop=\"ams\"} 0.0015",
            "edge_pop_rtt_min_seconds{pop=\"ams\"} 0.001",
            "edge_pop_probe_loss_ratio{pop=\"ams\"} 0.25",
            "# TYPE edge_pop_probe_rtt_seconds histogram",
            "edge_pop_probe_rtt_seconds_count{pop=\"ams\"} 3",
            "edge_pop_probe_rtt_seconds_bucket{le=\"0.0005\",pop=\"ams\"} 0",
            "edge_pop_probe_rtt_seconds_bucket{le=\"0.001\",pop=\"ams\"} 1",
            "edge_pop_probe_rtt_seconds_bucket{le=\"0.002\",pop=\"ams\"} 2",
            "edge_pop_probe_rtt_seconds_bucket{le=\"0.05\",pop=\"ams\"} 3",
            "edge_pop_probe_rtt_seconds_bucket{le=\"+Inf\",pop=\"ams\"} 3",
            "edge_policy_fallbacks_total 2",
            "edge_protection_events_total{outcome=\"rate_limited\"} 9",
            "edge_protection_events_received_total{prefix=\"192.0.2.0/24 (contoso)\",port=\"peer1\"} 3",
            "edge_map_limit_entries{map=\"EDGE_PFX_V4\"} 16",
            "edge_veth_peer_receives{port=\"bb0\",peer=\"eth0\"} 0",
            "edge_pins_persistent 1",
            "edge_link_repairs_total{port=\"peer0\"} 2",
            "edge_metrics_connections 1",
            "edge_metrics_connections_limit 64",
            "edge_metrics_connections_accepted_total 9",
            "edge_metrics_connections_rejected_total 2",
            "edge_metrics_connections_evicted_total 3",
            "edge_metrics_connections_timed_out_total 4",
            "edge_metrics_accept_errors_total 5",
            "edge_interface_events_total{interface=\"bb0\",event=\"vanished\"} 1",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        let classic = classic_text(&text);
        for line in [
            "# HELP edge_action_packets_total Packets by XDP action.",
            "# TYPE edge_action_packets_total counter",
            "edge_action_packets_total{action=\"redirect\"} 7",
            "# TYPE edge_uptime_seconds gauge",
        ] {
            assert!(
                classic.lines().any(|l| l == line),
                "missing {line:?} in:\n{classic}"
            );
        }
        assert!(!classic.contains("# EOF"));
        // This process's own figures, unprefixed as client libraries name
        // them.
        let value = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in:\n{text}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(
            text.contains("# TYPE process_cpu_seconds counter"),
            "{text}"
        );
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_threads") >= 1.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "{start} vs {now}"
        );
    }
}

#[cfg(test)]
mod cardinality {
    use std::sync::Arc;

    use super::*;
    use crate::{desired::PrefixView, plan::PrefixMetrics};

    /// `prefix_metrics`: per registration by default (slots summed, `other`
    /// for the shared slot), per prefix too with "prefix", none with "off".
    #[test]
    fn prefix_series_follow_the_setting() {
        let row = |net: &str, registration: &str, slot| PrefixView {
            prefix: net.parse().unwrap(),
            registration: Arc::from(registration),
            preference: "microsoft",
            policy: None,
            dscp: None,
            protect: vec![],
            source: crate::plan::Origin::Config,
            counter_slot: slot,
        };
        let mut view = View {
            prefixes: Arc::new(vec![
                row("192.0.2.0/25", "contoso", 1),
                row("192.0.2.128/25", "contoso", 2),
                row("198.51.100.0/24", "fabrikam", 3),
                row("203.0.113.0/24", "late", 0),
            ]),
            ..View::default()
        };
        let c = |packets| Count {
            packets,
            bytes: packets * 100,
        };
        let stats = Stats {
            prefixes: vec![(0, c(5)), (1, c(1)), (2, c(2)), (3, c(4))],
            ..Stats::default()
        };
        let text = |view: &View| {
            render(
                &stats,
                view,
                &HostFacts::default(),
                None,
                &CustomerFacts::default(),
                &EndpointStats::default(),
                1,
            )
        };
        let lines = |t: &str, name: &str| -> Vec<String> {
            let mut v: Vec<String> = t
                .lines()
                .filter(|l| l.starts_with(name))
                .map(str::to_string)
                .collect();
            v.sort();
            v
        };
        let default = text(&view);
        assert_eq!(
            lines(&default, "edge_registration_packets_total"),
            [
                "edge_registration_packets_total{registration=\"contoso\"} 3",
                "edge_registration_packets_total{registration=\"fabrikam\"} 4",
                "edge_registration_packets_total{registration=\"other\"} 5",
            ]
        );
        assert!(lines(&default, "edge_prefix_").is_empty(), "{default}");
        view.prefix_metrics = PrefixMetrics::Prefix;
        let all = text(&view);
        assert_eq!(lines(&all, "edge_prefix_packets_total").len(), 4, "{all}");
        assert!(
            all.contains("edge_prefix_bytes_total{prefix=\"other\",registration=\"other\"} 500")
        );
        assert_eq!(lines(&all, "edge_registration_packets_total").len(), 3);
        view.prefix_metrics = PrefixMetrics::Off;
        let off = text(&view);
        assert!(
            lines(&off, "edge_prefix_").is_empty() && lines(&off, "edge_registration_").is_empty()
        );
    }
}

#[cfg(test)]
mod dashboard {
    /// Every metric the shipped Grafana dashboard queries is one edged
    /// serves (names from docs/metrics.md's table, which the exposition test
    /// pins down).
    #[test]
    fn the_dashboard_queries_only_served_metrics() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let dash: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("../dist/grafana/edge.json")).unwrap(),
        )
        .unwrap();
        let docs = std::fs::read_to_string(dir.join("../docs/metrics.md")).unwrap();
        let mut checked = 0;
        for panel in dash["panels"].as_array().unwrap() {
            for t in panel["targets"].as_array().unwrap() {
                let expr = t["expr"].as_str().unwrap();
                for name in expr
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|w| w.starts_with("edge_"))
                {
                    assert!(
                        docs.contains(&format!("`{name}`")),
                        "panel {:?} queries {name}, which docs/metrics.md does not list",
                        panel["title"]
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 20, "{checked} metric references");
    }
}

#[cfg(test)]
mod customers {
    use std::collections::BTreeMap;

    use edge_common::rtt::bucket;

    use super::*;

    /// The fine buckets fold into the 1-2-5 bounds, cumulatively; the
    /// series are per registration and region only; off: no series.
    #[test]
    fn customer_rtt_histograms_fold_into_the_published_buckets() {
        let mut h = Histogram::default();
        for ms in [1u64, 3, 3, 30, 3000] {
            // Inside each bucket, away from the bounds.
            h.add_bucket(bucket(ms * 1_000_000 - 10_000), 1);
        }
        let facts = CustomerFacts {
            enabled: true,
            totals: LatencyTotals {
                registrations: BTreeMap::from([("contoso".to_string(), h.clone())]),
                regions: BTreeMap::from([("europe > ie".to_string(), h)]),
            },
            groups: vec![("registration contoso".into(), true)],
            degradations: 1,
            recoveries: 0,
            counters: vec![("handshake_samples", 5)],
            flows: Some((3, 1024)),
        };
        let mut r = Registry::default();
        customer_metrics(&mut r, &facts);
        let mut text = String::new();
        encode(&mut text, &r).unwrap();
        for line in [
            "customer_rtt_seconds_bucket{le=\"0.001\",registration=\"contoso\"} 1",
            "customer_rtt_seconds_bucket{le=\"0.002\",registration=\"contoso\"} 1",
            "customer_rtt_seconds_bucket{le=\"0.005\",registration=\"contoso\"} 3",
            "customer_rtt_seconds_bucket{le=\"0.05\",registration=\"contoso\"} 4",
            "customer_rtt_seconds_bucket{le=\"5.0\",registration=\"contoso\"} 5",
            "customer_rtt_seconds_bucket{le=\"+Inf\",registration=\"contoso\"} 5",
            "customer_rtt_seconds_count{registration=\"contoso\"} 5",
            "customer_region_rtt_seconds_count{region=\"europe > ie\"} 5",
            "customer_latency_degraded{kind=\"registration\",name=\"contoso\"} 1",
            "customer_latency_events_total{change=\"degraded\"} 1",
            "customer_rtt_sampling_total{counter=\"handshake_samples\"} 5",
            "customer_rtt_flows 3",
            "customer_rtt_flows_limit 1024",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        let mut r = Registry::default();
        customer_metrics(&mut r, &CustomerFacts::default());
        let mut text = String::new();
        encode(&mut text, &r).unwrap();
        assert!(!text.contains("customer"), "{text}");
    }
}
