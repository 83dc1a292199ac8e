//! The kernel program as userspace sees it: loading and pinning it
//! ([`loader`]), typed owners of its maps ([`maps`]), the DIR-24-8 IPv4
//! table ([`fib`]), the IPv6 multibit trie ([`fib6`]), the port and local-address copies ([`index`]), per-CPU
//! counters and the protection ring buffer ([`events`]). Every map access
//! fails with one error type, [`MapsError`].

mod batch;
pub mod counters;
pub mod error;
pub mod events;
pub mod fib;
pub mod fib6;
pub mod index;
pub mod latency;
pub mod loader;
pub mod maps;
mod prefixes;
mod slab;

pub use error::MapsError;
