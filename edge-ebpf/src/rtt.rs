//! Customer latency: round-trip samples between this host and customer
//! hosts, from the TCP packets the forwarder sends anyway (the model is
//! `edge_common::rtt`; the method is ePPing's, xdp-project's pping, with
//! the handshake added). Runs only for forwarded TCP packets of a registered
//! prefix, and only with `Settings::rtt` set.
//!
//! Toward the customer (classified by destination) a packet that asks for
//! an answer is remembered in its flow's state: a SYN or SYN-ACK (the
//! answer acknowledges its sequence number + 1), else a new TCP timestamp
//! value on a segment with data or FIN (the acknowledgement answering it
//! echoes it), at most one per flow per
//! `Settings::rtt_interval_ns`. From the customer (classified by source)
//! the packet that answers gives one sample into the histogram of the
//! prefix's counter slot. A handshake packet sent twice gives no sample
//! (Karn's rule: its answer could belong to either copy).

use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::XdpContext};
use edge_common::rtt::{
    GATE_STALE_NS, RttBucketKey, RttFlow, RttGate, RttPace, RttScratch, RttState, TS_PENDING_NS,
    bucket, gate, gate_flags, gate_tag, key_words, rtt_flags, rtt_stats,
};

use crate::{
    count,
    family::Family,
    maps::{
        EDGE_RTT_CLOCK, EDGE_RTT_FLOWS, EDGE_RTT_GATE, EDGE_RTT_HIST, EDGE_RTT_PACE, EDGE_RTT_SCR,
        EDGE_RTT_STATS,
    },
    parse::{self, L3, TCP_ACK, TCP_FIN, TCP_SYN},
};

/// `BPF_NOEXIST` (include/uapi/linux/bpf.h): create, never replace.
const BPF_NOEXIST: u64 = 1;

/// The coarse clock edged keeps (`EDGE_RTT_CLOCK`); 0: nobody keeps it.
#[inline(always)]
fn clock() -> u64 {
    match EDGE_RTT_CLOCK.get(0) {
        Some(c) => *c,
        None => 0,
    }
}

/// Whether a forwarded TCP packet can give or ask for a sample: the test
/// every TCP packet pays, inlined into the forwarder. It reads the data
/// offset and flags, one entry indexed by the flow hash the forwarder has
/// computed anyway (`hash`), and the coarse clock; no flow state: a
/// handshake packet goes on; toward the customer, a segment with room for
/// timestamps goes on only once its flow's interval has passed (its
/// `RttPace`); from the customer, a segment goes on only while its
/// `RttGate` awaits an answer and it carries what answers (the awaited
/// acknowledgement number, or the awaited TSval in its TSecr), or while
/// two flows of the gate await one each.
#[inline(always)]
pub fn wanted<H: Family>(ctx: &XdpContext, ip: &L3<H>, from_customer: bool, hash: u32) -> bool {
    let Some((len, flags)) = parse::tcp_len_flags(ctx, ip.l4) else {
        return false;
    };
    if flags & TCP_SYN != 0 {
        // The customer's own SYN asks and answers nothing.
        return !from_customer || flags & TCP_ACK != 0;
    }
    if !from_customer {
        // Only a timestamp on a segment the customer must acknowledge asks:
        // no options, no room; no data (nor FIN), no answer due (a pure
        // ACK's value is echoed only when the customer next sends).
        if len < parse::TCP_TS_LEN || (ip.end <= ip.l4 + len && flags & TCP_FIN == 0) {
            return false;
        }
        let Some(pace) = EDGE_RTT_PACE.get(gate(hash)) else {
            return false;
        };
        let clock = clock();
        return clock == 0 || clock >= pace.next_ns;
    }
    let Some(g) = EDGE_RTT_GATE.get(gate(hash)) else {
        return false;
    };
    if g.pending_ns == 0 {
        return false;
    }
    if g.flags & gate_flags::SHARED != 0 {
        return true;
    }
    if g.flags & gate_flags::HANDSHAKE != 0
        && flags & TCP_ACK != 0
        && parse::tcp_ack(ctx, ip.l4) == Some(g.await_ack)
    {
        return true;
    }
    // Else only the awaited echo. (A stale mark, its answer lost, is
    // cleared by the flow's next look toward the customer: `sample`.)
    g.flags & gate_flags::TS != 0
        && matches!(parse::tcp_timestamps(ctx, ip.l4, len), Some((_, ecr)) if ecr == g.await_ts)
}

/// `measure`'s packed argument (a BPF-to-BPF call takes five): the
/// prefix counter slot, the direction and the packet's flow hash.
#[inline(always)]
pub fn packet_facts(slot: u32, from_customer: bool, hash: u32) -> u64 {
    u64::from(hash) << 32 | u64::from(from_customer) << 31 | u64::from(slot & 0x7fff_ffff)
}

/// Takes what a forwarded TCP packet (`ports`: its first four header
/// bytes; `facts`: [`packet_facts`]) says about its flow's round trip (the
/// packet itself is not changed).
///
/// A function of its own in the object (a BPF-to-BPF call): the call
/// leaves the caller's state as it found it, so the verifier explores the
/// forwarder's rewrite after it once, not once per path through here.
#[inline(never)]
pub fn measure<H: Family>(ctx: &XdpContext, ip: &L3<H>, ports: u32, facts: u64, interval_ns: u64) {
    let from_customer = facts & 1 << 31 != 0;
    // What is kept across helper calls lives in this CPU's scratch entry,
    // not in registers the calls clobber (their spills would push the
    // forwarder's stack past 512 bytes).
    let Some(scratch) = EDGE_RTT_SCR.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's entry of a per-CPU map (softirq context): nothing
    // else uses it during this run.
    let scratch = unsafe { &mut *scratch };
    let Ok(tcp) = parse::tcp(ctx, ip.l4, ip.end) else {
        return;
    };
    let syn = tcp.flags & TCP_SYN != 0;
    // A SYN's timestamps are never used.
    let ts = if syn {
        None
    } else {
        parse::tcp_timestamps(ctx, ip.l4, tcp.len)
    };
    // Packets that can neither ask nor answer stop here: toward the
    // customer, segments after the handshake without a timestamp (`wanted`
    // let through only those with data or FIN, and room for one); from
    // it, its own SYN (it answers nothing).
    if from_customer {
        if syn && tcp.flags & TCP_ACK == 0 {
            return;
        }
    } else if !syn && ts.is_none() {
        return;
    }
    let p = &mut scratch.packet;
    p.interval_ns = interval_ns;
    p.seq = tcp.seq;
    p.ack = tcp.ack;
    (p.ts_val, p.ts_ecr, p.has_ts) = match ts {
        Some((val, ecr)) => (val, ecr, 1),
        None => (0, 0, 0),
    };
    p.slot = facts as u32 & 0x7fff_ffff;
    let (hash, reverse) = ((facts >> 32) as u32, H::flow_hash_reverse(ip, ports));
    (p.gate, p.pace) = if from_customer {
        (gate(hash), gate(reverse))
    } else {
        (gate(reverse), gate(hash))
    };
    p.flags = tcp.flags;
    p.from_customer = u8::from(from_customer);
    key(&mut scratch.flow, ip, from_customer, tcp.sport, tcp.dport);
    sample(scratch);
}

/// Writes the flow key, the customer's side first (both directions of a
/// flow give the same key), as five words: `RttFlow` is 40 bytes at the
/// start of the scratch entry (8-aligned).
#[inline(never)]
fn key<H: Family>(flow: &mut RttFlow, ip: &L3<H>, from_customer: bool, sport: u16, dport: u16) {
    let (customer, remote, customer_port, remote_port) = if from_customer {
        (&ip.src, &ip.dst, sport, dport)
    } else {
        (&ip.dst, &ip.src, dport, sport)
    };
    let w = core::ptr::from_mut(flow).cast::<[u64; 5]>();
    // SAFETY: five words inside the scratch entry.
    unsafe {
        *w = key_words(
            H::words(customer),
            H::words(remote),
            customer_port,
            remote_port,
            H::EVENT,
        );
    }
}

/// The family-free part: the gate and pace, then asking or answering. A
/// function of its own (one copy for both families) whose only argument is
/// the scratch entry, so that little lives across its helper calls.
#[inline(always)]
fn sample(scratch: &mut RttScratch) {
    let (Some(gate), Some(pace)) = (
        EDGE_RTT_GATE.get_ptr_mut(scratch.packet.gate),
        EDGE_RTT_PACE.get_ptr_mut(scratch.packet.pace),
    ) else {
        return;
    };
    // SAFETY: entries of two array maps, mapped for the program's life;
    // other CPUs may write them too: at worst a sample is lost or a lookup
    // made for nothing.
    let (gate, pace) = unsafe { (&mut *gate, &mut *pace) };
    let now;
    if scratch.packet.from_customer != 0 {
        // Nothing of this gate's flows awaits an answer.
        if gate.pending_ns == 0 {
            return;
        }
        // SAFETY: a helper without arguments or side effects.
        now = unsafe { bpf_ktime_get_ns() };
        answer(scratch, gate, pace, now);
    } else {
        if scratch.packet.flags & TCP_SYN == 0 {
            // Only the first segment with a new value. Without the coarse
            // clock every segment comes here, so `ts_seen` is the previous
            // segment's value; with it, segments come here only once the
            // interval passed, so the first that does arms the pace and
            // the next new value is taken.
            let ts_val = scratch.packet.ts_val;
            if ts_val == pace.ts_seen {
                return;
            }
            pace.ts_seen = ts_val;
            if pace.armed == 0 && clock() != 0 {
                pace.armed = 1;
                return;
            }
        }
        // SAFETY: as above.
        now = unsafe { bpf_ktime_get_ns() };
        // A mark whose answer never came (lost, or the other direction
        // does not pass this host) no longer holds the gate open.
        if gate.pending_ns != 0 && now.wrapping_sub(gate.pending_ns) >= GATE_STALE_NS {
            close(gate);
        }
        if scratch.packet.flags & TCP_SYN == 0 && now < pace.next_ns {
            return;
        }
        // SAFETY: five words at the start of the scratch entry (see `key`).
        let words = unsafe { &*(&raw const scratch.flow).cast::<[u64; 5]>() };
        ask(scratch, gate, pace, gate_tag(words), now);
    }
}

/// Marks `gate` as awaiting an answer of `kind` ([`gate_flags`]) asked by
/// the flow tagged `tag` at `now`.
#[inline(always)]
fn mark(gate: &mut RttGate, tag: u32, now: u64, kind: u32) {
    let waiting = gate.pending_ns != 0 && now.wrapping_sub(gate.pending_ns) < GATE_STALE_NS;
    if !waiting {
        gate.flags = kind;
    } else if gate.owner != tag {
        gate.flags |= kind | gate_flags::SHARED;
    } else {
        gate.flags |= kind;
    }
    gate.owner = tag;
    gate.pending_ns = now;
}

/// A packet toward the customer: remembers a handshake packet, or a new
/// timestamp value (the pace let it through: new, and the interval passed).
// The maps take keys and values as `impl Borrow`: the scratch entry's go
// by reference, since by value they would be copied onto the stack the
// scratch entry is there to spare.
#[allow(clippy::needless_borrows_for_generic_args)]
#[inline(always)]
fn ask(scratch: &mut RttScratch, gate: &mut RttGate, pace: &mut RttPace, tag: u32, now: u64) {
    let state = EDGE_RTT_FLOWS.get_ptr_mut(&scratch.flow);
    if scratch.packet.flags & TCP_SYN != 0 {
        let ack = scratch.packet.seq.wrapping_add(1);
        count(&EDGE_RTT_STATS, rtt_stats::HANDSHAKE_SENT, 0);
        mark(gate, tag, now, gate_flags::HANDSHAKE);
        gate.await_ack = ack;
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
                    set_state(&mut *s, now, ack, 0, 0);
                }
                (*s).handshake_ns = now;
            },
            None => {
                set_state(&mut scratch.state, now, ack, 0, 0);
                create(scratch);
            }
        }
        return;
    }
    let ts_val = scratch.packet.ts_val;
    let taken = match state {
        // SAFETY: as above. Not while an earlier value awaits its echo.
        Some(s) => unsafe {
            let free = (*s).ts_ns == 0 || now.wrapping_sub((*s).ts_ns) >= TS_PENDING_NS;
            if free {
                (*s).ts_val = ts_val;
                (*s).ts_ns = now;
                (*s).ts_taken_ns = now;
                (*s).ts_seen = ts_val;
            }
            free
        },
        None => {
            set_state(&mut scratch.state, 0, 0, now, ts_val);
            create(scratch);
            true
        }
    };
    // The next look one interval on, taken or not (a value still awaiting
    // its echo keeps the flow's place: looking again per packet meanwhile
    // would only cost).
    pace.next_ns = now + scratch.packet.interval_ns;
    pace.armed = 0;
    if taken {
        mark(gate, tag, now, gate_flags::TS);
        gate.await_ts = ts_val;
        count(&EDGE_RTT_STATS, rtt_stats::TS_SENT, 0);
    }
}

/// A packet from the customer: a sample if it answers what its flow waits
/// for; the gate closes once nothing of the flow awaits an answer.
#[allow(clippy::needless_borrows_for_generic_args)] // See `ask`.
#[inline(always)]
fn answer(scratch: &RttScratch, gate: &mut RttGate, pace: &mut RttPace, now: u64) {
    // No state: nothing was asked, or the asking direction does not pass
    // this host (asymmetric routing), or the LRU evicted the flow.
    let Some(s) = EDGE_RTT_FLOWS.get_ptr_mut(&scratch.flow) else {
        if now.wrapping_sub(gate.pending_ns) >= GATE_STALE_NS {
            close(gate);
        }
        return;
    };
    // SAFETY: as in `ask`.
    let s = unsafe { &mut *s };
    let p = &scratch.packet;
    // The ask this packet answers (its time), if any.
    let mut answered = 0;
    if s.handshake_ns != 0 && p.flags & TCP_ACK != 0 && p.ack == s.handshake_ack {
        if s.flags & rtt_flags::RETRANSMITTED != 0 {
            count(&EDGE_RTT_STATS, rtt_stats::AMBIGUOUS, 0);
        } else {
            record(p.slot, now.wrapping_sub(s.handshake_ns));
            count(&EDGE_RTT_STATS, rtt_stats::HANDSHAKE_SAMPLES, 0);
        }
        answered = s.handshake_ns;
        s.handshake_ns = 0;
    } else if s.ts_ns != 0 && p.has_ts != 0 && p.ts_ecr == s.ts_val {
        record(p.slot, now.wrapping_sub(s.ts_ns));
        count(&EDGE_RTT_STATS, rtt_stats::TS_SAMPLES, 0);
        answered = s.ts_ns;
        s.ts_ns = 0;
        // The flow's place is free: its next value one interval after
        // this one was taken (a look refused meanwhile moved the pace on).
        pace.next_ns = s.ts_taken_ns + p.interval_ns;
    }
    // Close the gate when this flow waits for nothing more and the gate's
    // mark is its own (another flow's later ask keeps it open), or stale.
    if s.handshake_ns == 0
        && s.ts_ns == 0
        && (gate.pending_ns == answered || now.wrapping_sub(gate.pending_ns) >= GATE_STALE_NS)
    {
        close(gate);
    }
}

/// Nothing of the gate's flows awaits an answer any more.
#[inline(always)]
fn close(gate: &mut RttGate) {
    gate.pending_ns = 0;
    gate.flags = 0;
}

/// Writes a whole flow state field by field (a struct literal would be
/// built on the stack and copied).
#[inline(always)]
fn set_state(st: &mut RttState, handshake_ns: u64, handshake_ack: u32, ts_ns: u64, ts_val: u32) {
    st.handshake_ns = handshake_ns;
    st.ts_ns = ts_ns;
    st.ts_taken_ns = ts_ns;
    st.handshake_ack = handshake_ack;
    st.ts_val = ts_val;
    st.flags = 0;
    st.ts_seen = ts_val;
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
