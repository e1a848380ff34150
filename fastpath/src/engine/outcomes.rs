//! The log lines of outcomes an operator should hear of (a connection
//! served by a node other than the one the rules chose, or by none), at a
//! bounded rate: at most one line per kind a second, with how many more
//! there were.

use std::time::{Duration, Instant};

use baton_handoff::state::Note;

use super::flow::FlowKey;

/// The shortest time between two lines of one kind.
const INTERVAL: Duration = Duration::from_secs(1);

/// What has been logged of each kind, and what was left out since.
#[derive(Debug, Default)]
pub(super) struct OutcomeLog {
    kinds: [Kind; 3],
}

#[derive(Debug, Default)]
struct Kind {
    last: Option<Instant>,
    suppressed: u64,
}

impl OutcomeLog {
    /// Logs `note` for `key`, unless one of its kind was logged less than
    /// a second ago (then it is only counted, for the next line).
    pub fn note(&mut self, note: Note, key: &FlowKey, now: Instant) {
        let (slot, what) = match note {
            Note::FellBack => (0, "a handoff failed; served here, a member of its pool"),
            Note::Refused => (1, "no node can serve it; refused (503, or a reset for TLS)"),
            Note::MoveRefused => (2, "no node can serve a later request; refused (503)"),
            _ => return,
        };
        let kind = &mut self.kinds[slot];
        if kind
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < INTERVAL)
        {
            kind.suppressed += 1;
            return;
        }
        let more = std::mem::take(&mut kind.suppressed);
        kind.last = Some(now);
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
