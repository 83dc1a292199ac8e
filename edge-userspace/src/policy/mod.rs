//! Routing methods and table resolution: plan + PoP health → the selection
//! tables the kernel reads. Pure: no IO, no clocks.
//!
//! - [`methods`]: one policy's table from its members' health (priority,
//!   weighted with Maglev, multivalue, performance with hysteresis).
//! - [`resolve`]: the table layout of a whole plan (one table per policy and
//!   region or subnet) and their contents, nested policies and fallbacks.

pub mod methods;
pub mod resolve;

pub use methods::*;
pub use resolve::*;
