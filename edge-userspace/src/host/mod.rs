//! The host, through netlink and ioctls: interfaces, local addresses, the
//! neighbour table and the kernel routing tables edge follows.

pub mod links;
pub mod neigh;
pub mod netdev;
pub mod netlink;
pub mod routes;
pub mod veth;
