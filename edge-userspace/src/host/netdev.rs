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

/// Whether the interface can send: administratively up and operationally
/// running (`IFF_UP` and `IFF_RUNNING`: carrier, or a link whose state the
/// driver does not report). A veth whose peer is down, a cable pulled:
/// `false`.
pub fn running(name: &str) -> Result<bool> {
    use nix::net::if_::InterfaceFlags;
    let addrs = nix::ifaddrs::getifaddrs().context("getifaddrs")?;
    for ifa in addrs {
        if ifa.interface_name == name {
            return Ok(ifa
                .flags
                .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING));
        }
    }
    bail!("interface {name} not found")
}

/// The interface's MTU: the largest IP packet it sends (link-layer header
/// and VLAN tags not counted).
pub fn mtu(name: &str) -> Result<u32> {
    /// include/uapi/linux/sockios.h (libc does not define it for Linux).
    const SIOCGIFMTU: u64 = 0x8921;
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        bail!("interface name {name:?} is not 1-15 bytes");
    }
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
        .context("socket for SIOCGIFMTU")?;
    // SAFETY: an all-zero ifreq is valid (a name of NULs, a zero union).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (to, from) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *to = from as libc::c_char;
    }
    use std::os::fd::AsRawFd as _;
    // SAFETY: SIOCGIFMTU reads the NUL-terminated name and writes the MTU
    // into the union of the ifreq it is given, which outlives the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCGIFMTU as _, &raw mut req) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("MTU of interface {name}"));
    }
    // SAFETY: the kernel filled `ifru_mtu`.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).with_context(|| format!("interface {name}: MTU {mtu}"))
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

    #[test]
    fn loopback_runs() {
        // The tests run where lo is up (a fresh namespace's is down).
        assert!(super::running("lo").unwrap());
        assert!(super::running("no-such-if0").is_err());
    }

    #[test]
    fn loopback_has_an_mtu() {
        // 65536 since Linux 3.6; at least what IPv6 needs everywhere.
        assert!(super::mtu("lo").unwrap() >= 1280);
        assert!(super::mtu("no-such-if0").is_err());
        assert!(super::mtu("a-name-too-long-for-linux").is_err());
    }
}
