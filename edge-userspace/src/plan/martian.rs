//! Special-purpose ranges a router never forwards to or from (RFC 1812
//! 5.3.7, RFC 4291 2.5, RFC 6890): a registered prefix may not lie inside
//! one. The XDP program drops packets with such a source or destination
//! (reason `martian`) even when a registered prefix (a default route from
//! BGP, say) covers them.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// (range, what it is) for IPv4.
const V4: [(Ipv4Addr, u8, &str); 5] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" (RFC 1122)"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local (RFC 3927)"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (
        Ipv4Addr::new(240, 0, 0, 0),
        4,
        "reserved and broadcast (RFC 1112)",
    ),
];

/// (range, what it is) for IPv6.
const V6: [(Ipv6Addr, u8, &str); 5] = [
    (Ipv6Addr::UNSPECIFIED, 128, "the unspecified address"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
        96,
        "IPv4-mapped (RFC 4291)",
    ),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

/// The special-purpose range `net` lies in (or is), described, if any.
pub fn martian(net: &IpNet) -> Option<String> {
    match net {
        IpNet::V4(n) => V4.iter().find_map(|&(a, len, what)| {
            let range = Ipv4Net::new(a, len).expect("valid length");
            range.contains(n).then(|| format!("{range} ({what})"))
        }),
        IpNet::V6(n) => V6.iter().find_map(|&(a, len, what)| {
            let range = Ipv6Net::new(a, len).expect("valid length");
            range.contains(n).then(|| format!("{range} ({what})"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_ranges_and_their_insides_are_martian_and_nothing_else() {
        let m = |s: &str| martian(&s.parse().unwrap());
        for inside in [
            "127.0.0.0/8",
            "127.1.0.0/16",
            "0.0.0.0/8",
            "169.254.1.0/24",
            "224.0.0.0/4",
            "239.1.1.0/24",
            "240.0.0.0/4",
            "255.255.255.255/32",
            "::/128",
            "::1/128",
            "::ffff:192.0.2.0/120",
            "fe80::/64",
            "ff02::/16",
        ] {
            assert!(m(inside).is_some(), "{inside}");
        }
        // Containing a special range is fine (a default route): the data
        // plane drops the martian packets themselves.
        for outside in [
            "0.0.0.0/0",
            "::/0",
            "192.0.2.0/24",
            "198.18.0.0/15",
            "2001:db8::/32",
            "::/96",
            "128.0.0.0/1",
        ] {
            assert_eq!(m(outside), None, "{outside}");
        }
        assert_eq!(m("127.0.0.1/32").unwrap(), "127.0.0.0/8 (loopback)");
    }
}
