//! Policy selection tables: pure functions from a policy's method, members
//! and their health to the table the kernel indexes with a flow hash.
//!
//! The kernel never knows the method. A failover rewrites the tables of
//! the affected policies only, whatever the number of prefixes.

use edge_common::{POLICY_SLOTS, PolicyTable};

use crate::config::{Member, Method};

/// The table for `members` under `method`, counting only members for which
/// `up(pop)` holds. With no member up, every slot is `NO_POP` (the packet
/// goes to the kernel).
pub fn table(method: Method, members: &[Member], up: impl Fn(u32) -> bool) -> PolicyTable {
    let live: Vec<Member> = members.iter().copied().filter(|m| up(m.pop)).collect();
    let mut t = PolicyTable::default();
    match method {
        Method::Priority => {
            if let Some(best) = live.iter().min_by_key(|m| (m.priority, m.pop)) {
                t.pops[..POLICY_SLOTS].fill(best.pop as u16);
            }
        }
        Method::Weighted => maglev(&live, |m| m.weight, &mut t),
        Method::Multivalue => maglev(&live, |_| 1, &mut t),
    }
    t
}

/// 64-bit FNV-1a, for stable per-PoP permutations.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Weighted Maglev (Eisenbud et al., NSDI 2016): each member walks its own
/// permutation of the slots (offset and skip from a hash of its PoP id) and
/// claims the next free one in turn, until it holds its weight's share.
/// Because the permutations depend only on the member, a member leaving
/// moves (almost) only its own slots.
fn maglev(members: &[Member], weight: impl Fn(&Member) -> u32, t: &mut PolicyTable) {
    if members.is_empty() {
        return;
    }
    let m = POLICY_SLOTS as u64;
    let total: u64 = members.iter().map(|x| u64::from(weight(x))).sum();
    // Shares of the M slots: floor, then the remainder by largest fraction.
    let mut share: Vec<u64> = members
        .iter()
        .map(|x| m * u64::from(weight(x)) / total)
        .collect();
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((m * u64::from(weight(&members[i]))) % total));
    let missing = m - share.iter().sum::<u64>();
    for &i in order.iter().take(missing as usize) {
        share[i] += 1;
    }

    let perm: Vec<(u64, u64)> = members
        .iter()
        .map(|x| {
            let key = x.pop.to_le_bytes();
            (
                fnv1a(0x5eed_0001, &key) % m,
                fnv1a(0x5eed_0002, &key) % (m - 1) + 1,
            )
        })
        .collect();
    let mut next = vec![0u64; members.len()];
    let mut held = vec![0u64; members.len()];
    let mut taken = vec![false; POLICY_SLOTS];
    let mut filled = 0;
    while filled < POLICY_SLOTS {
        for (i, member) in members.iter().enumerate() {
            if held[i] >= share[i] {
                continue;
            }
            let (offset, skip) = perm[i];
            let slot = loop {
                let c = ((offset + next[i] * skip) % m) as usize;
                next[i] += 1;
                if !taken[c] {
                    break c;
                }
            };
            taken[slot] = true;
            t.pops[slot] = member.pop as u16;
            held[i] += 1;
            filled += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use edge_common::NO_POP;

    use super::*;

    fn member(pop: u32, weight: u32, priority: u32) -> Member {
        Member {
            pop,
            weight,
            priority,
        }
    }

    fn counts(t: &PolicyTable) -> std::collections::BTreeMap<u16, usize> {
        let mut c = std::collections::BTreeMap::new();
        for &p in &t.pops[..POLICY_SLOTS] {
            *c.entry(p).or_default() += 1;
        }
        c
    }

    #[test]
    fn priority_takes_the_lowest_number_that_is_up() {
        let members = [member(7, 1, 2), member(3, 1, 1), member(9, 1, 3)];
        assert_eq!(
            counts(&table(Method::Priority, &members, |_| true)),
            [(3, POLICY_SLOTS)].into()
        );
        assert_eq!(
            counts(&table(Method::Priority, &members, |p| p != 3)),
            [(7, POLICY_SLOTS)].into()
        );
        assert_eq!(
            counts(&table(Method::Priority, &members, |_| false)),
            [(NO_POP, POLICY_SLOTS)].into()
        );
    }

    #[test]
    fn weighted_shares_follow_the_weights_exactly() {
        let members = [member(0, 1, 1), member(1, 3, 2), member(2, 6, 3)];
        let c = counts(&table(Method::Weighted, &members, |_| true));
        // 1021 slots split 1:3:6 → 102.1, 306.3, 612.6 → 102, 306, 613.
        assert_eq!(c, [(0, 102), (1, 306), (2, 613)].into());
    }

    #[test]
    fn multivalue_spreads_evenly() {
        let members = [member(4, 9, 1), member(5, 1, 2), member(6, 1, 3)];
        let c = counts(&table(Method::Multivalue, &members, |_| true));
        assert_eq!(c.values().copied().collect::<Vec<_>>(), vec![341, 340, 340]);
    }

    #[test]
    fn a_weighted_member_leaving_moves_little_more_than_its_own_share() {
        let members = [
            member(0, 1, 1),
            member(1, 1, 2),
            member(2, 2, 3),
            member(3, 4, 4),
        ];
        let before = table(Method::Weighted, &members, |_| true);
        let after = table(Method::Weighted, &members, |p| p != 1);
        let moved = (0..POLICY_SLOTS)
            .filter(|&i| before.pops[i] != after.pops[i])
            .count();
        let own = (0..POLICY_SLOTS).filter(|&i| before.pops[i] == 1).count();
        assert_eq!(own, 128); // 1/8 of 1021, rounded
        // Maglev moves its own slots plus a small fraction of the rest.
        assert!(
            moved >= own && (moved as f64) < own as f64 * 1.5,
            "moved {moved}, own {own}"
        );
        assert!((0..POLICY_SLOTS).all(|i| after.pops[i] != 1));
    }

    #[test]
    fn tables_do_not_depend_on_member_order() {
        let a = [member(0, 2, 1), member(1, 1, 2)];
        let b = [member(1, 1, 2), member(0, 2, 1)];
        let (ta, tb) = (
            table(Method::Weighted, &a, |_| true),
            table(Method::Weighted, &b, |_| true),
        );
        let same = (0..POLICY_SLOTS)
            .filter(|&i| ta.pops[i] == tb.pops[i])
            .count();
        assert!(same > POLICY_SLOTS * 9 / 10, "{same}");
    }
}
