//! Where a held request is served: the interface between the data plane,
//! which holds the request bytes, and whatever classifies them and applies
//! the selection policy; and [`PolicyPlacer`], which does both.

use crate::classify::{classify, Classification, ServiceKind};
use crate::msg::Load;
use crate::policy::{ClusterView, Decision, Policy, PolicyError, Pool, Rule};

/// Where a held request should be served, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Not enough bytes yet to decide.
    NeedMore,
    /// Serve here.
    Local,
    /// Hand off to the peer with this index (in the order the data plane
    /// was given its peers).
    Peer(usize),
    /// Not HTTP or TLS as the service says: serve here, unclassified.
    Invalid,
    /// No node can take it: the request's pool has no member that is up
    /// (and not already tried), and this node is not one.
    Unavailable,
}

/// Decides where requests go: request classification and policy.
pub trait Placer: Send {
    /// Where the request in `held` should be served. `peers_up[i]` says
    /// whether peer `i` can take handoffs (a peer already tried for this
    /// request is not); `own` is this node's load.
    fn place(&mut self, held: &[u8], kind: ServiceKind, peers_up: &[bool], own: Load) -> Placement;

    /// A peer's load report.
    fn peer_load(&mut self, _peer: usize, _load: Load) {}
}

/// The [`Placer`] of a cluster node: the request classified, then the
/// selection policy asked, with the cluster as this worker last heard of it.
#[derive(Debug)]
pub struct PolicyPlacer {
    policy: Policy,
    view: ClusterView,
    /// Peer names, by the data plane's peer index.
    peers: Vec<String>,
}

impl PolicyPlacer {
    /// The policy of `rules` and `pools` for the node `node`, whose peers,
    /// in the data plane's order, are `peers`.
    pub fn new(
        rules: Vec<Rule>,
        pools: Vec<Pool>,
        node: impl Into<String>,
        peers: Vec<String>,
    ) -> Result<PolicyPlacer, PolicyError> {
        Ok(PolicyPlacer {
            policy: Policy::new(rules, pools, node)?,
            view: ClusterView::new(),
            peers,
        })
    }
}

impl Placer for PolicyPlacer {
    fn place(&mut self, held: &[u8], kind: ServiceKind, peers_up: &[bool], own: Load) -> Placement {
        let request = match classify(held, kind) {
            Classification::NeedMore => return Placement::NeedMore,
            Classification::Invalid(_) => return Placement::Invalid,
            Classification::Done(request) => request,
        };
        for (name, up) in self.peers.iter().zip(peers_up) {
            self.view.set_up(name, *up);
        }
        self.view.set_local_load(own);
        match self.policy.decide(&request, &self.view) {
            Decision::Local => Placement::Local,
            Decision::Unavailable { .. } => Placement::Unavailable,
            // A node the policy knows but the data plane does not (not a
            // peer): serve here.
            Decision::Handoff { node } => match self.peers.iter().position(|p| *p == node) {
                Some(i) => Placement::Peer(i),
                None => Placement::Local,
            },
        }
    }

    fn peer_load(&mut self, peer: usize, load: Load) {
        if let Some(name) = self.peers.get(peer) {
            self.view.set_load(name, load);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{HostPattern, Strategy};

    const UP: [bool; 2] = [true, true];

    /// Node n1, with peers n2 and n3.
    fn placer(rules: Vec<Rule>, pools: Vec<Pool>) -> PolicyPlacer {
        PolicyPlacer::new(rules, pools, "n1", vec!["n2".into(), "n3".into()]).unwrap()
    }

    fn pool(name: &str, nodes: &[&str], strategy: Strategy) -> Pool {
        Pool {
            name: name.into(),
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            strategy,
        }
    }

    fn pattern(p: &str) -> HostPattern {
        p.parse().unwrap()
    }

    fn get(path: &str, host: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
    }

    fn load(active_connections: u32) -> Load {
        Load {
            active_connections,
            ..Load::default()
        }
    }

    #[test]
    fn rules_place_requests() {
        let mut p = placer(
            vec![
                Rule::to_pool("b").path_prefix("/b/"),
                Rule::to_pool("c").host(pattern("*.c.example")),
                Rule::to_pool("mine").path_prefix("/shared/"),
            ],
            vec![
                pool("b", &["n2"], Strategy::LocalFirst),
                pool("c", &["n3"], Strategy::LocalFirst),
                pool("mine", &["n1", "n2"], Strategy::LocalFirst),
            ],
        );
        let own = Load::default();
        let http = ServiceKind::Http;
        assert_eq!(
            p.place(&get("/b/x", "a"), http, &UP, own),
            Placement::Peer(0)
        );
        assert_eq!(
            p.place(&get("/x", "www.c.example"), http, &UP, own),
            Placement::Peer(1)
        );
        assert_eq!(
            p.place(&get("/shared/x", "a"), http, &UP, own),
            Placement::Local,
            "local-first"
        );
        assert_eq!(
            p.place(&get("/other", "a"), http, &UP, own),
            Placement::Local,
            "no rule"
        );
        assert_eq!(
            p.place(b"GET /b/x HTTP/1.1\r\nHo", http, &UP, own),
            Placement::NeedMore
        );
        assert_eq!(
            p.place(b"\x16garbage\r\n\r\n", http, &UP, own),
            Placement::Invalid
        );
        // A pool whose members are all down, this node not among them:
        // nobody can serve it.
        assert_eq!(
            p.place(&get("/b/x", "a"), http, &[false, true], own),
            Placement::Unavailable
        );
        // One with this node among them is served here.
        assert_eq!(
            p.place(&get("/shared/x", "a"), http, &[false, false], own),
            Placement::Local
        );
    }

    #[test]
    fn path_and_sni_rules_side_by_side() {
        let mut p = placer(
            vec![
                Rule::to_pool("n1").path_prefix("/n1/"),
                Rule::to_pool("n1").sni(pattern("n1.baton.test")),
                Rule::to_pool("n2").path_prefix("/n2/"),
                Rule::to_pool("n2").sni(pattern("n2.baton.test")),
            ],
            vec![
                pool("n1", &["n1"], Strategy::LocalFirst),
                pool("n2", &["n2"], Strategy::LocalFirst),
            ],
        );
        let req = b"GET /n2/whoami.txt HTTP/1.1\r\nHost: 198.18.0.50\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
        assert_eq!(
            p.place(req, ServiceKind::Http, &UP, Load::default()),
            Placement::Peer(0)
        );
    }

    #[test]
    fn loads_reported_by_peers_steer_least_loaded() {
        let mut p = placer(
            vec![Rule::to_pool("any").path_prefix("/")],
            vec![pool("any", &["n2", "n3"], Strategy::LeastLoaded)],
        );
        let req = get("/", "a");
        let place = |p: &mut PolicyPlacer| p.place(&req, ServiceKind::Http, &UP, Load::default());
        p.peer_load(0, load(50));
        p.peer_load(1, load(5));
        assert_eq!(place(&mut p), Placement::Peer(1));
        p.peer_load(1, load(500));
        assert_eq!(place(&mut p), Placement::Peer(0));
        // A report for a peer the data plane does not have is ignored.
        p.peer_load(7, load(0));
        assert_eq!(place(&mut p), Placement::Peer(0));
    }

    #[test]
    fn a_pool_of_nodes_unknown_here_is_unavailable() {
        let mut p = placer(
            vec![Rule::to_pool("far").path_prefix("/")],
            vec![pool("far", &["n9"], Strategy::LocalFirst)],
        );
        assert_eq!(
            p.place(&get("/", "a"), ServiceKind::Http, &UP, Load::default()),
            Placement::Unavailable
        );
    }

    #[test]
    fn an_invalid_policy_is_refused() {
        let err = PolicyPlacer::new(
            vec![Rule::to_pool("missing")],
            vec![],
            "n1",
            vec!["n2".into()],
        )
        .err()
        .unwrap();
        assert_eq!(
            err,
            PolicyError::UnknownPool {
                rule: 0,
                pool: "missing".into()
            }
        );
    }
}
