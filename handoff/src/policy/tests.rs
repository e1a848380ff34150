use super::*;
use crate::msg::Load;

fn http(host: Option<&str>, path: &str) -> Request {
    Request::Http {
        method: "GET".into(),
        path: path.into(),
        host: host.map(Into::into),
    }
}

fn tls(sni: Option<&str>) -> Request {
    Request::Tls {
        sni: sni.map(Into::into),
    }
}

fn pattern(p: &str) -> HostPattern {
    p.parse().unwrap()
}

fn pool(name: &str, nodes: &[&str], strategy: Strategy) -> Pool {
    Pool {
        name: name.into(),
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        strategy,
    }
}

fn handoff(node: &str) -> Decision {
    Decision::Handoff { node: node.into() }
}

fn load(active: u32, pending: u32) -> Load {
    Load {
        active_connections: active,
        pending_handoffs: pending,
        handed_in: 0,
        draining: false,
    }
}

/// A view in which every listed peer is up with the given load.
fn view(local: u32, peers: &[(&str, u32)]) -> ClusterView {
    let mut view = ClusterView::new();
    view.set_local_load(load(local, 0));
    for (name, active) in peers {
        view.set_up(name, true);
        view.set_load(name, load(*active, 0));
    }
    view
}

#[test]
fn host_patterns() {
    let cases = [
        ("example.com", "example.com", true),
        ("Example.COM.", "example.com", true),
        ("example.com", "www.example.com", false),
        ("*.example.com", "www.example.com", true),
        ("*.example.com", "a.b.example.com", true),
        ("*.example.com", "example.com", false),
        ("*.example.com", "badexample.com", false),
        ("*.Example.com", "x.example.com", true),
    ];
    for (p, host, expected) in cases {
        assert_eq!(pattern(p).matches(host), expected, "{p} vs {host}");
    }
    assert_eq!(pattern("*.Example.com").to_string(), "*.example.com");
    for bad in ["", "*.", "*", "a.*.com", "**.a", "a b", "caf\u{e9}"] {
        assert!(
            matches!(
                bad.parse::<HostPattern>(),
                Err(PolicyError::BadPattern { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn rules_first_match_wins_and_default_is_local() {
    let rules = vec![
        Rule::to_pool("img")
            .host(pattern("*.example.com"))
            .path_prefix("/img/"),
        Rule::to_pool("b").host(pattern("b.example.com")),
        Rule::to_pool("b").path_prefix("/b/"),
        Rule::to_pool("tls-c").sni(pattern("*.secure.example")),
        Rule::to_pool("tls-b").sni(pattern("b.example.com")),
    ];
    let pools = vec![
        pool("img", &["c"], Strategy::LocalFirst),
        pool("b", &["b"], Strategy::LocalFirst),
        pool("tls-b", &["b"], Strategy::LocalFirst),
        pool("tls-c", &["c"], Strategy::LocalFirst),
    ];
    let mut policy = Policy::new(rules, pools, "a").unwrap();
    let cluster = view(0, &[("b", 0), ("c", 0)]);
    let cases = [
        (http(Some("www.example.com"), "/img/x.png"), handoff("c")),
        (http(Some("b.example.com"), "/img/x.png"), handoff("c")),
        (http(Some("b.example.com"), "/index.html"), handoff("b")),
        (http(Some("example.com"), "/img/x.png"), Decision::Local),
        (http(None, "/b/x"), handoff("b")),
        (http(Some("other"), "/b/x"), handoff("b")),
        (http(Some("other"), "/bx"), Decision::Local),
        (http(None, "/"), Decision::Local),
        // Host rules never match TLS, SNI rules never match HTTP.
        (tls(Some("b.example.com")), handoff("b")),
        (tls(Some("www.secure.example")), handoff("c")),
        (tls(Some("secure.example")), Decision::Local),
        (tls(None), Decision::Local),
        (http(Some("www.secure.example"), "/"), Decision::Local),
    ];
    for (req, expected) in cases {
        assert_eq!(policy.decide(&req, &cluster), expected, "{req:?}");
    }
}

#[test]
fn a_rule_without_conditions_matches_everything() {
    let mut policy = Policy::new(
        vec![Rule::to_pool("all")],
        vec![pool("all", &["b"], Strategy::LeastLoaded)],
        "a",
    )
    .unwrap();
    let cluster = view(0, &[("b", 0)]);
    assert_eq!(policy.decide(&http(None, "/"), &cluster), handoff("b"));
    assert_eq!(policy.decide(&tls(None), &cluster), handoff("b"));
}

#[test]
fn validation_errors() {
    let ok_pool = || pool("p", &["a", "b"], Strategy::LocalFirst);
    let cases: Vec<(Vec<Rule>, Vec<Pool>, PolicyError)> = vec![
        (
            vec![Rule::to_pool("p"), Rule::to_pool("nope")],
            vec![ok_pool()],
            PolicyError::UnknownPool {
                rule: 1,
                pool: "nope".into(),
            },
        ),
        (
            vec![],
            vec![pool("e", &[], Strategy::LocalFirst)],
            PolicyError::EmptyPool { pool: "e".into() },
        ),
        (
            vec![],
            vec![ok_pool(), ok_pool()],
            PolicyError::DuplicatePool { pool: "p".into() },
        ),
        (
            vec![],
            vec![pool("d", &["a", "b", "a"], Strategy::LeastLoaded)],
            PolicyError::DuplicateNode {
                pool: "d".into(),
                node: "a".into(),
            },
        ),
        (
            vec![Rule::to_pool("p").host(pattern("h")).sni(pattern("h"))],
            vec![ok_pool()],
            PolicyError::HostAndSni { rule: 0 },
        ),
        (
            vec![Rule::to_pool("p").path_prefix("img/")],
            vec![ok_pool()],
            PolicyError::BadPathPrefix {
                rule: 0,
                prefix: "img/".into(),
            },
        ),
        (
            vec![],
            vec![pool(
                "h",
                &["a"],
                Strategy::ConsistentHash { table_size: 65536 },
            )],
            PolicyError::BadTableSize {
                pool: "h".into(),
                size: 65536,
                nodes: 1,
            },
        ),
        (
            vec![],
            vec![pool(
                "h",
                &["a", "b", "c"],
                Strategy::ConsistentHash { table_size: 3 },
            )],
            PolicyError::BadTableSize {
                pool: "h".into(),
                size: 3,
                nodes: 3,
            },
        ),
        (
            vec![],
            vec![pool(
                "l",
                &["a"],
                Strategy::Lard(LardConfig {
                    t_low: 65,
                    t_high: 65,
                    max_targets: 10,
                }),
            )],
            PolicyError::BadThresholds {
                pool: "l".into(),
                t_low: 65,
                t_high: 65,
            },
        ),
        (
            vec![],
            vec![pool(
                "l",
                &["a"],
                Strategy::Lard(LardConfig {
                    t_low: 0,
                    t_high: 65,
                    max_targets: 10,
                }),
            )],
            PolicyError::BadThresholds {
                pool: "l".into(),
                t_low: 0,
                t_high: 65,
            },
        ),
    ];
    for (rules, pools, expected) in cases {
        assert_eq!(Policy::new(rules, pools, "a").unwrap_err(), expected);
    }
    assert!(Policy::new(vec![], vec![], "a").is_ok());
}

/// One decision: this node, the pool, the view's peers (name, up, load), this
/// node's load, and the expected decision.
struct Case {
    this: &'static str,
    nodes: &'static [&'static str],
    peers: &'static [(&'static str, bool, u32)],
    local: u32,
    expected: Expected,
}

/// What a [`Case`] expects.
enum Expected {
    Here,
    Off(&'static str),
    Nobody,
}

use Expected::{Here, Nobody, Off};

fn run(strategy: Strategy, cases: &[Case]) {
    for (i, case) in cases.iter().enumerate() {
        let mut policy = Policy::new(
            vec![Rule::to_pool("p")],
            vec![pool("p", case.nodes, strategy.clone())],
            case.this,
        )
        .unwrap();
        let mut cluster = ClusterView::new();
        cluster.set_local_load(load(case.local, 0));
        for &(name, up, active) in case.peers {
            cluster.set_up(name, up);
            cluster.set_load(name, load(active, 0));
        }
        let expected = match case.expected {
            Here => Decision::Local,
            Off(node) => handoff(node),
            Nobody => Decision::Unavailable { pool: "p".into() },
        };
        assert_eq!(
            policy.decide(&http(Some("h"), "/"), &cluster),
            expected,
            "{strategy:?} case {i}"
        );
    }
}

#[test]
fn local_first() {
    #[rustfmt::skip]
    run(Strategy::LocalFirst, &[
        // This node is a member: always local, however loaded.
        Case { this: "a", nodes: &["a", "b"], peers: &[("b", true, 0)], local: 1000, expected: Here },
        // Not a member: the least-loaded member that is up.
        Case { this: "a", nodes: &["b", "c"], peers: &[("b", true, 5), ("c", true, 3)], local: 0, expected: Off("c") },
        Case { this: "a", nodes: &["b", "c"], peers: &[("b", true, 5), ("c", false, 3)], local: 0, expected: Off("b") },
        // Ties go to the first listed.
        Case { this: "a", nodes: &["c", "b"], peers: &[("b", true, 3), ("c", true, 3)], local: 0, expected: Off("c") },
        // Nobody up, or never heard of, and this node is no member: nobody
        // can serve it.
        Case { this: "a", nodes: &["b", "c"], peers: &[("b", false, 0)], local: 0, expected: Nobody },
    ]);
}

#[test]
fn least_loaded() {
    #[rustfmt::skip]
    run(Strategy::LeastLoaded, &[
        Case { this: "a", nodes: &["a", "b", "c"], peers: &[("b", true, 3), ("c", true, 1)], local: 2, expected: Off("c") },
        Case { this: "a", nodes: &["a", "b", "c"], peers: &[("b", true, 3), ("c", true, 1)], local: 0, expected: Here },
        // A tie with this node stays local.
        Case { this: "a", nodes: &["b", "a"], peers: &[("b", true, 2)], local: 2, expected: Here },
        // Down nodes are never chosen, however idle.
        Case { this: "a", nodes: &["a", "b", "c"], peers: &[("b", false, 0), ("c", true, 9)], local: 10, expected: Off("c") },
        Case { this: "a", nodes: &["b"], peers: &[("b", false, 0)], local: 10, expected: Nobody },
        Case { this: "a", nodes: &["a", "b"], peers: &[("b", false, 0)], local: 10, expected: Here },
    ]);
}

#[test]
fn least_loaded_counts_pending_handoffs() {
    let mut policy = Policy::new(
        vec![Rule::to_pool("p")],
        vec![pool("p", &["b", "c"], Strategy::LeastLoaded)],
        "a",
    )
    .unwrap();
    let mut cluster = view(0, &[("b", 2), ("c", 1)]);
    cluster.set_load("c", load(1, 5));
    assert_eq!(policy.decide(&http(None, "/"), &cluster), handoff("b"));
}

fn hash_policy(this: &str, nodes: &[&str], table_size: usize) -> Policy {
    Policy::new(
        vec![Rule::to_pool("p")],
        vec![pool("p", nodes, Strategy::ConsistentHash { table_size })],
        this,
    )
    .unwrap()
}

/// The node a decision names, with Local mapped back to `this`.
fn node_of(decision: Decision, this: &str) -> String {
    match decision {
        Decision::Local => this.to_owned(),
        Decision::Handoff { node } => node,
        Decision::Unavailable { pool } => format!("unavailable({pool})"),
    }
}

#[test]
fn consistent_hash_agrees_across_nodes_and_member_orders() {
    let nodes = ["n1", "n2", "n3"];
    let mut on_n1 = hash_policy("n1", &nodes, 4099);
    let mut on_n3 = hash_policy("n3", &["n3", "n1", "n2"], 4099);
    let mut view_n1 = view(0, &[("n2", 0), ("n3", 0)]);
    let view_n3 = view(0, &[("n1", 0), ("n2", 0)]);
    let mut counts = std::collections::HashMap::new();
    for i in 0..3000 {
        let req = http(Some("www.example.com"), &format!("/obj/{i}"));
        let a = node_of(on_n1.decide(&req, &view_n1), "n1");
        let b = node_of(on_n3.decide(&req, &view_n3), "n3");
        assert_eq!(a, b, "{req:?}");
        *counts.entry(a).or_insert(0) += 1;
    }
    // Roughly a third each.
    assert!(
        counts.values().all(|&c| (800..1200).contains(&c)),
        "{counts:?}"
    );

    // Loads do not matter to consistent hashing.
    view_n1.set_load("n2", load(1_000_000, 0));
    let req = http(Some("h"), "/x");
    let before = on_n1.decide(&req, &view(0, &[("n2", 0), ("n3", 0)]));
    assert_eq!(on_n1.decide(&req, &view_n1), before);
}

#[test]
fn consistent_hash_keys_on_host_and_path() {
    let mut policy = hash_policy("n1", &["n1", "n2", "n3", "n4"], 4099);
    let cluster = view(0, &[("n2", 0), ("n3", 0), ("n4", 0)]);
    let decide = |policy: &mut Policy, req: Request| node_of(policy.decide(&req, &cluster), "n1");
    // The same content always lands on the same node...
    for i in 0..50 {
        let path = format!("/p/{i}");
        let first = decide(&mut policy, http(Some("a"), &path));
        assert_eq!(decide(&mut policy, http(Some("a"), &path)), first);
    }
    // ...and different hosts with the same path spread out.
    let spread: std::collections::HashSet<String> = (0..50)
        .map(|i| decide(&mut policy, http(Some(&format!("h{i}")), "/")))
        .collect();
    assert!(spread.len() > 1);
    let sni: std::collections::HashSet<String> = (0..50)
        .map(|i| decide(&mut policy, tls(Some(&format!("h{i}")))))
        .collect();
    assert!(sni.len() > 1);
}

#[test]
fn consistent_hash_never_picks_a_down_node_and_moves_little() {
    let nodes = ["n1", "n2", "n3", "n4", "n5"];
    let mut policy = hash_policy("n1", &nodes, DEFAULT_TABLE_SIZE);
    let all_up = view(0, &[("n2", 0), ("n3", 0), ("n4", 0), ("n5", 0)]);
    let mut n3_down = all_up.clone();
    n3_down.set_up("n3", false);
    let reqs: Vec<Request> = (0..5000)
        .map(|i| http(Some("h"), &format!("/{i}")))
        .collect();
    let before: Vec<String> = reqs
        .iter()
        .map(|r| node_of(policy.decide(r, &all_up), "n1"))
        .collect();
    let after: Vec<String> = reqs
        .iter()
        .map(|r| node_of(policy.decide(r, &n3_down), "n1"))
        .collect();
    assert!(after.iter().all(|n| n != "n3"));
    let kept = before.iter().filter(|n| *n != "n3").count();
    let moved = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| *b != "n3" && b != a)
        .count();
    assert!(moved * 100 < kept * 3, "{moved} of {kept} moved");
    // And back: the original table returns.
    let again: Vec<String> = reqs
        .iter()
        .map(|r| node_of(policy.decide(r, &all_up), "n1"))
        .collect();
    assert_eq!(again, before);
    // Nobody up but this node.
    let alone = ClusterView::new();
    assert!(reqs
        .iter()
        .all(|r| policy.decide(r, &alone) == Decision::Local));
}

#[test]
fn consistent_hash_without_this_node_and_all_peers_down_is_unavailable() {
    let mut policy = hash_policy("a", &["b", "c"], 101);
    assert_eq!(
        policy.decide(&http(None, "/"), &ClusterView::new()),
        Decision::Unavailable { pool: "p".into() }
    );
}

/// A failed handoff is decided again with the failed node marked down:
/// Maglev's next choice for the content is what every node would pick
/// once that node is gone.
#[test]
fn a_retry_without_the_failed_node_takes_maglevs_next_choice() {
    let mut policy = hash_policy("a", &["b", "c", "d"], 101);
    let mut all = ClusterView::new();
    for n in ["b", "c", "d"] {
        all.set_up(n, true);
    }
    for i in 0..50 {
        let req = http(Some("h"), &format!("/{i}"));
        let Decision::Handoff { node: first } = policy.decide(&req, &all) else {
            panic!("a member is up")
        };
        let mut without = all.clone();
        without.set_up(&first, false);
        let Decision::Handoff { node: second } = policy.decide(&req, &without) else {
            panic!("two members are up")
        };
        assert_ne!(first, second);
        without.set_up(&second, false);
        let Decision::Handoff { node: third } = policy.decide(&req, &without) else {
            panic!("one member is up")
        };
        assert!(third != first && third != second);
        without.set_up(&third, false);
        assert_eq!(
            policy.decide(&req, &without),
            Decision::Unavailable { pool: "p".into() }
        );
    }
}

/// LARD over a sequence of requests, with loads changing between steps.
#[test]
fn lard() {
    let config = LardConfig {
        t_low: 10,
        t_high: 20,
        max_targets: 1000,
    };
    let mut policy = Policy::new(
        vec![Rule::to_pool("p")],
        vec![pool("p", &["a", "b", "c"], Strategy::Lard(config))],
        "a",
    )
    .unwrap();
    // (target path, local load, b's load, c's load, b up, expected node)
    #[rustfmt::skip]
    let steps: &[(&str, u32, u32, u32, bool, &str)] = &[
        // Unassigned targets go to the least loaded node.
        ("/x", 5, 3, 4, true, "b"),
        ("/y", 5, 6, 4, true, "c"),
        ("/z", 1, 6, 4, true, "a"),
        // Assigned targets stick, even when another node is less loaded...
        ("/x", 0, 15, 0, true, "b"),
        // ...and even above T_high while nobody is below T_low...
        ("/x", 12, 25, 11, true, "b"),
        // ...but move above T_high once somebody is below T_low.
        ("/x", 12, 25, 9, true, "c"),
        ("/x", 12, 9, 19, true, "c"),
        // Above T_high again, with an idle node: it moves once more.
        ("/x", 12, 9, 21, true, "b"),
        ("/x", 12, 9, 21, true, "b"),
        // At 2·T_high a target moves regardless of the others' load.
        ("/x", 35, 40, 30, true, "c"),
        // A down server loses its targets to the least-loaded node that is up.
        ("/x", 8, 0, 7, false, "c"),
        ("/x", 8, 0, 7, true, "c"),
        ("/y", 0, 0, 0, true, "c"),
    ];
    for (i, &(path, local, b, c, b_up, expected)) in steps.iter().enumerate() {
        let mut cluster = view(local, &[("b", b), ("c", c)]);
        cluster.set_up("b", b_up);
        let decision = policy.decide(&http(Some("h"), path), &cluster);
        assert_eq!(node_of(decision, "a"), expected, "step {i}: {path}");
    }
}
