//! Interface facts from the kernel, in the calling thread's network namespace.

use std::net::IpAddr;

use anyhow::{Context as _, Result, bail};

/// The interface's index.
pub fn ifindex(name: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(name).with_context(|| format!("interface {name} not found"))
}

/// The interface's Ethernet address.
pub fn mac(name: &str) -> Result<[u8; 6]> {
    let addrs = nix::ifaddrs::getifaddrs().context("getifaddrs")?;
    for ifa in addrs {
        if ifa.interface_name != name {
            continue;
        }
        if let Some(mac) = ifa
            .address
            .as_ref()
            .and_then(|a| a.as_link_addr())
            .and_then(|l| l.addr())
        {
            return Ok(mac);
        }
    }
    bail!("interface {name} not found or has no Ethernet address")
}

/// Every IP address configured on any interface of this namespace.
pub fn local_addresses() -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for ifa in nix::ifaddrs::getifaddrs().context("getifaddrs")? {
        let Some(addr) = ifa.address else { continue };
        if let Some(a) = addr.as_sockaddr_in() {
            out.push(IpAddr::V4(a.ip()));
        } else if let Some(a) = addr.as_sockaddr_in6() {
            out.push(IpAddr::V6(a.ip()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_is_found() {
        assert!(super::ifindex("lo").unwrap() > 0);
        assert!(super::ifindex("no-such-if0").is_err());
    }
}
