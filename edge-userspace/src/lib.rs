//! edge userspace: the loader, typed maps, config and the pieces shared by
//! `edged` (daemon) and `edgectl` (operator CLI).

pub mod config;
pub mod control;
pub mod daemon;
pub mod desired;
pub mod events;
pub mod fib;
pub mod health;
pub mod index;
pub mod loader;
pub mod maps;
pub mod metrics;
pub mod neigh;
pub mod netdev;
pub mod policy;
pub mod resolve;
pub mod routes;
pub mod state;
