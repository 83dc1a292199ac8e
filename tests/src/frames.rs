//! Frame builders for packet tests. Headers are written by etherparse with
//! freshly computed checksums, so an expected frame is an independent check
//! of the kernel program's incremental checksum update.

use std::net::IpAddr;

use etherparse::{
    EtherType, Ethernet2Header, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, SingleVlanHeader,
    UdpHeader, VlanId, VlanPcp,
};

/// A UDP datagram in an Ethernet frame, optionally VLAN-tagged.
#[derive(Clone, Debug)]
pub struct Udp {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// VLAN ids, outermost first (802.1ad outer tag when there are two).
    pub vlans: Vec<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 options (a multiple of 4 bytes, at most 40).
    pub ipv4_options: Vec<u8>,
    /// IPv4 identification (varies the header checksum).
    pub ident: u16,
    pub payload: Vec<u8>,
}

impl Udp {
    pub fn new(src: &str, dst: &str) -> Self {
        Self {
            src_mac: [0x02, 0, 0, 0, 0x0c, 0x01],
            dst_mac: [0x02, 0, 0, 0, 0x0c, 0xfe],
            vlans: Vec::new(),
            src: src.parse().expect("src address"),
            dst: dst.parse().expect("dst address"),
            ttl: 64,
            ipv4_options: Vec::new(),
            ident: 0x1234,
            payload: b"edge packet test payload, 0123456789".to_vec(),
        }
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let ip_type = if self.src.is_ipv4() {
            EtherType::IPV4
        } else {
            EtherType::IPV6
        };
        let first_type = match self.vlans.len() {
            0 => ip_type,
            1 => EtherType::VLAN_TAGGED_FRAME,
            _ => EtherType::PROVIDER_BRIDGING,
        };
        Ethernet2Header {
            source: self.src_mac,
            destination: self.dst_mac,
            ether_type: first_type,
        }
        .write(&mut out)
        .unwrap();
        for (i, &id) in self.vlans.iter().enumerate() {
            let next = if i + 1 == self.vlans.len() {
                ip_type
            } else {
                EtherType::VLAN_TAGGED_FRAME
            };
            SingleVlanHeader {
                pcp: VlanPcp::ZERO,
                drop_eligible_indicator: false,
                vlan_id: VlanId::try_new(id).unwrap(),
                ether_type: next,
            }
            .write(&mut out)
            .unwrap();
        }
        let udp_len = (UdpHeader::LEN + self.payload.len()) as u16;
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut ip =
                    Ipv4Header::new(udp_len, self.ttl, IpNumber::UDP, s.octets(), d.octets())
                        .unwrap();
                ip.options = self
                    .ipv4_options
                    .as_slice()
                    .try_into()
                    .expect("IPv4 options");
                ip.identification = self.ident;
                ip.header_checksum = ip.calc_header_checksum();
                ip.write(&mut out).unwrap();
                UdpHeader::with_ipv4_checksum(40000, 5000, &ip, &self.payload)
                    .unwrap()
                    .write(&mut out)
                    .unwrap();
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let ip = Ipv6Header {
                    traffic_class: 0,
                    flow_label: Ipv6FlowLabel::try_new(0x12345).unwrap(),
                    payload_length: udp_len,
                    next_header: IpNumber::UDP,
                    hop_limit: self.ttl,
                    source: s.octets(),
                    destination: d.octets(),
                };
                ip.write(&mut out).unwrap();
                UdpHeader::with_ipv6_checksum(40000, 5000, &ip, &self.payload)
                    .unwrap()
                    .write(&mut out)
                    .unwrap();
            }
            _ => panic!("mixed address families"),
        }
        out.extend_from_slice(&self.payload);
        out
    }

    /// The same frame as forwarded to a next hop: new MACs, TTL one lower.
    pub fn forwarded(&self, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Vec<u8> {
        Self {
            src_mac,
            dst_mac,
            ttl: self.ttl - 1,
            ..self.clone()
        }
        .build()
    }
}

/// An ARP request frame (not IP).
pub fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0x0c, 0x01, 0x08, 0x06]);
    // htype 1, ptype IPv4, hlen 6, plen 4, op request
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0x0c, 0x01, 192, 0, 2, 1]);
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 192, 0, 2, 254]);
    f.resize(60, 0);
    f
}

/// Checks an IPv4 header's checksum from scratch (RFC 791: the one's
/// complement sum of the header words is 0xFFFF).
pub fn ipv4_checksum_ok(header: &[u8]) -> bool {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum == 0xFFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ipv4_header_checks_out() {
        let f = Udp::new("192.0.2.1", "203.0.113.10").build();
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert!(ipv4_checksum_ok(&f[14..34]));
        let mut bad = f.clone();
        bad[22] ^= 1;
        assert!(!ipv4_checksum_ok(&bad[14..34]));
    }

    #[test]
    fn vlan_tags_nest() {
        let mut u = Udp::new("2001:db8:c::1", "2001:db8:a::10");
        u.vlans = vec![100, 200];
        let f = u.build();
        assert_eq!(&f[12..14], &[0x88, 0xa8]);
        assert_eq!(&f[16..18], &[0x81, 0x00]);
        assert_eq!(&f[20..22], &[0x86, 0xdd]);
        assert_eq!(f[22] >> 4, 6);
    }
}
