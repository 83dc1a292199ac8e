//! `BPF_MAP_UPDATE_BATCH` / `BPF_MAP_DELETE_BATCH` by raw syscall: aya 0.14
//! has no batch API, and a million-prefix load needs it (one syscall per
//! 4096 prefixes instead of one per prefix).

use aya::maps::{MapData, MapError};

use super::error::MapsError;

pub(super) fn raw_fd(map: &MapData) -> std::os::fd::RawFd {
    use std::os::fd::{AsFd as _, AsRawFd as _};
    map.fd().as_fd().as_raw_fd()
}

pub(super) enum BatchError {
    /// The kernel has no batch operation for this map (or no batch
    /// commands at all): write one element at a time.
    Unsupported,
    /// Some elements (the kernel says how many) were processed, then `error`.
    Failed { error: std::io::Error },
}

pub(super) fn batch_error(map: &'static str, limit: u32, error: std::io::Error) -> MapsError {
    if limit > 0 && matches!(error.raw_os_error(), Some(libc::E2BIG | libc::ENOSPC)) {
        return MapsError::MapFull { map, limit };
    }
    MapsError::Map {
        map,
        source: MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_batch",
            io_error: error,
        }),
    }
}

/// include/uapi/linux/bpf.h: `union bpf_attr`'s `batch` member.
#[repr(C)]
#[derive(Default)]
pub(super) struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

pub(super) const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
/// The kernel's ENOTSUPP (not in libc: internal, but returned to userspace).
pub(super) const ENOTSUPP: i32 = 524;

pub(super) fn batch_syscall(cmd: libc::c_long, attr: &mut BatchAttr) -> Result<(), BatchError> {
    let want = attr.count as usize;
    // SAFETY: `attr` is a valid `union bpf_attr` prefix of the given size;
    // the key and value buffers it points to hold `count` elements and
    // outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_mut(attr),
            std::mem::size_of::<BatchAttr>(),
        )
    };
    if r == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    let done = (attr.count as usize).min(want);
    match error.raw_os_error() {
        Some(libc::EINVAL | ENOTSUPP | libc::EOPNOTSUPP) if done == 0 => {
            Err(BatchError::Unsupported)
        }
        _ => Err(BatchError::Failed { error }),
    }
}

/// `BPF_MAP_UPDATE_BATCH` of `keys[i]` → `values[i * per_key..]`
/// (flags `BPF_ANY`); `per_key` values for each key: 1, or the number of
/// possible CPUs for a per-CPU map.
pub(super) fn update_batch<K, V>(
    fd: std::os::fd::RawFd,
    keys: &[K],
    values: &[V],
    per_key: usize,
) -> Result<(), BatchError> {
    assert_eq!(keys.len() * per_key, values.len());
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        values: values.as_ptr() as u64,
        count: keys.len() as u32,
        map_fd: fd as u32,
        ..BatchAttr::default()
    };
    batch_syscall(BPF_MAP_UPDATE_BATCH, &mut attr)
}
