//! Text to validated `Config`: TOML syntax, then serde, then validation,
//! with every failure turned into a `ConfigError` that names the key and
//! its position.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml_edit::ImDocument;

use crate::error::ConfigError;
use crate::schema::Config;
use crate::spans::{KeyPath, SpanIndex};
use crate::validate::{self, Invalid};

pub(crate) fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let doc = ImDocument::parse(text).map_err(|e| syntax_error(&e, text, origin))?;
    let index = SpanIndex::new(&doc);
    let report = |problem: Invalid| {
        let key = (!problem.path.is_root()).then(|| problem.path.to_string());
        ConfigError::at(
            origin,
            text,
            index.offset_of(&problem.path),
            key,
            problem.message,
        )
    };
    validate::check_document(&index).map_err(report)?;
    let mut config: Config = deserialize(doc, &index, text, origin)?;
    validate::check(&config).map_err(report)?;
    config.resolve_defaults();
    Ok(config)
}

/// serde over the parsed document, errors located through `index`.
fn deserialize<T: DeserializeOwned>(
    doc: ImDocument<&str>,
    index: &SpanIndex,
    text: &str,
    origin: &str,
) -> Result<T, ConfigError> {
    T::deserialize(toml_edit::de::Deserializer::from(doc))
        .map_err(|e| serde_error(&e, text, origin, index))
}

fn syntax_error(error: &toml_edit::TomlError, text: &str, origin: &str) -> ConfigError {
    let offset = error.span().map_or(0, |span| span.start);
    let message = error.message();
    // "duplicate key `name` in table `node`" names its key; nothing else does.
    let key = match backticked(message).as_slice() {
        [key, table] if message.starts_with("duplicate key") => Some(format!("{table}.{key}")),
        [key] if message.starts_with("duplicate key") => Some(key.clone()),
        _ => None,
    };
    ConfigError::at(
        origin,
        text,
        offset,
        key,
        format!("invalid TOML: {message}"),
    )
}

fn serde_error(
    error: &toml_edit::de::Error,
    text: &str,
    origin: &str,
    index: &SpanIndex,
) -> ConfigError {
    let span: Range<usize> = error.span().unwrap_or(0..0);
    let mut path = index.path_at(&span);
    let offset = span.start;
    let raw = error.message();
    let names = backticked(raw);

    let message = if raw.starts_with("unknown field") {
        // The span is the unknown key itself, so `path` already ends with it.
        unknown_key(&path, &names, index)
    } else if let (true, Some(missing)) = (raw.starts_with("missing field"), names.first()) {
        // The span is the table the key is missing from.
        path = path.key(missing);
        missing_key(&path, missing)
    } else if raw.starts_with("unknown variant") {
        let (given, expected) = names
            .split_first()
            .map_or((None, &[][..]), |(g, e)| (Some(g), e));
        format!(
            "unknown value `{}`; expected {}",
            given.map_or("", String::as_str),
            one_of(expected)
        )
    } else {
        plain_types(raw)
    };
    let key = (!path.is_root()).then(|| path.to_string());
    let offset = if key.is_some() && raw.starts_with("unknown field") {
        index.key_offset_of(&path)
    } else {
        offset
    };
    ConfigError::at(origin, text, offset, key, message)
}

fn unknown_key(path: &KeyPath, names: &[String], index: &SpanIndex) -> String {
    let (given, expected) = match names.split_first() {
        Some((given, expected)) => (given.as_str(), expected),
        None => (path.leaf().unwrap_or(""), &[][..]),
    };
    let what = if index.is_table(path) {
        format!("unknown section `[{path}]`")
    } else {
        format!("unknown key `{given}`")
    };
    if expected.is_empty() {
        return format!("{what}; this table takes no keys");
    }
    let hint = match closest(given, expected) {
        Some(near) => format!("; did you mean `{near}`?"),
        None => String::new(),
    };
    format!("{what}{hint} (expected {})", one_of(expected))
}

/// Says what a missing required key is for.
fn missing_key(path: &KeyPath, key: &str) -> String {
    let hint = match path.to_string().as_str() {
        "node" => ": add a [node] section with at least name = \"node1\"",
        "node.name" => ": name this node, e.g. name = \"node1\"",
        "lcores" => ": add an [lcores] section with at least workers = [1]",
        "lcores.workers" => ": list the worker lcores, e.g. workers = [1]",
        "wire" => ": add a [wire] section naming the NIC Baton owns, e.g. pci = \"0000:3b:00.0\"",
        _ => "",
    };
    format!("missing key `{key}`{hint}")
}

/// Words between backticks, in order: serde quotes names that way.
fn backticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn one_of(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => "nothing".to_owned(),
        [one] => one.clone(),
        [rest @ .., last] => format!("one of {}, {last}", rest.join(", ")),
    }
}

/// The expected name a typo most likely meant, if any is close.
fn closest<'a>(given: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(given, c), c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c.as_str())
}

/// Optimal string alignment distance: edits, counting a swap of two
/// neighbouring characters (the commonest typo) as one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// serde speaks of Rust types; say it in TOML terms.
fn plain_types(message: &str) -> String {
    let mut out = message.to_owned();
    for (rust, toml) in [
        ("expected u8", "expected an integer from 0 to 255"),
        ("expected u16", "expected an integer from 0 to 65535"),
        ("expected u32", "expected an integer from 0 to 4294967295"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
        ("expected path string", "expected a string holding a path"),
        ("wanted string or table", "invalid type: expected a string"),
    ] {
        out = out.replace(rust, toml);
    }
    if let Some(at) = out.find("expected struct ") {
        out.truncate(at);
        out.push_str("expected a table");
    }
    if let Some(at) = out.find("expected enum ") {
        out.truncate(at);
        out.push_str("expected a string");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MacAddr;

    /// A section shaped like the cluster peers that will name stations by MAC.
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Peer {
        name: String,
        #[serde(deserialize_with = "crate::mac::deserialize_unicast")]
        mac: MacAddr,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Peers {
        peer: Vec<Peer>,
    }

    fn parse_peers(text: &str) -> Result<Peers, ConfigError> {
        let doc = ImDocument::parse(text).map_err(|e| syntax_error(&e, text, "p.toml"))?;
        let index = SpanIndex::new(&doc);
        deserialize(doc, &index, text, "p.toml")
    }

    #[test]
    fn mac_values_are_checked_and_located() {
        let good = "[[peer]]\nname = \"a\"\nmac = \"02:00:00:00:00:0A\"\n";
        let peers = parse_peers(good).unwrap();
        assert_eq!(peers.peer[0].mac.to_string(), "02:00:00:00:00:0a");

        let text = format!("{good}\n[[peer]]\nname = \"b\"\n");
        let err = parse_peers(&text).unwrap_err();
        assert_eq!(err.to_string(), "p.toml:5:1: `peer.mac`: missing key `mac`");

        let cases = [
            ("mac = \"02:00:00:00:00\"", "is not a MAC address"),
            ("mac = \"01:00:5e:00:00:01\"", "multicast"),
            ("mac = \"ff:ff:ff:ff:ff:ff\"", "broadcast"),
            ("mac = 5", "expected a MAC address string"),
        ];
        for (line, fragment) in cases {
            let text = format!("{good}\n[[peer]]\nname = \"b\"\n{line}\n");
            let err = parse_peers(&text).unwrap_err();
            assert_eq!((err.line(), err.column()), (Some(7), Some(7)), "{err}");
            assert_eq!(err.key(), Some("peer.mac"), "{err}");
            assert!(err.message().contains(fragment), "{err}");
        }
    }

    #[test]
    fn suggests_near_names_only() {
        let names: Vec<String> = ["name", "log_level"].map(String::from).to_vec();
        assert_eq!(closest("nmae", &names), Some("name"));
        assert_eq!(closest("loglevel", &names), Some("log_level"));
        assert_eq!(closest("colour", &names), None);
        assert_eq!(edit_distance("dpkd", "dpdk"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn lists_alternatives() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert_eq!(one_of(&names), "one of `a`, `b`, `c`");
        assert_eq!(one_of(&names[..1]), "`a`");
    }
}
