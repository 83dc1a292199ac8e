//! Invariants shared by the fuzz targets.

use edge_userspace::{config::Invalid, plan::Plan};

/// A rejected config names at least one problem, and every line it names
/// is a line of `text` (1-based; a final line without a newline counts).
pub fn check_problems(text: &str, invalid: &Invalid) {
    assert!(!invalid.0.is_empty(), "rejected with no problem");
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    for p in &invalid.0 {
        assert!(!p.message.trim().is_empty(), "problem without a message");
        if let Some(line) = p.line {
            assert!(
                (1..=lines).contains(&line),
                "problem on line {line} of a {lines}-line text: {p}"
            );
        }
    }
}

/// Every id in an accepted plan points at something in it.
pub fn check_plan(plan: &Plan) {
    let (ports, pops, policies) = (plan.ports.len(), plan.pops.len(), plan.policies.len());
    for exit in [plan.backbone_exit, plan.transit_exit]
        .into_iter()
        .flatten()
    {
        assert!(
            (exit.policy as usize) < policies,
            "exit policy {} of {policies}",
            exit.policy
        );
    }
    for pop in &plan.pops {
        assert!(
            plan.ports.iter().any(|p| p.interface == pop.interface),
            "PoP {} on {}, not a port",
            pop.name,
            pop.interface
        );
    }
    for policy in &plan.policies {
        for m in &policy.members {
            let ok = match m.target {
                edge_userspace::plan::Target::Pop(p) => (p as usize) < pops,
                edge_userspace::plan::Target::Policy(q) => (q as usize) < policies,
            };
            assert!(ok, "policy {} member {:?}", policy.name, m.target);
        }
    }
    for (i, p) in plan.prefixes.iter().enumerate() {
        if let Some(policy) = p.policy {
            assert!(
                (policy as usize) < policies,
                "prefix {} policy {policy}",
                p.net
            );
        }
        if let Some(dscp) = p.dscp {
            assert!(dscp < 64, "prefix {} DSCP {dscp}", p.net);
        }
        for &port in &p.protect {
            assert!(
                (port as usize) < ports,
                "prefix {} protects port {port}",
                p.net
            );
        }
        assert_eq!(p.net, p.net.trunc(), "prefix {} has host bits", p.net);
        assert!(
            plan.prefixes[..i].iter().all(|q| q.net != p.net),
            "prefix {} twice",
            p.net
        );
    }
}
