//! Programs for `cargo xtask bench` (the `bench` object, never loaded by
//! edged):
//!
//! - `bench_floor`: the floor, the least an XDP forwarder does (swap the
//!   MACs, `XDP_TX`);
//! - `bench_reset`: restores a template frame, then tail-calls the program
//!   under test. BPF_PROG_TEST_RUN with `repeat` reruns a program on the
//!   buffer it already rewrote (the TTL would run out after 254 runs), so
//!   every counted run starts from a fresh 64-byte frame: template
//!   `seq & mask`, `seq` counting the runs. Only the 8-byte words userspace
//!   names are restored (those the program under test rewrites or in which
//!   the templates differ: MACs, DS byte, TTL/hop limit, IPv4 checksum,
//!   destination, UDP checksum), each with one aligned u64 load and store;
//!   the other words hold the same bytes in every template and output;
//! - `bench_tx`: `XDP_TX`;
//! - `bench_gen`: the generator of the throughput bench (live frames):
//!   writes template 0 over the whole 64-byte frame, then `XDP_TX`. Live
//!   frames recycle their pages without rewriting them, so without this a
//!   page the forwarder already rewrote (MACs, TTL) would be sent again;
//! - `bench_redirect`: the throughput bench's baseline forwarder: swaps
//!   the MACs and redirects to `BENCH_FWD[0]` (an ifindex);
//! - `bench_sink`: counts and drops, the sink of the throughput bench.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::{Array, PerCpuArray, ProgramArray},
    programs::XdpContext,
};

/// Bench frames are exactly this long (64-byte IPv4 and IPv6 UDP frames).
const FRAME: usize = 64;
/// Templates `bench_reset` cycles through (a power of two).
const TEMPLATES: u32 = 4096;

/// Template frames.
#[map]
static BENCH_FRAMES: Array<[u64; FRAME / 8]> = Array::with_max_entries(TEMPLATES, 0);

/// `[0]`: template mask (count − 1); `[1]`: runs so far (the next template);
/// `[2]`: the words to restore (bit i: bytes 8i..8i+8).
#[map]
static BENCH_STATE: Array<u32> = Array::with_max_entries(3, 0);

/// `[0]`: the program under test.
#[map]
static BENCH_PROGS: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// `[0]`: the ifindex `bench_redirect` sends to.
#[map]
static BENCH_FWD: Array<u32> = Array::with_max_entries(1, 0);

/// `[0]`: packets the sink received.
#[map]
static BENCH_SINK: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[xdp]
pub fn bench_floor(ctx: XdpContext) -> u32 {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + 12 > end {
        return xdp_action::XDP_ABORTED;
    }
    let macs = start as *mut [[u8; 6]; 2];
    // SAFETY: the 12 bytes are inside the frame (checked above); byte
    // arrays need no alignment.
    unsafe {
        let [dst, src] = *macs;
        *macs = [src, dst];
    }
    xdp_action::XDP_TX
}

#[xdp]
pub fn bench_reset(ctx: XdpContext) -> u32 {
    let (Some(&mask), Some(&words), Some(seq)) = (
        BENCH_STATE.get(0),
        BENCH_STATE.get(2),
        BENCH_STATE.get_ptr_mut(1),
    ) else {
        return xdp_action::XDP_ABORTED;
    };
    // SAFETY: an array slot, valid for the map's life; the
    // bench runs one BPF_PROG_TEST_RUN at a time, so nothing races.
    let i = unsafe { *seq };
    // SAFETY: as above.
    unsafe { *seq = i.wrapping_add(1) };
    let Some(template) = BENCH_FRAMES.get(i & mask) else {
        return xdp_action::XDP_ABORTED;
    };
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + FRAME > end {
        return xdp_action::XDP_ABORTED;
    }
    let (from, to) = (template.as_ptr(), start as *mut u64);
    // SAFETY: word k is inside the frame (the 64 bytes are, checked
    // above) and inside the template. The frame is 8-byte aligned:
    // BPF_PROG_TEST_RUN puts it XDP_PACKET_HEADROOM (256) bytes into a
    // kmalloc'd buffer. Volatile, so that each stays one 8-byte load and
    // store (no memcpy, no byte-wise copy for an unaligned one).
    macro_rules! restore {
        ($($k:literal)*) => {$(
            if words & (1 << $k) != 0 {
                unsafe { to.add($k).write_volatile(from.add($k).read_volatile()) };
            }
        )*};
    }
    restore!(0 1 2 3 4 5 6 7);
    // SAFETY: tail_call does not return on success, and on failure the
    // frame is left as written.
    unsafe { BENCH_PROGS.tail_call(&ctx, 0) };
    // The tail call failed (empty slot): the bench sees ABORTED and stops.
    xdp_action::XDP_ABORTED
}

#[xdp]
pub fn bench_tx(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_TX
}

#[xdp]
pub fn bench_gen(ctx: XdpContext) -> u32 {
    let Some(template) = BENCH_FRAMES.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + FRAME > end {
        return xdp_action::XDP_ABORTED;
    }
    let (from, to) = (template.as_ptr(), start as *mut u64);
    // SAFETY: the 64 bytes are inside the frame (checked above) and the
    // template; live frames start 8-byte aligned in their page.
    for k in 0..FRAME / 8 {
        unsafe { to.add(k).write_volatile(from.add(k).read_volatile()) };
    }
    xdp_action::XDP_TX
}

#[xdp]
pub fn bench_redirect(ctx: XdpContext) -> u32 {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + 12 > end {
        return xdp_action::XDP_ABORTED;
    }
    let Some(&ifindex) = BENCH_FWD.get(0) else {
        return xdp_action::XDP_ABORTED;
    };
    let macs = start as *mut [[u8; 6]; 2];
    // SAFETY: the 12 bytes are inside the frame (checked above); byte
    // arrays need no alignment.
    unsafe {
        let [dst, src] = *macs;
        *macs = [src, dst];
    }
    // SAFETY: a plain helper call; XDP_REDIRECT on success.
    unsafe { aya_ebpf::helpers::generated::bpf_redirect(ifindex, 0) as u32 }
}

#[xdp]
pub fn bench_sink(_ctx: XdpContext) -> u32 {
    if let Some(n) = BENCH_SINK.get_ptr_mut(0) {
        // SAFETY: this CPU's slot of a per-CPU map, and XDP runs in softirq
        // context: nothing else writes it meanwhile.
        unsafe { *n += 1 };
    }
    xdp_action::XDP_DROP
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
