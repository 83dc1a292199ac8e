//! Route analytics: who announces the registered prefixes in BGP, as the
//! BGP speakers report it over BMP (RFC 7854), and the anomalies found in
//! it (origin and sub-prefix hijacks, route leaks, visibility loss, AS
//! hops). edge only listens: the BGP speaker stays the routing engine.
//!
//! - [`engine`]: the view per monitored peer, indexed by a prefix trie per
//!   family ([`trie`]) over the registered prefixes and their
//!   more-specifics, and the anomaly checks; pure, tested without root;
//! - [`bmp`]: BMP messages (decoded by bgpkit-parser) to changes of the
//!   view;
//! - [`listener`]: the TCP sessions (tokio) and the ingest thread that
//!   decodes and applies them, off the daemon's runtime, through bounded
//!   channels;
//! - [`hold`]: which registered prefixes a hijack holds to their
//!   registration's peering ports (`hold_on_hijack`); pure;
//! - [`synth`]: a synthetic BMP sender's messages, for tests, the
//!   benchmark and the fuzz seeds.
//!
//! See docs/route-analytics.md.

pub mod bmp;
pub mod engine;
pub mod hold;
pub mod listener;
pub mod synth;
#[cfg(test)]
mod tests;
mod trie;

use std::sync::{Arc, Mutex, MutexGuard};

pub use engine::{
    Anomaly, Attrs, Engine, Event, Kind, PathRow, Peer, RegistrationStats, Rib, Totals,
};

/// The engine as the ingest thread, the daemon and the metrics share it.
pub type Shared = Arc<Mutex<Engine>>;

/// Locks the engine (a panic elsewhere does not stop the others: the
/// engine is consistent after every call).
pub fn lock(shared: &Shared) -> MutexGuard<'_, Engine> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Now, in Unix seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
