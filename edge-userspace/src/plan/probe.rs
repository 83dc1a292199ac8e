//! A PoP's health probe as the config declares it (the probing itself is in `health`).

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

/// A PoP's health probe, validated (see docs/config.md, `[[pops]] probe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub kind: ProbeKind,
    /// The probe address (the PoP's own address, or the far end of its tunnel).
    pub address: IpAddr,
    /// Interface the probe is bound to (`SO_BINDTODEVICE`); `None` = the
    /// routing table decides.
    pub device: Option<String>,
    pub interval: Duration,
    /// Per probe; never longer than `interval`.
    pub timeout: Duration,
    /// Consecutive successes that bring a down PoP up.
    pub rise: u32,
    /// Consecutive failures that take an up PoP down.
    pub fall: u32,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            ProbeKind::Icmp => write!(f, "icmp {}", self.address)?,
            ProbeKind::Tcp { port } => write!(f, "tcp {}", SocketAddr::new(self.address, *port))?,
            ProbeKind::Http {
                port, path, status, ..
            } => write!(
                f,
                "http {}{path} (expect {status})",
                SocketAddr::new(self.address, *port)
            )?,
            ProbeKind::Udp { port, .. } => {
                write!(f, "udp echo {}", SocketAddr::new(self.address, *port))?
            }
        }
        if let Some(d) = &self.device {
            write!(f, " via {d}")?;
        }
        write!(
            f,
            ", every {:?} (timeout {:?}, rise {}, fall {})",
            self.interval, self.timeout, self.rise, self.fall
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// ICMP / ICMPv6 echo through a raw socket (needs CAP_NET_RAW).
    Icmp,
    /// A TCP connection is accepted (closed with a reset at once).
    Tcp { port: u16 },
    /// `GET path` answers with `status`.
    Http {
        port: u16,
        path: String,
        /// `Host` header; the probe address when `None`.
        host: Option<String>,
        status: u16,
    },
    /// `payload` sent in one datagram comes back unchanged.
    Udp { port: u16, payload: Vec<u8> },
}
