//! A binary prefix trie per family over the registered prefixes: which
//! registered prefix (the longest) covers an announced one. Announcements
//! no registered prefix covers are not kept at all, so a full table costs
//! only its lookups.

use ipnet::IpNet;

#[derive(Debug, Clone, Copy, Default)]
struct Node {
    /// Child node indexes (0: none; the root is never a child).
    child: [u32; 2],
    /// The value of the prefix ending here.
    value: Option<u32>,
}

/// One family's trie: prefix → value (an index into the caller's list).
#[derive(Debug, Clone)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
}

impl Default for Trie {
    fn default() -> Self {
        Self {
            nodes: vec![Node::default()],
        }
    }
}

/// A network's bits, left-aligned in a u128, and its length.
fn bits(net: &IpNet) -> (u128, u8) {
    match net {
        IpNet::V4(n) => ((u128::from(u32::from(n.network()))) << 96, n.prefix_len()),
        IpNet::V6(n) => (u128::from(n.network()), n.prefix_len()),
    }
}

fn bit(v: u128, i: u8) -> usize {
    ((v >> (127 - i)) & 1) as usize
}

impl Trie {
    /// Sets `net`'s value (replacing any).
    pub(crate) fn insert(&mut self, net: &IpNet, value: u32) {
        let (v, len) = bits(net);
        let mut at = 0usize;
        for i in 0..len {
            let b = bit(v, i);
            let next = self.nodes[at].child[b];
            at = if next == 0 {
                self.nodes.push(Node::default());
                let n = (self.nodes.len() - 1) as u32;
                self.nodes[at].child[b] = n;
                n as usize
            } else {
                next as usize
            };
        }
        self.nodes[at].value = Some(value);
    }

    /// The value of the longest prefix in the trie that covers `net`
    /// (equal to it or shorter), and that prefix's length.
    pub(crate) fn covering(&self, net: &IpNet) -> Option<(u8, u32)> {
        let (v, len) = bits(net);
        let mut at = 0usize;
        let mut best = self.nodes[0].value.map(|x| (0, x));
        for i in 0..len {
            let next = self.nodes[at].child[bit(v, i)];
            if next == 0 {
                break;
            }
            at = next as usize;
            if let Some(x) = self.nodes[at].value {
                best = Some((i + 1, x));
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn longest_covering_prefix() {
        let mut t = Trie::default();
        t.insert(&net("192.0.2.0/24"), 1);
        t.insert(&net("192.0.2.128/25"), 2);
        t.insert(&net("2001:db8::/32"), 3);
        assert_eq!(t.covering(&net("192.0.2.0/24")), Some((24, 1)));
        assert_eq!(t.covering(&net("192.0.2.0/25")), Some((24, 1)));
        assert_eq!(t.covering(&net("192.0.2.200/32")), Some((25, 2)));
        assert_eq!(t.covering(&net("192.0.0.0/16")), None);
        assert_eq!(t.covering(&net("198.51.100.0/24")), None);
        assert_eq!(t.covering(&net("2001:db8:1::/48")), Some((32, 3)));
        let mut root = Trie::default();
        root.insert(&net("0.0.0.0/0"), 9);
        assert_eq!(root.covering(&net("203.0.113.0/24")), Some((0, 9)));
    }
}
