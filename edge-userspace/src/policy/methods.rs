//! Policy selection tables: pure functions from a policy's method, members
//! and their health to the table the kernel indexes with a flow hash.
//!
//! The kernel never knows the method. A failover rewrites the tables of
//! the affected policies only, whatever the number of prefixes.

use std::time::Duration;

use edge_common::{POLICY_SLOTS, PolicyTable};

use crate::plan::{Hysteresis, Member, Method, Target};

/// The table for the PoP members of `members` under `method`, counting
/// only members for which `up(pop)` holds; with no member up, every slot is
/// `NO_POP` (the packet goes to the kernel). Flat policies only: nested
/// members are left out, `performance` acts as `priority` (no RTTs here),
/// `geographic` as `weighted` over every member, `subnet` as its fallback
/// member. The daemon uses [`super::resolve`], which handles every method,
/// nesting and the fallback.
pub fn table(method: Method, members: &[Member], up: impl Fn(u32) -> bool) -> PolicyTable {
    let live: Vec<(u32, &Member)> = members
        .iter()
        .filter_map(|m| match m.target {
            Target::Pop(p) if up(p) => Some((p, m)),
            _ => None,
        })
        .collect();
    let mut t = PolicyTable::default();
    let pick = |i: usize| live[i].0 as u16;
    match method {
        Method::Priority | Method::Performance => {
            if let Some(best) = priority(live.iter().map(|(_, m)| m.priority)) {
                t.pops[..POLICY_SLOTS].fill(pick(best));
            }
        }
        Method::Subnet => {
            if let Some(i) = live.iter().position(|(_, m)| m.subnets.is_empty()) {
                t.pops[..POLICY_SLOTS].fill(pick(i));
            }
        }
        Method::Weighted | Method::Geographic | Method::Multivalue => {
            let weighted: Vec<(Target, u32)> = live
                .iter()
                .map(|(p, m)| {
                    let w = if method == Method::Multivalue {
                        1
                    } else {
                        m.weight
                    };
                    (Target::Pop(*p), w)
                })
                .collect();
            for (slot, owner) in maglev(&weighted).into_iter().enumerate() {
                t.pops[slot] = pick(owner);
            }
        }
    }
    t
}

/// A table sending every slot to `pop`.
pub fn single(pop: u32) -> PolicyTable {
    let mut t = PolicyTable::default();
    t.pops[..POLICY_SLOTS].fill(pop as u16);
    t
}

/// The index of the lowest priority number (the first on a tie).
pub fn priority(priorities: impl Iterator<Item = u32>) -> Option<usize> {
    priorities
        .enumerate()
        .min_by_key(|&(i, p)| (p, i))
        .map(|(i, _)| i)
}

/// The performance method's choice among live candidates, each with its RTT
/// (`None`: no sample yet) and priority number; `current` is the previous
/// choice (an index into `candidates`) if it is still live.
///
/// The lowest RTT wins, but the current choice is kept unless the best is
/// faster by more than `max(h.absolute, h.percent % of the current RTT)`,
/// so noise does not flap traffic. Candidates without an RTT lose to any
/// with one; when none has an RTT, the lowest priority number wins. Ties go
/// to the lower priority number, then the earlier candidate.
pub fn performance(
    candidates: &[(Option<Duration>, u32)],
    current: Option<usize>,
    h: &Hysteresis,
) -> Option<usize> {
    let best = candidates
        .iter()
        .enumerate()
        .filter_map(|(i, (rtt, prio))| rtt.map(|r| (r, *prio, i)))
        .min()
        .map(|(_, _, i)| i);
    let Some(best) = best else {
        return priority(candidates.iter().map(|c| c.1));
    };
    match current.and_then(|c| candidates.get(c).map(|x| (c, x.0))) {
        Some((c, Some(cur))) => {
            let best_rtt = candidates[best].0.unwrap_or_default();
            let threshold = h.absolute.max(cur.mul_f64(f64::from(h.percent) / 100.0));
            if cur.saturating_sub(best_rtt) > threshold {
                Some(best)
            } else {
                Some(c)
            }
        }
        _ => Some(best),
    }
}

/// 64-bit FNV-1a, for stable per-member permutations.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The bytes a member's Maglev permutation is derived from: a PoP's id
/// (little endian), a policy's id after a `P`.
fn maglev_key(t: Target) -> Vec<u8> {
    match t {
        Target::Pop(p) => p.to_le_bytes().to_vec(),
        Target::Policy(p) => [&[b'P'][..], &p.to_le_bytes()].concat(),
    }
}

/// Weighted Maglev (Eisenbud et al., NSDI 2016) over `(member, weight)`:
/// the owner (index into `members`) of each of the `POLICY_SLOTS` slots.
/// Each member walks its own permutation of the slots (offset and skip from
/// a hash of the member) and claims the next free one in turn, until it
/// holds its weight's share. Because the permutations depend only on the
/// member, a member leaving moves (almost) only its own slots. Empty when
/// `members` is.
pub fn maglev(members: &[(Target, u32)]) -> Vec<usize> {
    if members.is_empty() {
        return Vec::new();
    }
    let m = POLICY_SLOTS as u64;
    let total: u64 = members.iter().map(|x| u64::from(x.1)).sum();
    // Shares of the M slots: floor, then the remainder by largest fraction.
    let mut share: Vec<u64> = members.iter().map(|x| m * u64::from(x.1) / total).collect();
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse((m * u64::from(members[i].1)) % total));
    let missing = m - share.iter().sum::<u64>();
    for &i in order.iter().take(missing as usize) {
        share[i] += 1;
    }

    let perm: Vec<(u64, u64)> = members
        .iter()
        .map(|x| {
            let key = maglev_key(x.0);
            (
                fnv1a(0x5eed_0001, &key) % m,
                fnv1a(0x5eed_0002, &key) % (m - 1) + 1,
            )
        })
        .collect();
    let mut next = vec![0u64; members.len()];
    let mut held = vec![0u64; members.len()];
    let mut owner = vec![usize::MAX; POLICY_SLOTS];
    let mut filled = 0;
    while filled < POLICY_SLOTS {
        for i in 0..members.len() {
            if held[i] >= share[i] {
                continue;
            }
            let (offset, skip) = perm[i];
            let slot = loop {
                let c = ((offset + next[i] * skip) % m) as usize;
                next[i] += 1;
                if owner[c] == usize::MAX {
                    break c;
                }
            };
            owner[slot] = i;
            held[i] += 1;
            filled += 1;
        }
    }
    owner
}

#[cfg(test)]
mod tests {
    use edge_common::NO_POP;

    use super::*;

    fn member(pop: u32, weight: u32, priority: u32) -> Member {
        Member::pop(pop, weight, priority)
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
