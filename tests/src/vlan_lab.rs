//! VLAN-tagged traffic without kernel VLAN devices: crafted frames sent
//! and frames read raw through AF_PACKET sockets at the far ends of the
//! edge's veths.
//!
//! The sender writes the tags into the frame itself (the edge's XDP
//! program sees them as written). On receive the kernel takes the outer tag
//! out of the frame before any packet socket sees it (`skb_vlan_untag` in
//! `__netif_receive_skb_core`, whatever `rxvlan` says) and reports it in
//! `PACKET_AUXDATA`: [`RawPort`] puts it back, so a received frame reads
//! as it was on the wire (a second tag stays in the frame).

use std::{
    os::fd::{AsRawFd as _, OwnedFd},
    time::{Duration, Instant},
};

use crate::netns::{Lab, in_netns};

/// One frame read from a [`RawPort`], tags back in place.
#[derive(Clone, Debug)]
pub struct Rx {
    pub at: Instant,
    pub frame: Vec<u8>,
}

/// An AF_PACKET socket bound to one interface of a namespace: sends
/// crafted frames out of it and reads what arrives on it.
pub struct RawPort {
    fd: OwnedFd,
    ifindex: u32,
    pub what: String,
}

const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

impl RawPort {
    pub fn open(ns: &str, ifname: &str) -> Self {
        let fd = crate::delayline::bound_packet_socket(ns, ifname);
        let name = ifname.to_string();
        let ifindex = in_netns(ns, move || {
            crate::harness::netdev::ifindex(&name).expect("ifindex")
        });
        let on: libc::c_int = 1;
        // SAFETY: valid fd and option pointer.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_AUXDATA,
                (&raw const on).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        assert_eq!(rc, 0, "PACKET_AUXDATA: {}", std::io::Error::last_os_error());
        // Room for every frame of a burst read after it (the default
        // buffer holds about 150 small frames).
        let size: libc::c_int = 16 << 20;
        // SAFETY: valid fd and option pointer.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const size).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        assert_eq!(rc, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
        Self {
            fd,
            ifindex,
            what: format!("{ns}/{ifname}"),
        }
    }

    /// Sends `frame` as it is (tags included) out of the interface.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: valid fd, buffer and address.
        let n = unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = self.ifindex as i32;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(&frame[..6]);
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(
            n,
            frame.len() as isize,
            "send on {}: {}",
            self.what,
            std::io::Error::last_os_error()
        );
    }

    /// The next incoming frame (not one this host sent) within `timeout`,
    /// its outer tag back in the frame.
    pub fn recv(&self, timeout: Duration) -> Option<Rx> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 9216];
        let mut control = [0u64; 64];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            crate::delayline::set_recv_timeout(&self.fd, left);
            // SAFETY: valid fd, buffers, and control messages walked
            // within the length the kernel returned.
            let got = unsafe {
                let mut from: libc::sockaddr_ll = std::mem::zeroed();
                let mut iov = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_name = (&raw mut from).cast();
                msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                msg.msg_iov = &raw mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = control.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&control) as _;
                let n = libc::recvmsg(self.fd.as_raw_fd(), &raw mut msg, 0);
                if n <= 0 || from.sll_pkttype == libc::PACKET_OUTGOING {
                    None
                } else {
                    let mut tag = None;
                    let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
                    while !c.is_null() {
                        if (*c).cmsg_level == libc::SOL_PACKET
                            && (*c).cmsg_type == libc::PACKET_AUXDATA
                        {
                            let aux: libc::tpacket_auxdata =
                                std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                            if aux.tp_status & TP_STATUS_VLAN_VALID != 0 {
                                let tpid = if aux.tp_status & TP_STATUS_VLAN_TPID_VALID != 0 {
                                    aux.tp_vlan_tpid
                                } else {
                                    0x8100
                                };
                                tag = Some((tpid, aux.tp_vlan_tci));
                            }
                        }
                        c = libc::CMSG_NXTHDR(&raw const msg, c);
                    }
                    Some((n as usize, tag))
                }
            };
            let Some((n, tag)) = got else {
                continue;
            };
            let mut frame = buf[..n].to_vec();
            if let Some((tpid, tci)) = tag {
                let mut t = tpid.to_be_bytes().to_vec();
                t.extend_from_slice(&tci.to_be_bytes());
                frame.splice(12..12, t);
            }
            return Some(Rx {
                at: Instant::now(),
                frame,
            });
        }
    }

    /// Every frame arriving until nothing more comes for `quiet`, and at
    /// most until `limit` has passed.
    pub fn drain(&self, quiet: Duration, limit: Duration) -> Vec<Rx> {
        let end = Instant::now() + limit;
        let mut out = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.recv(quiet.min(left)) {
                Some(rx) => out.push(rx),
                None => break,
            }
        }
        out
    }
}

/// The VLAN tags of a frame (TPID, VID), outermost first, and the offset
/// of what follows them.
pub fn tags(frame: &[u8]) -> (Vec<(u16, u16)>, usize) {
    let mut at = 12;
    let mut tags = Vec::new();
    while frame.len() >= at + 4 {
        let ty = u16::from_be_bytes([frame[at], frame[at + 1]]);
        if ty != 0x8100 && ty != 0x88a8 {
            break;
        }
        let tci = u16::from_be_bytes([frame[at + 2], frame[at + 3]]);
        tags.push((ty, tci));
        at += 4;
    }
    (tags, at)
}

/// Turns IPv6 off in `ns` (for interfaces created after), so the lab's
/// interfaces send nothing of their own (no router solicitations, MLD or
/// neighbour discovery): every frame on a wire is one the test sent.
pub fn quiet_ns(lab: &Lab, ns: &str) {
    lab.sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1");
    lab.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1");
}

/// `mac` (`02:00:...`) as bytes.
pub fn mac(s: &str) -> [u8; 6] {
    s.parse::<macaddr::MacAddr6>()
        .expect("MAC address")
        .into_array()
}
