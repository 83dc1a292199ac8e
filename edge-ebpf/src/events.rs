//! Protection events for edged, bounded by a per-CPU token bucket: under a
//! flood of violations the forwarding path pays one counter increment per
//! packet beyond the budget, never a ring-buffer write.

use aya_ebpf::helpers::bpf_ktime_get_ns;
use edge_common::{EVENT_BURST, EVENT_COST, EVENT_RATE, ProtectionEvent, event_stats};

use crate::{
    count,
    maps::{EDGE_EVENTS, EDGE_EVT_BUDGET, EDGE_EVT_STATS},
};

/// Sends one event if the budget allows; counts what happened.
#[inline(always)]
pub fn protection(src: &[u8], dst: &[u8], family: u8, slot: u32, port: u32) {
    let Some(budget) = EDGE_EVT_BUDGET.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot of a per-CPU map, and XDP runs in softirq
    // context: no other reference to it exists during this run.
    let budget = unsafe { &mut *budget };
    // SAFETY: a helper without arguments or side effects.
    let now = unsafe { bpf_ktime_get_ns() };
    // Capped before multiplying: no overflow, and no 128-bit arithmetic
    // (which BPF lacks).
    const FULL: u64 = EVENT_BURST * EVENT_COST;
    let elapsed = now.saturating_sub(budget.last_ns).min(FULL / EVENT_RATE);
    let refill = elapsed * EVENT_RATE;
    budget.last_ns = now;
    budget.tokens = budget.tokens.saturating_add(refill).min(FULL);
    if budget.tokens < EVENT_COST {
        count(&EDGE_EVT_STATS, event_stats::RATE_LIMITED, 0);
        return;
    }
    budget.tokens -= EVENT_COST;
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
