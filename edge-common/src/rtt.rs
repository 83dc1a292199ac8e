//! Customer latency, measured passively by the forwarder (docs/monitoring.md):
//! the round-trip time between this host and a customer host, from TCP
//! packets edge forwards anyway. A packet toward the customer that asks for
//! an answer (a SYN or SYN-ACK, or a new TCP timestamp value) is remembered
//! in its flow's [`RttState`]; the customer's packet that answers it (the
//! acknowledgement of that sequence number, or the echo of that timestamp)
//! gives one sample, which goes into the histogram of the prefix's counter
//! slot ([`RttBucketKey`], buckets from [`bucket`]). Nothing per sample
//! crosses to userspace: edged reads the histograms.

/// The customer side of a TCP flow: the key of `EDGE_RTT_FLOWS` (an LRU
/// hash whose size is `[limits] rtt_flows`). Both directions of a flow map
/// to the same key: the customer's address and port first.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttFlow {
    /// The customer host (IPv4 in the first 4 bytes, the rest zero).
    pub customer: [u8; 16],
    /// The other end.
    pub remote: [u8; 16],
    /// Ports as they sit in the TCP header (network byte order).
    pub customer_port: u16,
    pub remote_port: u16,
    /// [`crate::event_family`]: IPV4 or IPV6.
    pub family: u8,
    pub _pad: [u8; 3],
}
const _: () = assert!(core::mem::size_of::<RttFlow>() == 40);

/// Per-CPU room for the flow key, a new state and the packet's TCP facts
/// (`EDGE_RTT_SCR`, one entry): map helpers take keys and values by
/// pointer, and the measuring code keeps what it needs across helper
/// calls here; on the program's stack (or spilled there) they would push
/// the forwarder past the verifier's 512 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttScratch {
    pub flow: RttFlow,
    pub state: RttState,
    pub packet: RttPacket,
}

/// What the sampling code needs of the packet being measured.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttPacket {
    /// `Settings::rtt_interval_ns`.
    pub interval_ns: u64,
    /// TCP sequence and acknowledgement numbers (host order).
    pub seq: u32,
    pub ack: u32,
    /// TSval and TSecr (host order), if `has_ts`.
    pub ts_val: u32,
    pub ts_ecr: u32,
    /// The prefix counter slot.
    pub slot: u32,
    /// The flow's gate ([`RttGate`], by the hash of its packets from the
    /// customer) and pace ([`RttPace`], by that of its packets toward it).
    pub gate: u32,
    pub pace: u32,
    /// TCP flags.
    pub flags: u8,
    pub has_ts: u8,
    pub from_customer: u8,
    pub _pad: u8,
}
const _: () = assert!(core::mem::size_of::<RttPacket>() == 40);

/// One entry of `EDGE_RTT_GATE` (an array of [`crate::limits::RTT_GATES`]
/// entries indexed by [`gate`] of the flow hash the customer's packets
/// have, so shared by the flows that hash alike): whether anything awaits
/// an answer from the customer, and what answers. The program checks it
/// before it reads anything of a customer's packet past the TCP flags, so
/// that packets that answer nothing cost a few loads and compares (no
/// clock, no flow lookup; see `edge-ebpf/src/rtt.rs`, `wanted`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttGate {
    /// When a flow of this entry last asked for an answer (a handshake
    /// packet or a timestamp value toward the customer); 0: none awaited,
    /// so packets from the customer go no further.
    pub pending_ns: u64,
    /// What answers the asks awaited ([`gate_flags`]): the acknowledgement
    /// number that answers a handshake packet, the TSval whose echo
    /// answers a timestamp value (host order). Packets from the customer
    /// that carry neither go no further.
    pub await_ack: u32,
    pub await_ts: u32,
    /// [`gate_tag`] of the flow that asked ([`gate_flags::SHARED`] when
    /// another flow of this entry asks while one waits).
    pub owner: u32,
    /// [`gate_flags`].
    pub flags: u32,
}
const _: () = assert!(core::mem::size_of::<RttGate>() == 24);

/// One entry of `EDGE_RTT_PACE` (as many entries as the gates, indexed by
/// [`gate`] of the flow hash packets toward the customer have): the
/// per-flow interval between timestamp values, checked before anything of
/// a packet toward the customer past the TCP flags is read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttPace {
    /// Timestamp values are not looked at before this, by the coarse
    /// clock `EDGE_RTT_CLOCK`.
    pub next_ns: u64,
    /// The last TSval seen toward the customer: only the first segment
    /// carrying a value may take it.
    pub ts_seen: u32,
    /// The interval passed and the packet that found it so set `ts_seen`,
    /// so every later packet is seen: the next new TSval is the first
    /// segment carrying it.
    pub armed: u32,
}
const _: () = assert!(core::mem::size_of::<RttPace>() == 16);

/// `RttGate::flags`.
pub mod gate_flags {
    /// A handshake answer is awaited: `await_ack`.
    pub const HANDSHAKE: u32 = 1;
    /// A timestamp echo is awaited: `await_ts`.
    pub const TS: u32 = 2;
    /// Two flows of the gate wait at once: `await_*` hold the later one's
    /// only, so every packet from the customer of the gate's flows goes on
    /// to the flow lookup until the gate closes.
    pub const SHARED: u32 = 4;
}

/// A gate's pending mark older than this is stale (its answer lost or
/// its flow evicted): cleared by the next packet that looks.
pub const GATE_STALE_NS: u64 = 3 * TS_PENDING_NS;

/// How often edged writes `CLOCK_MONOTONIC` (the clock `bpf_ktime_get_ns`
/// reads) into `EDGE_RTT_CLOCK`: the gate's interval test uses this coarse
/// clock, one load, instead of reading the clock per packet; a flow's
/// interval is honoured to within this much. While nothing writes it (0:
/// never written, as under BPF_PROG_TEST_RUN without edged) every packet
/// takes the precise path.
pub const CLOCK_TICK_NS: u64 = 5_000_000;

/// The flow key's five words (customer address, remote address, ports and
/// family), as [`RttFlow`] lays them out in memory: addresses as
/// `Family::words` gives them, ports as they sit in the header.
#[inline(always)]
pub fn key_words(
    customer: [u64; 2],
    remote: [u64; 2],
    customer_port: u16,
    remote_port: u16,
    family: u8,
) -> [u64; 5] {
    [
        customer[0],
        customer[1],
        remote[0],
        remote[1],
        // Little endian, as the BPF target is (and the hosts edge runs on).
        u64::from(customer_port) | u64::from(remote_port) << 16 | u64::from(family) << 32,
    ]
}

/// The gate (and pace) index of a packet whose flow hash (the policy
/// tables' `flow_hash_v4`/`flow_hash_v6`) is `hash`: the forwarder has
/// computed it already.
#[inline(always)]
pub fn gate(hash: u32) -> u32 {
    hash & (crate::limits::RTT_GATES - 1)
}

/// A tag telling flows of one gate apart, from the flow key's five words.
#[inline(always)]
pub fn gate_tag(w: &[u64; 5]) -> u32 {
    let x = w[0]
        ^ w[1].rotate_left(11)
        ^ w[2].rotate_left(23)
        ^ w[3].rotate_left(37)
        ^ w[4].rotate_left(51);
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32 | 1
}

/// What a flow waits for from its customer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttState {
    /// `bpf_ktime_get_ns` when the SYN or SYN-ACK toward the customer was
    /// forwarded; 0: no handshake answer awaited.
    pub handshake_ns: u64,
    /// When the timestamp value `ts_val` toward the customer was forwarded;
    /// 0: no echo awaited.
    pub ts_ns: u64,
    /// When the last timestamp value was taken (the per-flow rate limit:
    /// one per `Settings::rtt_interval_ns`).
    pub ts_taken_ns: u64,
    /// The acknowledgement number that answers the handshake packet (its
    /// sequence number + 1, host order).
    pub handshake_ack: u32,
    /// The TSval awaiting its echo (host order).
    pub ts_val: u32,
    /// [`rtt_flags`].
    pub flags: u32,
    /// The last TSval seen toward the customer: a value is taken only on
    /// the first segment that carries it (later ones with the same value
    /// may be answered by an echo the first one caused: too short a sample).
    pub ts_seen: u32,
}
const _: () = assert!(core::mem::size_of::<RttState>() == 40);

/// A timestamp value awaiting its echo holds its flow's place this long at
/// most: a newer value is taken only once the echo came or this passed (an
/// echo lost, or a customer that never echoes), so a flow whose round
/// trip is longer than its interval still gives samples.
pub const TS_PENDING_NS: u64 = 1_000_000_000;

/// `RttState::flags`.
pub mod rtt_flags {
    /// The handshake packet was sent again (same sequence number): its
    /// answer cannot be matched to one of the copies (Karn's rule), so it
    /// gives no sample.
    pub const RETRANSMITTED: u32 = 1;
}

/// The key of `EDGE_RTT_HIST` (a per-CPU hash of sample counts, `u64`,
/// whose size is `[limits] rtt_buckets`): a prefix counter slot and a
/// histogram bucket ([`bucket`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RttBucketKey {
    pub slot: u32,
    pub bucket: u32,
}
const _: () = assert!(core::mem::size_of::<RttBucketKey>() == 8);

/// Indexes of the `EDGE_RTT_STATS` per-CPU counters (`packets` counts
/// events; `bytes` is unused).
pub mod rtt_stats {
    /// A handshake packet (SYN or SYN-ACK) toward a customer, remembered.
    pub const HANDSHAKE_SENT: u32 = 0;
    /// A handshake sample (the customer's answer matched).
    pub const HANDSHAKE_SAMPLES: u32 = 1;
    /// A retransmitted handshake packet: its answer will give no sample.
    pub const RETRANSMITTED: u32 = 2;
    /// An answer to a retransmitted handshake packet, not sampled.
    pub const AMBIGUOUS: u32 = 3;
    /// A timestamp value toward a customer, remembered.
    pub const TS_SENT: u32 = 4;
    /// A timestamp sample (the customer echoed it).
    pub const TS_SAMPLES: u32 = 5;
    /// Flow states created (`EDGE_RTT_FLOWS` inserts; when the map is full
    /// the least recently used flow is evicted, and its pending sample lost).
    pub const FLOWS: u32 = 6;
    /// A flow state that could not be created.
    pub const FLOW_FAILED: u32 = 7;
    /// A sample lost because `EDGE_RTT_HIST` was full (a new slot and
    /// bucket pair with no room): raise `[limits] rtt_buckets`.
    pub const HIST_FULL: u32 = 8;
    pub const COUNT: u32 = 9;
    /// Names, for metrics and `edgectl`, by index.
    pub const NAMES: [&str; COUNT as usize] = [
        "handshake_sent",
        "handshake_samples",
        "retransmitted",
        "ambiguous",
        "ts_sent",
        "ts_samples",
        "flows",
        "flow_failed",
        "hist_full",
    ];
}

/// Sub-buckets per power of two (2^5 = 32: a bucket is at most 1/32 of
/// its lower bound wide, about 3 %, so a bucket's midpoint is within 1.6 %
/// of any sample in it: ±1.3 ms at 80 ms).
pub const SUB_BITS: u32 = 5;
/// The first power of two with buckets of its own: 2^16 ns ≈ 65.5 µs.
/// Everything faster is bucket 0.
pub const MIN_EXP: u32 = 16;
/// The power of two where the buckets end: 2^34 ns ≈ 17.2 s. Everything
/// slower is the last bucket.
pub const MAX_EXP: u32 = 34;
/// Buckets per slot: the one below, 32 per power of two, the one above.
pub const BUCKETS: u32 = (MAX_EXP - MIN_EXP) * (1 << SUB_BITS) + 2;

/// The position of the highest set bit of `v` (> 0), without `ctlz`
/// (which BPF lacks): a fixed binary search the verifier follows.
#[inline(always)]
pub const fn log2(mut v: u64) -> u32 {
    let mut e = 0;
    if v >= 1 << 32 {
        e += 32;
        v >>= 32;
    }
    if v >= 1 << 16 {
        e += 16;
        v >>= 16;
    }
    if v >= 1 << 8 {
        e += 8;
        v >>= 8;
    }
    if v >= 1 << 4 {
        e += 4;
        v >>= 4;
    }
    if v >= 1 << 2 {
        e += 2;
        v >>= 2;
    }
    if v >= 1 << 1 {
        e += 1;
    }
    e
}

/// The histogram bucket of a round-trip time of `ns` nanoseconds:
/// log-linear, 32 buckets per power of two from 65.5 µs to 17.2 s.
#[inline(always)]
pub const fn bucket(ns: u64) -> u32 {
    if ns < 1 << MIN_EXP {
        return 0;
    }
    if ns >= 1 << MAX_EXP {
        return BUCKETS - 1;
    }
    let e = log2(ns);
    let sub = (ns >> (e - SUB_BITS)) as u32 & ((1 << SUB_BITS) - 1);
    1 + (e - MIN_EXP) * (1 << SUB_BITS) + sub
}

/// The bounds of bucket `b` in nanoseconds: `[low, high)`; the last bucket
/// has no upper bound (`u64::MAX`).
pub const fn bucket_bounds(b: u32) -> (u64, u64) {
    if b == 0 {
        return (0, 1 << MIN_EXP);
    }
    if b >= BUCKETS - 1 {
        return (1 << MAX_EXP, u64::MAX);
    }
    let i = b - 1;
    let e = MIN_EXP + i / (1 << SUB_BITS);
    let sub = (i % (1 << SUB_BITS)) as u64;
    let width = 1u64 << (e - SUB_BITS);
    let low = (1u64 << e) + sub * width;
    (low, low + width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_is_the_highest_bit() {
        for e in 0..64 {
            assert_eq!(log2(1 << e), e);
            if e > 0 {
                assert_eq!(log2((1 << e) | ((1 << e) - 1)), e);
            }
        }
    }

    #[test]
    fn buckets_cover_every_time_once_in_order() {
        // Every bucket's bounds contain what it gets, and they tile.
        let mut prev_high = 0;
        for b in 0..BUCKETS {
            let (low, high) = bucket_bounds(b);
            assert_eq!(
                low,
                prev_high,
                "bucket {b} starts where {} ends",
                b.wrapping_sub(1)
            );
            assert_eq!(bucket(low), b);
            if high != u64::MAX {
                assert_eq!(bucket(high - 1), b);
                assert!(high - low <= low.max(1 << MIN_EXP) / 32 || b == 0);
            }
            prev_high = high;
        }
        assert_eq!(prev_high, u64::MAX);
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(BUCKETS, 578);
    }

    #[test]
    fn the_range_the_issue_asks_for_has_buckets() {
        // 0.1 ms to 10 s fall in buckets of their own, not the ends.
        assert!(bucket(100_000) > 0);
        assert!(bucket(10_000_000_000) < BUCKETS - 1);
        // 20 ms and 80 ms: the bucket is at most 2.5 ms wide.
        for ms in [20u64, 80] {
            let (low, high) = bucket_bounds(bucket(ms * 1_000_000));
            assert!(low <= ms * 1_000_000 && ms * 1_000_000 < high);
            assert!(high - low <= 2_500_000, "{ms} ms: {low}..{high}");
        }
    }
}
