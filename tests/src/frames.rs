//! Frame builders for packet tests. Headers are written by etherparse with
//! freshly computed checksums, so an expected frame is an independent check
//! of the kernel program's incremental checksum updates and of the outer
//! headers it writes.

use std::net::IpAddr;

use etherparse::{
    EtherType, Ethernet2Header, IcmpEchoHeader, Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type,
    IpDscp, IpEcn, IpFragOffset, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, SingleVlanHeader,
    TcpHeader, UdpHeader, VlanId, VlanPcp, icmpv4,
};

/// The transport layer of a test packet.
#[derive(Clone, Copy, Debug)]
pub enum L4 {
    Udp {
        sport: u16,
        dport: u16,
    },
    Tcp {
        sport: u16,
        dport: u16,
    },
    /// A TCP segment with the fields customer latency reads.
    Segment(Segment),
    /// ICMPv4 echo request, or for IPv6 an ICMPv6 message of this type.
    Icmp {
        ty: u8,
    },
    /// Any other protocol number, payload only.
    Other(u8),
}

/// A TCP segment: ports, sequence and acknowledgement numbers, SYN and
/// ACK flags, raw options (at most 40 bytes, padded with EOL to 4).
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub syn: bool,
    pub ack_flag: bool,
    pub options: [u8; 40],
    pub options_len: usize,
}

impl Segment {
    /// A segment with only ACK set (ack 0) and no options.
    pub fn new(sport: u16, dport: u16, seq: u32) -> Self {
        Self {
            sport,
            dport,
            seq,
            ack: 0,
            syn: false,
            ack_flag: true,
            options: [0; 40],
            options_len: 0,
        }
    }

    /// SYN set; ACK set only if `ack` is given (a SYN-ACK).
    pub fn syn(mut self, ack: Option<u32>) -> Self {
        self.syn = true;
        self.ack_flag = ack.is_some();
        self.ack = ack.unwrap_or(0);
        self
    }

    pub fn acking(mut self, ack: u32) -> Self {
        self.ack_flag = true;
        self.ack = ack;
        self
    }

    /// Appends raw option bytes.
    pub fn option(mut self, bytes: &[u8]) -> Self {
        self.options[self.options_len..self.options_len + bytes.len()].copy_from_slice(bytes);
        self.options_len += bytes.len();
        self
    }

    /// Appends NOP, NOP, timestamps (RFC 7323), as Linux lays them out.
    pub fn timestamps(self, val: u32, ecr: u32) -> Self {
        let mut o = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        o[4..8].copy_from_slice(&val.to_be_bytes());
        o[8..12].copy_from_slice(&ecr.to_be_bytes());
        self.option(&o)
    }
}

/// An IP packet in an Ethernet frame, optionally VLAN-tagged.
#[derive(Clone, Debug)]
pub struct Pkt {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// VLAN ids, outermost first (802.1ad outer tag when there are two or more).
    pub vlans: Vec<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// The DS byte: DSCP << 2 | ECN (IPv4 TOS, IPv6 traffic class).
    pub tos: u8,
    /// IPv4 identification (varies the header checksum).
    pub ident: u16,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units (IPv4).
    pub frag_offset: u16,
    /// IPv4 options (a multiple of 4 bytes, at most 40).
    pub ipv4_options: Vec<u8>,
    /// An 8-byte IPv6 extension header of this type before the L4 header.
    pub v6_ext: Option<u8>,
    pub flow_label: u32,
    pub l4: L4,
    pub payload: Vec<u8>,
}

impl Pkt {
    /// A UDP packet `src:40000 → dst:5000` with TTL 64, ECN ECT(0), DF set.
    pub fn udp(src: &str, dst: &str) -> Self {
        Self {
            src_mac: [0x02, 0, 0, 0, 0x0c, 0x01],
            dst_mac: [0x02, 0, 0, 0, 0x0c, 0xfe],
            vlans: Vec::new(),
            src: src.parse().expect("src address"),
            dst: dst.parse().expect("dst address"),
            ttl: 64,
            tos: 0b10,
            ident: 0x1234,
            dont_fragment: true,
            more_fragments: false,
            frag_offset: 0,
            ipv4_options: Vec::new(),
            v6_ext: None,
            flow_label: 0x12345,
            l4: L4::Udp {
                sport: 40000,
                dport: 5000,
            },
            payload: b"edge packet test payload, 0123456789".to_vec(),
        }
    }

    /// The same packet with changes.
    pub fn with(&self, f: impl FnOnce(&mut Self)) -> Self {
        let mut p = self.clone();
        f(&mut p);
        p
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = self.l2(self.src_mac, self.dst_mac);
        out.extend_from_slice(&self.ip());
        out
    }

    /// The frame as forwarded in place: new MACs, TTL one lower, DSCP
    /// rewritten if `dscp` is given (ECN kept).
    pub fn forwarded(&self, src_mac: [u8; 6], dst_mac: [u8; 6], dscp: Option<u8>) -> Vec<u8> {
        self.next_hop(dscp)
            .with(|p| (p.src_mac, p.dst_mac) = (src_mac, dst_mac))
            .build()
    }

    /// The frame as encapsulated toward a tunnel endpoint: L2 (tags kept,
    /// new MACs), an outer IPv4 (RFC 2003) or IPv6 (RFC 2473) header, then
    /// the forwarded inner packet.
    pub fn encapsulated(
        &self,
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        dscp: Option<u8>,
        (tunnel_src, tunnel_dst): (IpAddr, IpAddr),
        outer_ttl: u8,
    ) -> Vec<u8> {
        let inner = self.next_hop(dscp);
        let inner_ip = inner.ip();
        let mut out = self.l2(src_mac, dst_mac);
        match (tunnel_src, tunnel_dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut h = Ipv4Header::new(
                    inner_ip.len() as u16,
                    outer_ttl,
                    IpNumber::IPV4,
                    s.octets(),
                    d.octets(),
                )
                .unwrap();
                h.dscp = IpDscp::try_new(inner.tos >> 2).unwrap();
                h.ecn = IpEcn::try_new(inner.tos & 3).unwrap();
                h.identification = 0;
                h.dont_fragment = inner.dont_fragment;
                h.header_checksum = h.calc_header_checksum();
                h.write(&mut out).unwrap();
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let ip6 = &inner_ip;
                Ipv6Header {
                    traffic_class: inner.tos,
                    flow_label: Ipv6FlowLabel::try_new(inner.flow_label).unwrap(),
                    payload_length: ip6.len() as u16,
                    next_header: IpNumber::IPV6,
                    hop_limit: outer_ttl,
                    source: s.octets(),
                    destination: d.octets(),
                }
                .write(&mut out)
                .unwrap();
            }
            _ => panic!("mixed tunnel address families"),
        }
        out.extend_from_slice(&inner_ip);
        out
    }

    /// The same packet with its payload resized so that the IP packet is
    /// `ip_len` bytes long (payload bytes in a pattern, so quotes differ).
    pub fn sized(&self, ip_len: usize) -> Self {
        let overhead = self.ip().len() - self.payload.len();
        assert!(ip_len >= overhead, "{ip_len} bytes cannot hold the headers");
        self.with(|p| p.payload = (0..ip_len - overhead).map(|i| (i * 7 + 3) as u8).collect())
    }

    /// The ICMP error edge sends back when this packet is too big for its
    /// PoP's link: from `from` (the PoP's tunnel source) to the packet's
    /// source, out of the ingress port (MACs swapped, VLAN tags kept), DS
    /// field CS6, TTL / hop limit 64. IPv4: "fragmentation needed" with
    /// next-hop MTU `mtu`, quoting the first 548 bytes of the packet (576
    /// in all, RFC 1812), or its header and 8 bytes when it is shorter;
    /// IPv6: "packet too big" with MTU `mtu`, quoting the first 1232 bytes
    /// (1280 in all, RFC 4443). The packet is quoted as received.
    pub fn too_big_reply(&self, from: IpAddr, mtu: u32) -> Vec<u8> {
        let ip = self.ip();
        let mut out = self.l2(self.dst_mac, self.src_mac);
        match (from, self.src) {
            (IpAddr::V4(f), IpAddr::V4(s)) => {
                let quote = &ip[..if ip.len() >= 548 { 548 } else { 28 }];
                let icmp = Icmpv4Header::with_checksum(
                    Icmpv4Type::DestinationUnreachable(
                        icmpv4::DestUnreachableHeader::FragmentationNeeded {
                            next_hop_mtu: u16::try_from(mtu).unwrap(),
                        },
                    ),
                    quote,
                );
                let mut h = Ipv4Header::new(
                    (icmp.header_len() + quote.len()) as u16,
                    64,
                    IpNumber::ICMP,
                    f.octets(),
                    s.octets(),
                )
                .unwrap();
                h.dscp = IpDscp::CS6;
                h.ecn = IpEcn::ZERO;
                h.identification = 0;
                h.dont_fragment = false;
                h.header_checksum = h.calc_header_checksum();
                h.write(&mut out).unwrap();
                icmp.write(&mut out).unwrap();
                out.extend_from_slice(quote);
            }
            (IpAddr::V6(f), IpAddr::V6(s)) => {
                let quote = &ip[..ip.len().min(1232)];
                let icmp = Icmpv6Header::with_checksum(
                    Icmpv6Type::PacketTooBig { mtu },
                    f.octets(),
                    s.octets(),
                    quote,
                )
                .unwrap();
                Ipv6Header {
                    traffic_class: IpDscp::CS6.value() << 2,
                    flow_label: Ipv6FlowLabel::ZERO,
                    payload_length: (icmp.header_len() + quote.len()) as u16,
                    next_header: IpNumber::IPV6_ICMP,
                    hop_limit: 64,
                    source: f.octets(),
                    destination: s.octets(),
                }
                .write(&mut out)
                .unwrap();
                icmp.write(&mut out).unwrap();
                out.extend_from_slice(quote);
            }
            _ => panic!("mixed address families"),
        }
        out
    }

    fn next_hop(&self, dscp: Option<u8>) -> Self {
        self.with(|p| {
            p.ttl -= 1;
            if let Some(d) = dscp {
                p.tos = (d << 2) | (p.tos & 3);
            }
        })
    }

    fn l2(&self, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Vec<u8> {
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
            source: src_mac,
            destination: dst_mac,
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
        out
    }

    /// The IP packet (header, extension, transport header, payload).
    fn ip(&self) -> Vec<u8> {
        let (proto, l4) = self.transport();
        let mut out = Vec::new();
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut ip =
                    Ipv4Header::new(l4.len() as u16, self.ttl, proto, s.octets(), d.octets())
                        .unwrap();
                ip.options = self
                    .ipv4_options
                    .as_slice()
                    .try_into()
                    .expect("IPv4 options");
                ip.identification = self.ident;
                ip.dscp = IpDscp::try_new(self.tos >> 2).unwrap();
                ip.ecn = IpEcn::try_new(self.tos & 3).unwrap();
                ip.dont_fragment = self.dont_fragment;
                ip.more_fragments = self.more_fragments;
                ip.fragment_offset = IpFragOffset::try_new(self.frag_offset).unwrap();
                ip.header_checksum = ip.calc_header_checksum();
                ip.write(&mut out).unwrap();
                out.extend_from_slice(&l4);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let ext_len = if self.v6_ext.is_some() { 8 } else { 0 };
                Ipv6Header {
                    traffic_class: self.tos,
                    flow_label: Ipv6FlowLabel::try_new(self.flow_label).unwrap(),
                    payload_length: (ext_len + l4.len()) as u16,
                    next_header: self.v6_ext.map(IpNumber).unwrap_or(proto),
                    hop_limit: self.ttl,
                    source: s.octets(),
                    destination: d.octets(),
                }
                .write(&mut out)
                .unwrap();
                if self.v6_ext.is_some() {
                    out.extend_from_slice(&[proto.0, 0, 0, 0, 0, 0, 0, 0]);
                }
                out.extend_from_slice(&l4);
            }
            _ => panic!("mixed address families"),
        }
        out
    }

    /// The transport header and payload, checksummed against the addresses.
    fn transport(&self) -> (IpNumber, Vec<u8>) {
        let mut out = Vec::new();
        let (src, dst) = (self.src, self.dst);
        let v6 = |a: IpAddr| match a {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        };
        let v4 = |a: IpAddr| match a {
            IpAddr::V4(a) => a.octets(),
            IpAddr::V6(_) => [0; 4],
        };
        let proto = match self.l4 {
            L4::Udp { sport, dport } => {
                let mut h = UdpHeader {
                    source_port: sport,
                    destination_port: dport,
                    length: (UdpHeader::LEN + self.payload.len()) as u16,
                    checksum: 0,
                };
                h.checksum = if src.is_ipv4() {
                    h.calc_checksum_ipv4_raw(v4(src), v4(dst), &self.payload)
                        .unwrap()
                } else {
                    h.calc_checksum_ipv6_raw(v6(src), v6(dst), &self.payload)
                        .unwrap()
                };
                h.write(&mut out).unwrap();
                IpNumber::UDP
            }
            L4::Tcp { .. } | L4::Segment(_) => {
                let mut h = match self.l4 {
                    L4::Segment(seg) => {
                        let mut h = TcpHeader::new(seg.sport, seg.dport, seg.seq, 4096);
                        h.acknowledgment_number = seg.ack;
                        h.syn = seg.syn;
                        h.ack = seg.ack_flag;
                        let padded = seg.options_len.div_ceil(4) * 4;
                        h.set_options_raw(&seg.options[..padded]).unwrap();
                        h
                    }
                    L4::Tcp { sport, dport } => TcpHeader::new(sport, dport, 1, 4096),
                    _ => unreachable!("a TCP variant"),
                };
                h.checksum = if src.is_ipv4() {
                    h.calc_checksum_ipv4_raw(v4(src), v4(dst), &self.payload)
                        .unwrap()
                } else {
                    h.calc_checksum_ipv6_raw(v6(src), v6(dst), &self.payload)
                        .unwrap()
                };
                h.write(&mut out).unwrap();
                IpNumber::TCP
            }
            L4::Icmp { ty } if src.is_ipv4() => {
                let t = Icmpv4Type::EchoRequest(IcmpEchoHeader {
                    id: 7,
                    seq: u16::from(ty),
                });
                Icmpv4Header::with_checksum(t, &self.payload)
                    .write(&mut out)
                    .unwrap();
                IpNumber::ICMP
            }
            L4::Icmp { ty } => {
                let t = Icmpv6Type::Unknown {
                    type_u8: ty,
                    code_u8: 0,
                    bytes5to8: [0; 4],
                };
                Icmpv6Header::with_checksum(t, v6(src), v6(dst), &self.payload)
                    .unwrap()
                    .write(&mut out)
                    .unwrap();
                IpNumber::IPV6_ICMP
            }
            L4::Other(p) => IpNumber(p),
        };
        out.extend_from_slice(&self.payload);
        (proto, out)
    }
}

/// An ARP request frame (not IP), optionally behind one VLAN tag.
pub fn arp_request(vlan: Option<u16>) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0x0c, 0x01]);
    if let Some(id) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&id.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x06]);
    // htype 1, ptype IPv4, hlen 6, plen 4, op request
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0x0c, 0x01, 192, 0, 2, 1]);
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 192, 0, 2, 254]);
    f.resize(60, 0);
    f
}

/// An LLDP frame (EtherType 0x88cc) to the nearest-bridge group address.
pub fn lldp() -> Vec<u8> {
    let mut f = vec![
        0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e, 0x02, 0, 0, 0, 0x0c, 0x01, 0x88, 0xcc,
    ];
    // Chassis ID TLV (type 1, len 7, MAC subtype) and End TLV.
    f.extend_from_slice(&[0x02, 0x07, 0x04, 0x02, 0, 0, 0, 0x0c, 0x01, 0x00, 0x00]);
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
        let f = Pkt::udp("192.0.2.1", "203.0.113.10").build();
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(f[15], 0b10, "ECN ECT(0)");
        assert!(ipv4_checksum_ok(&f[14..34]));
        let mut bad = f.clone();
        bad[22] ^= 1;
        assert!(!ipv4_checksum_ok(&bad[14..34]));
    }

    #[test]
    fn vlan_tags_nest() {
        let f = Pkt::udp("2001:db8:c::1", "2001:db8:a::10")
            .with(|p| p.vlans = vec![100, 200])
            .build();
        assert_eq!(&f[12..14], &[0x88, 0xa8]);
        assert_eq!(&f[16..18], &[0x81, 0x00]);
        assert_eq!(&f[20..22], &[0x86, 0xdd]);
        assert_eq!(f[22] >> 4, 6);
    }

    #[test]
    fn too_big_replies_have_the_rfc_sizes_and_quote_the_packet() {
        let p = Pkt::udp("203.0.113.200", "198.51.100.10")
            .with(|p| p.vlans = vec![7])
            .sized(1481);
        assert_eq!(p.build().len(), 18 + 1481);
        let f = p.too_big_reply("198.51.100.1".parse().unwrap(), 1480);
        assert_eq!(f.len(), 18 + 576);
        assert_eq!((&f[0..6], &f[6..12]), (&p.src_mac[..], &p.dst_mac[..]));
        assert_eq!(&f[12..18], &p.build()[12..18], "tag kept");
        assert!(ipv4_checksum_ok(&f[18..38]));
        assert_eq!((f[38], f[39]), (3, 4), "type, code");
        assert_eq!(&f[42..44], &[0, 0], "unused");
        assert_eq!(u16::from_be_bytes([f[44], f[45]]), 1480, "next-hop MTU");
        assert_eq!(&f[46..], &p.build()[18..18 + 548]);
        let short = Pkt::udp("203.0.113.200", "198.51.100.10").sized(500);
        let f = short.too_big_reply("198.51.100.1".parse().unwrap(), 380);
        assert_eq!(f.len(), 14 + 56);
        let p6 = Pkt::udp("2001:db8:1234::1", "2001:db8:a::10").sized(1461);
        let f = p6.too_big_reply("2001:db8:ff::1".parse().unwrap(), 1460);
        assert_eq!(f.len(), 14 + 1280);
        assert_eq!((f[14 + 40], f[14 + 41]), (2, 0), "type, code");
        assert_eq!(&f[14 + 44..14 + 48], &1460u32.to_be_bytes());
        assert_eq!(&f[14 + 48..], &p6.build()[14..14 + 1232]);
    }

    #[test]
    fn encapsulation_wraps_the_forwarded_packet() {
        let p = Pkt::udp("192.0.2.1", "198.51.100.10");
        let tunnel = (
            "198.51.100.1".parse().unwrap(),
            "203.0.113.1".parse().unwrap(),
        );
        let f = p.encapsulated([2; 6], [4; 6], Some(34), tunnel, 64);
        let inner = p.forwarded([9; 6], [9; 6], Some(34));
        assert_eq!(f.len(), inner.len() + 20);
        assert_eq!(&f[14..16], &[0x45, (34 << 2) | 0b10]);
        assert_eq!(f[14 + 9], 4, "protocol IPv4");
        assert!(ipv4_checksum_ok(&f[14..34]));
        assert_eq!(&f[34..], &inner[14..]);
        assert_eq!(f[34 + 8], 63, "inner TTL decremented");
    }
}
