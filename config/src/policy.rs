//! The selection policy `[handoff]` describes, built one way for both
//! `baton check` and `baton run`: the rules and pools in the policy's own
//! types, and the policy's own verdict on them. Every rule the policy
//! holds a policy to (a rule cannot match both host and SNI, LARD needs
//! `0 < lard_low < lard_high`, ...) is checked here by the policy itself,
//! so a config `check` accepts is one `run` can build.

use baton_handoff::policy::{HostPattern, LardConfig, Policy, PolicyError, Pool, Rule, Strategy};

use crate::cluster::{HandoffConfig, Strategy as ConfigStrategy};
use crate::spans::KeyPath;
use crate::validate::{invalid, Invalid};

/// The rules and pools of `handoff`, in the policy's types.
pub fn rules_and_pools(handoff: &HandoffConfig) -> Result<(Vec<Rule>, Vec<Pool>), String> {
    parts(handoff).map_err(|e| format!("`{}`: {}", e.path, e.message))
}

fn parts(handoff: &HandoffConfig) -> Result<(Vec<Rule>, Vec<Pool>), Invalid> {
    let rules_at = KeyPath::dotted("handoff.rules");
    let mut rules = Vec::with_capacity(handoff.rules.len());
    for (i, r) in handoff.rules.iter().enumerate() {
        let pattern = |key: &str, p: &Option<String>| -> Result<Option<HostPattern>, Invalid> {
            p.as_deref()
                .map(|p| {
                    p.parse::<HostPattern>()
                        .map_err(|e| invalid(rules_at.clone().index(i).key(key), e.to_string()))
                })
                .transpose()
        };
        rules.push(Rule {
            host: pattern("host", &r.host)?,
            path_prefix: r.path_prefix.clone(),
            sni: pattern("sni", &r.sni)?,
            pool: r.pool.clone(),
        });
    }
    let pools = handoff
        .pools
        .iter()
        .map(|p| Pool {
            name: p.name.clone(),
            nodes: p.nodes.clone(),
            strategy: match p.strategy {
                ConfigStrategy::LocalFirst => Strategy::LocalFirst,
                ConfigStrategy::LeastLoaded => Strategy::LeastLoaded,
                ConfigStrategy::ConsistentHash => Strategy::consistent_hash(),
                ConfigStrategy::Lard => Strategy::Lard(LardConfig {
                    t_low: p.lard_low,
                    t_high: p.lard_high,
                    ..LardConfig::default()
                }),
            },
        })
        .collect();
    Ok((rules, pools))
}

/// Builds the policy of `handoff` for node `node`, as `baton run` does;
/// what the policy refuses is reported at the key it comes from.
pub(crate) fn check(handoff: &HandoffConfig, node: &str) -> Result<(), Invalid> {
    let (rules, pools) = parts(handoff)?;
    match Policy::new(rules, pools, node) {
        Ok(_) => Ok(()),
        Err(e) => Err(invalid(where_is(&e, handoff), message(&e))),
    }
}

/// A policy error in the config's words.
fn message(e: &PolicyError) -> String {
    match e {
        PolicyError::HostAndSni { .. } => {
            "a rule cannot match both `host` and `sni`: HTTP requests carry no SNI, TLS ones no Host, so it would never match".into()
        }
        PolicyError::BadThresholds { t_low, t_high, .. } => format!(
            "`lard_low` ({t_low}) must be above 0 and below `lard_high` ({t_high})"
        ),
        other => other.to_string(),
    }
}

/// The key a policy error is about.
fn where_is(e: &PolicyError, handoff: &HandoffConfig) -> KeyPath {
    let rule = |i: usize| KeyPath::dotted("handoff.rules").index(i);
    let pool = |name: &str| {
        let i = handoff
            .pools
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_default();
        KeyPath::dotted("handoff.pools").index(i)
    };
    match e {
        PolicyError::UnknownPool { rule: i, .. } => rule(*i).key("pool"),
        PolicyError::HostAndSni { rule: i } => rule(*i).key("sni"),
        PolicyError::BadPathPrefix { rule: i, .. } => rule(*i).key("path_prefix"),
        PolicyError::BadPattern { .. } => KeyPath::dotted("handoff.rules"),
        PolicyError::DuplicatePool { pool: p } => {
            // The second of the two.
            let i = handoff
                .pools
                .iter()
                .enumerate()
                .filter(|(_, x)| x.name == *p)
                .nth(1)
                .map_or(0, |(i, _)| i);
            KeyPath::dotted("handoff.pools").index(i).key("name")
        }
        PolicyError::EmptyPool { pool: p }
        | PolicyError::PoolTooLarge { pool: p }
        | PolicyError::DuplicateNode { pool: p, .. } => pool(p).key("nodes"),
        PolicyError::BadTableSize { pool: p, .. } => pool(p).key("strategy"),
        PolicyError::BadThresholds { pool: p, .. } => pool(p).key("lard_low"),
    }
}
