//! Selection policy: which node should serve a classified request.
//!
//! A policy is an ordered list of [`Rule`]s and a set of [`Pool`]s. The first
//! rule whose conditions all hold names the pool; the pool's [`Strategy`]
//! picks one of its members that is up. When no rule matches, the request
//! is served here ([`Decision::Local`]). When no member of the pool can take
//! it, this node serves it only if it is a member itself; otherwise the
//! decision is [`Decision::Unavailable`], and the client gets an honest,
//! retryable failure rather than an answer from a node without the content.
//!
//! A handoff that fails is decided again with the node that failed marked
//! down: the next member the strategy would pick (the next in Maglev
//! order, the next least loaded), or this node when it is a member, or
//! Unavailable.
//!
//! Every node of a cluster should run the same rules and pools, so that
//! consistent hashing agrees across nodes; only `this_node` differs.

mod cluster;
mod hash;
mod lard;
mod maglev;

use std::fmt;
use std::str::FromStr;

pub use cluster::{ClusterView, PeerState};
pub use lard::LardConfig;

use crate::classify::Request;
use hash::{hash, seed};
use lard::{Candidate, Lard};
use maglev::Maglev;

/// Where a request should be served.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Here: release the held bytes to the local kernel.
    Local,
    /// Hand the connection off to this node.
    Handoff { node: String },
    /// No member of the request's pool can take it, and this node is not one.
    Unavailable { pool: String },
}

/// A host name pattern: `example.com` (exact) or `*.example.com` (any name
/// ending in `.example.com`, at any depth, but not `example.com` itself).
/// Matching ignores ASCII case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// The suffix, with its leading dot: `.example.com`.
    Wildcard(String),
}

impl HostPattern {
    /// Whether a (normalised, lowercase) host name matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }
}

impl FromStr for HostPattern {
    type Err = PolicyError;

    fn from_str(pattern: &str) -> Result<HostPattern, PolicyError> {
        let bad = |reason| PolicyError::BadPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        let lower = pattern.to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower),
        };
        if name.is_empty() {
            return Err(bad("no host name"));
        }
        if name.contains('*') {
            return Err(bad(
                "`*` is only allowed as the whole first label, as in `*.example.com`",
            ));
        }
        if !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "host names are ASCII without spaces (use the IDNA form)",
            ));
        }
        Ok(if wildcard {
            HostPattern::Wildcard(format!(".{name}"))
        } else {
            HostPattern::Exact(name.to_owned())
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// One rule: conditions, all of which must hold, and the pool they lead to.
/// A rule without conditions matches every request.
///
/// `host` and `path_prefix` look at HTTP requests (and never match TLS
/// ones); `sni` looks at TLS ClientHellos (and never matches HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub host: Option<HostPattern>,
    /// Matches when the request target starts with it, byte for byte.
    pub path_prefix: Option<String>,
    pub sni: Option<HostPattern>,
    /// The name of the pool that serves matching requests.
    pub pool: String,
}

impl Rule {
    /// A rule that sends every request to `pool`; add conditions with the
    /// builder methods.
    pub fn to_pool(pool: impl Into<String>) -> Rule {
        Rule {
            host: None,
            path_prefix: None,
            sni: None,
            pool: pool.into(),
        }
    }

    pub fn host(mut self, pattern: HostPattern) -> Rule {
        self.host = Some(pattern);
        self
    }

    pub fn path_prefix(mut self, prefix: impl Into<String>) -> Rule {
        self.path_prefix = Some(prefix.into());
        self
    }

    pub fn sni(mut self, pattern: HostPattern) -> Rule {
        self.sni = Some(pattern);
        self
    }

    fn matches(&self, req: &Request) -> bool {
        let pattern_matches = |pattern: &Option<HostPattern>, name: &Option<String>| match pattern {
            None => true,
            Some(p) => name.as_deref().is_some_and(|n| p.matches(n)),
        };
        match req {
            Request::Http { path, host, .. } => {
                self.sni.is_none()
                    && pattern_matches(&self.host, host)
                    && self
                        .path_prefix
                        .iter()
                        .all(|prefix| path.starts_with(prefix.as_str()))
            }
            Request::Tls { sni } => {
                self.host.is_none() && self.path_prefix.is_none() && pattern_matches(&self.sni, sni)
            }
        }
    }
}

/// How a pool picks among its members that are up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Serve here whenever this node is in the pool (no handoff at all);
    /// otherwise the least-loaded member. The rare-handoff case.
    LocalFirst,
    /// The member with the fewest active connections plus pending handoffs;
    /// ties go to this node, then to the first listed.
    LeastLoaded,
    /// A Maglev table over the members that are up, keyed by host + path
    /// (HTTP) or SNI (TLS): the same content always goes to the same node,
    /// on every node of the cluster. `table_size` must be a prime larger
    /// than the pool; [`DEFAULT_TABLE_SIZE`] suits pools of up to a few
    /// hundred members.
    ConsistentHash { table_size: usize },
    /// Locality-aware request distribution with load thresholds.
    Lard(LardConfig),
}

/// The Maglev paper's table size: prime, and ≥ 100 × any sensible pool.
pub const DEFAULT_TABLE_SIZE: usize = 65537;

impl Strategy {
    /// Consistent hashing with the default table size.
    pub fn consistent_hash() -> Strategy {
        Strategy::ConsistentHash {
            table_size: DEFAULT_TABLE_SIZE,
        }
    }
}

/// A named set of nodes and the strategy that picks among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    /// Node names, as the control plane names peers (this node included,
    /// when it serves the pool's content).
    pub nodes: Vec<String>,
    pub strategy: Strategy,
}

/// Why a policy is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("rule {rule}: unknown pool `{pool}`")]
    UnknownPool { rule: usize, pool: String },
    #[error("rule {rule}: matches both host and SNI, so it can never match")]
    HostAndSni { rule: usize },
    #[error("rule {rule}: path prefix `{prefix}` does not start with `/`")]
    BadPathPrefix { rule: usize, prefix: String },
    #[error("host pattern `{pattern}`: {reason}")]
    BadPattern {
        pattern: String,
        reason: &'static str,
    },
    #[error("pool `{pool}` is defined twice")]
    DuplicatePool { pool: String },
    #[error("pool `{pool}` has no nodes")]
    EmptyPool { pool: String },
    #[error("pool `{pool}` has more than {max} nodes", max = u16::MAX)]
    PoolTooLarge { pool: String },
    #[error("pool `{pool}` lists node `{node}` twice")]
    DuplicateNode { pool: String, node: String },
    #[error(
        "pool `{pool}`: table size {size} must be a prime larger than the pool ({nodes} nodes)"
    )]
    BadTableSize {
        pool: String,
        size: usize,
        nodes: usize,
    },
    #[error("pool `{pool}`: LARD needs 0 < t_low < t_high (got t_low {t_low}, t_high {t_high})")]
    BadThresholds {
        pool: String,
        t_low: u32,
        t_high: u32,
    },
}

/// Rules, pools and the per-pool state their strategies keep.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<(Rule, usize)>,
    pools: Vec<PoolState>,
    this_node: String,
}

#[derive(Debug, Clone)]
struct PoolState {
    pool: Pool,
    /// This node's index in `pool.nodes`, if it is a member.
    local: Option<usize>,
    picker: Picker,
}

#[derive(Debug, Clone)]
enum Picker {
    LocalFirst,
    LeastLoaded,
    Maglev(Maglev),
    Lard(Lard),
}

impl Policy {
    /// Checks the rules and pools and builds the policy for `this_node`.
    pub fn new(
        rules: Vec<Rule>,
        pools: Vec<Pool>,
        this_node: impl Into<String>,
    ) -> Result<Policy, PolicyError> {
        let this_node = this_node.into();
        let mut states: Vec<PoolState> = Vec::with_capacity(pools.len());
        for pool in pools {
            validate_pool(&pool)?;
            if states.iter().any(|s| s.pool.name == pool.name) {
                return Err(PolicyError::DuplicatePool { pool: pool.name });
            }
            let picker = match &pool.strategy {
                Strategy::LocalFirst => Picker::LocalFirst,
                Strategy::LeastLoaded => Picker::LeastLoaded,
                Strategy::ConsistentHash { table_size } => Picker::Maglev(Maglev::new(*table_size)),
                Strategy::Lard(config) => Picker::Lard(Lard::new(*config)),
            };
            let local = pool.nodes.iter().position(|n| *n == this_node);
            states.push(PoolState {
                pool,
                local,
                picker,
            });
        }
        let mut indexed = Vec::with_capacity(rules.len());
        for (i, rule) in rules.into_iter().enumerate() {
            if rule.host.is_some() && rule.sni.is_some() {
                return Err(PolicyError::HostAndSni { rule: i });
            }
            if let Some(prefix) = rule.path_prefix.as_ref().filter(|p| !p.starts_with('/')) {
                return Err(PolicyError::BadPathPrefix {
                    rule: i,
                    prefix: prefix.clone(),
                });
            }
            let Some(pool) = states.iter().position(|s| s.pool.name == rule.pool) else {
                return Err(PolicyError::UnknownPool {
                    rule: i,
                    pool: rule.pool,
                });
            };
            indexed.push((rule, pool));
        }
        Ok(Policy {
            rules: indexed,
            pools: states,
            this_node,
        })
    }

    /// The node this policy decides for.
    pub fn this_node(&self) -> &str {
        &self.this_node
    }

    /// Where `req` should be served, given the cluster as it is now.
    pub fn decide(&mut self, req: &Request, cluster: &ClusterView) -> Decision {
        let Some(&(_, pool)) = self.rules.iter().find(|(rule, _)| rule.matches(req)) else {
            return Decision::Local;
        };
        let state = &mut self.pools[pool];
        let members = Members {
            names: &state.pool.nodes,
            local: state.local,
            cluster,
        };
        let chosen = match &mut state.picker {
            Picker::LocalFirst => state.local.or_else(|| members.least_loaded()),
            Picker::LeastLoaded => members.least_loaded(),
            Picker::Maglev(maglev) => {
                let up = members.up();
                maglev.lookup(content_key(req), members.names, &up)
            }
            Picker::Lard(lard) => members.least_loaded().map(|least| {
                let least = Candidate {
                    index: least,
                    load: members.load(least),
                };
                lard.choose(content_key(req), least, |i| {
                    members.is_up(i).then(|| members.load(i))
                })
            }),
        };
        match chosen {
            Some(i) if Some(i) != state.local => Decision::Handoff {
                node: state.pool.nodes[i].clone(),
            },
            Some(_) => Decision::Local,
            // Every strategy picks this node when it is a member and no
            // other member is up: none is, and this node is not one.
            None => Decision::Unavailable {
                pool: state.pool.name.clone(),
            },
        }
    }
}

fn validate_pool(pool: &Pool) -> Result<(), PolicyError> {
    let name = || pool.name.clone();
    if pool.nodes.is_empty() {
        return Err(PolicyError::EmptyPool { pool: name() });
    }
    if pool.nodes.len() > usize::from(u16::MAX) {
        return Err(PolicyError::PoolTooLarge { pool: name() });
    }
    for (i, node) in pool.nodes.iter().enumerate() {
        if pool.nodes[..i].contains(node) {
            return Err(PolicyError::DuplicateNode {
                pool: name(),
                node: node.clone(),
            });
        }
    }
    match pool.strategy {
        Strategy::ConsistentHash { table_size }
            if !maglev::is_prime(table_size) || table_size <= pool.nodes.len() =>
        {
            Err(PolicyError::BadTableSize {
                pool: name(),
                size: table_size,
                nodes: pool.nodes.len(),
            })
        }
        Strategy::Lard(LardConfig { t_low, t_high, .. }) if t_low == 0 || t_low >= t_high => {
            Err(PolicyError::BadThresholds {
                pool: name(),
                t_low,
                t_high,
            })
        }
        _ => Ok(()),
    }
}

/// What identifies the content: host + path for HTTP, the SNI for TLS.
fn content_key(req: &Request) -> u64 {
    match req {
        Request::Http { path, host, .. } => hash(
            seed::KEY,
            &[host.as_deref().unwrap_or("").as_bytes(), path.as_bytes()],
        ),
        Request::Tls { sni } => hash(seed::KEY, &[sni.as_deref().unwrap_or("").as_bytes()]),
    }
}

/// A pool's members, with their health and load in the current view.
struct Members<'a> {
    names: &'a [String],
    local: Option<usize>,
    cluster: &'a ClusterView,
}

impl Members<'_> {
    fn is_up(&self, i: usize) -> bool {
        Some(i) == self.local || self.cluster.peer(&self.names[i]).is_some_and(|p| p.up)
    }

    fn up(&self) -> Vec<bool> {
        (0..self.names.len()).map(|i| self.is_up(i)).collect()
    }

    fn load(&self, i: usize) -> u64 {
        if Some(i) == self.local {
            self.cluster.local_load().weight()
        } else {
            self.cluster
                .peer(&self.names[i])
                .map_or(0, |p| p.load.weight())
        }
    }

    /// The up member with the least load; ties go to this node, then to the
    /// first listed.
    fn least_loaded(&self) -> Option<usize> {
        (0..self.names.len())
            .filter(|&i| self.is_up(i))
            .min_by_key(|&i| (self.load(i), Some(i) != self.local, i))
    }
}

#[cfg(test)]
mod tests;
