//! The log lines of outcomes an operator should hear of (a connection
//! served by a node other than the one the rules chose, or by none), at a
//! bounded rate: at most one line per kind a second, with how many more
//! there were.

use std::time::{Duration, Instant};

use baton_counters::RateLimit;
use baton_handoff::state::Note;

use super::flow::FlowKey;

/// The shortest time between two lines of one kind.
const INTERVAL: Duration = Duration::from_secs(1);

/// What has been logged of each kind, and what was left out since.
#[derive(Debug)]
pub(super) struct OutcomeLog {
    kinds: RateLimit<&'static str>,
}

impl Default for OutcomeLog {
    fn default() -> Self {
        OutcomeLog {
            kinds: RateLimit::new(INTERVAL),
        }
    }
}

impl OutcomeLog {
    /// Logs `note` for `key`, unless one of its kind was logged less than
    /// a second ago (then it is only counted, for the next line).
    pub fn note(&mut self, note: Note, key: &FlowKey, now: Instant) {
        let what = match note {
            Note::FellBack => "a handoff failed; served here, a member of its pool",
            Note::Refused => "no node can serve it; refused (503, or a reset for TLS)",
            Note::MoveRefused => "no node can serve a later request; refused (503)",
            _ => return,
        };
        let Some(more) = self.kinds.allow(what, now) else {
            return;
        };
        let client = key.client();
        let server = key.server();
        if more == 0 {
            tracing::warn!("{client} -> {server}: {what}");
        } else {
            tracing::warn!(
                "{client} -> {server}: {what} ({more} more like it since the last line)"
            );
        }
    }
}
