//! Customer latency: round-trip samples between this host and customer
//! hosts, from the TCP packets the forwarder sends anyway (the model is
//! `edge_common::rtt`; the method is ePPing's, xdp-project's pping, with
//! the handshake added). Runs only for forwarded TCP packets of a registered
//! prefix, and only with `Settings::rtt` set.
//!
//! Toward the customer (classified by destination) a packet that asks for
//! an answer is remembered in its flow's state: a SYN or SYN-ACK (the
//! answer acknowledges its sequence number + 1), else a new TCP timestamp
//! value (the answer echoes it), at most one per flow per
//! `Settings::rtt_interval_ns`. From the customer (classified by source)
//! the packet that answers gives one sample into the histogram of the
//! prefix's counter slot. A handshake packet sent twice gives no sample
//! (Karn's rule: its answer could belong to either copy).

use aya_ebpf::helpers::bpf_ktime_get_ns;
use edge_common::{
    Settings,
    rtt::{
        RttBucketKey, RttFlow, RttScratch, RttState, TS_PENDING_NS, bucket, rtt_flags, rtt_stats,
    },
};

use crate::{
    count,
    family::Family,
    maps::{EDGE_RTT_FLOWS, EDGE_RTT_HIST, EDGE_RTT_SCR, EDGE_RTT_STATS},
    parse::{self, L3, TCP_ACK, TCP_SYN, Tcp},
};

/// `BPF_NOEXIST` (include/uapi/linux/bpf.h): create, never replace.
const BPF_NOEXIST: u64 = 1;

/// Takes what a forwarded TCP packet of prefix counter slot `slot` says
/// about its flow's round trip (the packet itself is not changed).
///
/// A function of its own in the object (a BPF-to-BPF call): the call
/// leaves the caller's state as it found it, so the verifier explores the
/// forwarder's rewrite after it once, not once per path through here.
#[inline(never)]
pub fn measure<H: Family>(
    ctx: &aya_ebpf::programs::XdpContext,
    ip: &L3<H>,
    from_customer: bool,
    slot: u32,
    settings: &Settings,
) {
    let Ok(tcp) = parse::tcp(ctx, ip.l4, ip.end) else {
        return;
    };
    let Some(scratch) = EDGE_RTT_SCR.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's entry of a per-CPU map (softirq context): nothing
    // else uses it during this run.
    let scratch = unsafe { &mut *scratch };
    let flow = &mut scratch.flow;
    let (customer, remote) = if from_customer {
        (ip.src.as_ref(), ip.dst.as_ref())
    } else {
        (ip.dst.as_ref(), ip.src.as_ref())
    };
    let n = customer.len().min(16);
    flow.customer = [0; 16];
    flow.remote = [0; 16];
    flow.customer[..n].copy_from_slice(&customer[..n]);
    flow.remote[..n].copy_from_slice(&remote[..n]);
    (flow.customer_port, flow.remote_port) = if from_customer {
        (tcp.sport, tcp.dport)
    } else {
        (tcp.dport, tcp.sport)
    };
    flow.family = H::EVENT;
    flow._pad = [0; 3];
    // A SYN's timestamps are never used.
    let ts = if tcp.flags & TCP_SYN == 0 {
        parse::tcp_timestamps(ctx, ip.l4, tcp.len)
    } else {
        None
    };
    // SAFETY: a helper without arguments or side effects.
    let now = unsafe { bpf_ktime_get_ns() };
    if from_customer {
        answer(&scratch.flow, &tcp, ts, slot, now);
    } else {
        ask(scratch, &tcp, ts, settings, now);
    }
}

/// A packet toward the customer: remembers a handshake packet, or a new
/// timestamp value when the flow's interval has passed.
// The maps take keys and values as `impl Borrow`: the scratch entry's go
// by reference, since by value they would be copied onto the stack the
// scratch entry is there to spare.
#[allow(clippy::needless_borrows_for_generic_args)]
#[inline(always)]
fn ask(scratch: &mut RttScratch, tcp: &Tcp, ts: Option<(u32, u32)>, settings: &Settings, now: u64) {
    let state = EDGE_RTT_FLOWS.get_ptr_mut(&scratch.flow);
    if tcp.flags & TCP_SYN != 0 {
        let ack = tcp.seq.wrapping_add(1);
        count(&EDGE_RTT_STATS, rtt_stats::HANDSHAKE_SENT, 0);
        match state {
            // SAFETY: the flow's value, mapped for this run (RCU); other
            // CPUs may write it too: at worst a sample is lost or skipped.
            Some(s) => unsafe {
                if (*s).handshake_ack == ack {
                    // The same SYN or SYN-ACK again: its answer is ambiguous.
                    (*s).flags |= rtt_flags::RETRANSMITTED;
                    count(&EDGE_RTT_STATS, rtt_stats::RETRANSMITTED, 0);
                } else {
                    // A new connection on the same ports.
                    *s = RttState::default();
                    (*s).handshake_ack = ack;
                }
                (*s).handshake_ns = now;
            },
            None => {
                scratch.state = RttState {
                    handshake_ns: now,
                    handshake_ack: ack,
                    ..RttState::default()
                };
                create(scratch);
            }
        }
        return;
    }
    let Some((ts_val, _)) = ts else {
        return;
    };
    match state {
        // SAFETY: as above.
        Some(s) => unsafe {
            // Only the first segment with a new value, at most one value per
            // interval, and not while an earlier one awaits its echo.
            if ts_val != (*s).ts_seen {
                (*s).ts_seen = ts_val;
                if now.wrapping_sub((*s).ts_taken_ns) >= settings.rtt_interval_ns
                    && ((*s).ts_ns == 0 || now.wrapping_sub((*s).ts_ns) >= TS_PENDING_NS)
                {
                    (*s).ts_val = ts_val;
                    (*s).ts_ns = now;
                    (*s).ts_taken_ns = now;
                    count(&EDGE_RTT_STATS, rtt_stats::TS_SENT, 0);
                }
            }
        },
        None => {
            scratch.state = RttState {
                ts_ns: now,
                ts_taken_ns: now,
                ts_val,
                ts_seen: ts_val,
                ..RttState::default()
            };
            create(scratch);
            count(&EDGE_RTT_STATS, rtt_stats::TS_SENT, 0);
        }
    }
}

/// A packet from the customer: a sample if it answers what its flow waits for.
#[inline(always)]
fn answer(flow: &RttFlow, tcp: &Tcp, ts: Option<(u32, u32)>, slot: u32, now: u64) {
    // No state: nothing was asked, or the asking direction does not pass
    // this host (asymmetric routing), or the LRU evicted the flow.
    let Some(s) = EDGE_RTT_FLOWS.get_ptr_mut(flow) else {
        return;
    };
    // SAFETY: as in `ask`.
    let s = unsafe { &mut *s };
    if s.handshake_ns != 0 && tcp.flags & TCP_ACK != 0 && tcp.ack == s.handshake_ack {
        if s.flags & rtt_flags::RETRANSMITTED != 0 {
            count(&EDGE_RTT_STATS, rtt_stats::AMBIGUOUS, 0);
        } else {
            record(slot, now.wrapping_sub(s.handshake_ns));
            count(&EDGE_RTT_STATS, rtt_stats::HANDSHAKE_SAMPLES, 0);
        }
        s.handshake_ns = 0;
        return;
    }
    if s.ts_ns == 0 {
        return;
    }
    if let Some((_, ts_ecr)) = ts
        && ts_ecr == s.ts_val
    {
        record(slot, now.wrapping_sub(s.ts_ns));
        count(&EDGE_RTT_STATS, rtt_stats::TS_SAMPLES, 0);
        s.ts_ns = 0;
    }
}

/// A new flow state; counted, and a failure too (the LRU map evicts
/// rather than fail, so a failure is unexpected).
#[allow(clippy::needless_borrows_for_generic_args)] // See `ask`.
#[inline(always)]
fn create(scratch: &RttScratch) {
    if EDGE_RTT_FLOWS
        .insert(&scratch.flow, &scratch.state, 0)
        .is_ok()
    {
        count(&EDGE_RTT_STATS, rtt_stats::FLOWS, 0);
    } else {
        count(&EDGE_RTT_STATS, rtt_stats::FLOW_FAILED, 0);
    }
}

/// One sample of `ns` into the histogram of `slot`.
#[inline(always)]
fn record(slot: u32, ns: u64) {
    let key = RttBucketKey {
        slot,
        bucket: bucket(ns),
    };
    if let Some(n) = EDGE_RTT_HIST.get_ptr_mut(key) {
        // SAFETY: this CPU's value of a per-CPU map (softirq context).
        unsafe { *n += 1 };
        return;
    }
    if EDGE_RTT_HIST.insert(key, 1, BPF_NOEXIST).is_ok() {
        return;
    }
    // Another CPU created the pair meanwhile (this CPU's value is 0), or
    // the map is full.
    match EDGE_RTT_HIST.get_ptr_mut(key) {
        // SAFETY: as above.
        Some(n) => unsafe { *n += 1 },
        None => count(&EDGE_RTT_STATS, rtt_stats::HIST_FULL, 0),
    }
}
