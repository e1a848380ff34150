//! The state tables in `docs/handoff.md` are written from the machines
//! themselves (`Machine::on`) and from the counters each note moves, so the
//! documentation cannot drift from the code. `BATON_BLESS_DOCS=1 cargo test
//! -p baton-fastpath doc_tables` rewrites them after a change.

use std::fmt::Write;

use baton_handoff::state::{Event, Machine, OriginState, TargetState};

use super::parts::note_counters;

/// One machine's table in Markdown: a row per state, a column per event.
/// Each cell is "— " (invalid: counted as `invalid_transition`), "same" or
/// "→ Next", then the actions in order, then the counters the step's note
/// moves.
fn render<M: Machine>() -> String {
    let mut out = String::from("| state \\ event |");
    for event in M::Event::ALL {
        write!(out, " {} |", event.name()).unwrap();
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(M::Event::ALL.len()));
    out.push('\n');
    for &state in M::STATES {
        write!(out, "| {} |", state.name()).unwrap();
        for &event in M::Event::ALL {
            out.push(' ');
            out.push_str(&cell(state, event));
            out.push_str(" |");
        }
        out.push('\n');
    }
    out
}

fn cell<M: Machine>(state: M, event: M::Event) -> String {
    let Ok(step) = state.on(event) else {
        return "—".into();
    };
    let mut cell = if step.next == state {
        "same".to_string()
    } else {
        format!("→ {}", step.next.name())
    };
    let actions: Vec<String> = step.actions.iter().map(|a| format!("{a:?}")).collect();
    if !actions.is_empty() {
        write!(cell, ": {}", actions.join(", ")).unwrap();
    }
    if let Some(note) = step.note {
        let counters: Vec<String> = note_counters(note)
            .iter()
            .map(|c| format!("`{}`", c.name()))
            .collect();
        write!(cell, " [{}]", counters.join(", ")).unwrap();
    }
    cell
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replaces what lies between `<!-- NAME -->` and `<!-- /NAME -->`.
    fn splice(doc: &str, name: &str, table: &str) -> String {
        let open = format!("<!-- {name} -->\n");
        let close = format!("<!-- /{name} -->");
        let start = doc.find(&open).unwrap_or_else(|| panic!("no {open}")) + open.len();
        let end = doc[start..]
            .find(&close)
            .unwrap_or_else(|| panic!("no {close}"))
            + start;
        format!("{}{table}{}", &doc[..start], &doc[end..])
    }

    #[test]
    fn the_handoff_docs_show_the_machines_as_they_are() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/handoff.md");
        let doc = std::fs::read_to_string(path).expect("docs/handoff.md");
        let want = splice(
            &splice(&doc, "origin-table", &render::<OriginState>()),
            "target-table",
            &render::<TargetState>(),
        );
        if std::env::var_os("BATON_BLESS_DOCS").is_some() {
            std::fs::write(path, &want).expect("writing docs/handoff.md");
            return;
        }
        assert!(
            doc == want,
            "docs/handoff.md's state tables differ from the machines: run \
             `BATON_BLESS_DOCS=1 cargo test -p baton-fastpath doc_tables` and review the diff"
        );
    }
}
