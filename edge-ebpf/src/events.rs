//! Protection events for edged, bounded by a per-CPU token bucket: under a
//! flood of violations the forwarding path pays one counter increment per
//! packet beyond the budget, never a ring-buffer write. The same bucket
//! ([`take`]) bounds the ICMP errors of `icmp.rs`.

use aya_ebpf::{helpers::bpf_ktime_get_ns, maps::PerCpuArray};
use edge_common::{EVENT_BURST, EVENT_COST, EVENT_RATE, EventBudget, ProtectionEvent, event_stats};

use crate::{
    count,
    maps::{EDGE_EVENTS, EDGE_EVT_BUDGET, EDGE_EVT_STATS},
};

/// Takes one token (worth `cost`) from this CPU's bucket in `map`, refilled
/// at `rate` tokens per second up to `burst`; false when it is empty.
#[inline(always)]
pub fn take(map: &PerCpuArray<EventBudget>, rate: u64, burst: u64, cost: u64) -> bool {
    let Some(budget) = map.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: this CPU's slot of a per-CPU map, and XDP runs in softirq
    // context: no other reference to it exists during this run.
    let budget = unsafe { &mut *budget };
    // SAFETY: a helper without arguments or side effects.
    let now = unsafe { bpf_ktime_get_ns() };
    // Capped before multiplying: no overflow, and no 128-bit arithmetic
    // (which BPF lacks).
    let full = burst * cost;
    let elapsed = now.saturating_sub(budget.last_ns).min(full / rate);
    let refill = elapsed * rate;
    budget.last_ns = now;
    budget.tokens = budget.tokens.saturating_add(refill).min(full);
    if budget.tokens < cost {
        return false;
    }
    budget.tokens -= cost;
    true
}

/// Sends one event if the budget allows; counts what happened.
#[inline(always)]
pub fn protection(src: &[u8], dst: &[u8], family: u8, slot: u32, port: u32) {
    if !take(&EDGE_EVT_BUDGET, EVENT_RATE, EVENT_BURST, EVENT_COST) {
        count(&EDGE_EVT_STATS, event_stats::RATE_LIMITED, 0);
        return;
    }
    let Some(mut entry) = EDGE_EVENTS.reserve::<ProtectionEvent>(0) else {
        count(&EDGE_EVT_STATS, event_stats::RING_FULL, 0);
        return;
    };
    let mut ev = ProtectionEvent {
        slot,
        port,
        family,
        ..ProtectionEvent::default()
    };
    let n = src.len().min(16);
    ev.src[..n].copy_from_slice(&src[..n]);
    ev.dst[..n].copy_from_slice(&dst[..n]);
    entry.write(ev);
    entry.submit(0);
    count(&EDGE_EVT_STATS, event_stats::SENT, 0);
}
