//! The one error type of map access, shared by every map owner.

use std::path::PathBuf;

use aya::maps::{MapError, xdp::XdpMapError};
use edge_common::map_names;

#[derive(Debug, thiserror::Error)]
pub enum MapsError {
    #[error("map {map} is full (limit {limit} entries){}", limit_hint(map))]
    MapFull { map: &'static str, limit: u32 },
    #[error("map {map}: {source}")]
    Map { map: &'static str, source: MapError },
    #[error("map {map}: {source}")]
    Xdp {
        map: &'static str,
        source: XdpMapError,
    },
    #[error("map {map} not found in the eBPF object")]
    Missing { map: &'static str },
    #[error("counting possible CPUs: {0}")]
    Cpus(std::io::Error),
    #[error("opening pinned map {path}: {source}")]
    Pin { path: PathBuf, source: MapError },
    #[error("map {map}: {what}")]
    Mmap { map: &'static str, what: String },
}

/// For a prefix map, the `[limits]` key that sizes it (the IPv6 trie's
/// nodes and tails follow the IPv6 prefix limit).
fn limit_hint(map: &str) -> String {
    if map == map_names::FIB6_NODES || map == map_names::FIB6_TAILS {
        let key = crate::config::limit_key(map_names::PREFIX_V6).unwrap_or("prefixes_v6");
        return format!("; [limits] {key} sets its size");
    }
    crate::config::limit_key(map)
        .map(|k| format!("; [limits] {k} sets its size"))
        .unwrap_or_default()
}

/// Turns a failed write into `MapFull` when the kernel says the map is full
/// (E2BIG for hash maps, ENOSPC for LPM tries).
pub(crate) fn write_error(map: &'static str, limit: u32, source: MapError) -> MapsError {
    if let MapError::SyscallError(e) = &source
        && matches!(e.io_error.raw_os_error(), Some(libc::E2BIG | libc::ENOSPC))
    {
        return MapsError::MapFull { map, limit };
    }
    MapsError::Map { map, source }
}
