//! Where each key of a parsed document sits in its text.
//!
//! serde reports a byte span and validation reports a key path; this index
//! turns either into the other so every error can name both the key and
//! its line and column.

use std::fmt;
use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// A path to a key, e.g. `lcores.workers[1]`.
///
/// `Display` gives the dotted form users write (`lcores.workers`): indices
/// only refine the position of an error, not its key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub(crate) fn root() -> Self {
        KeyPath(Vec::new())
    }

    /// Parses `"a.b.c"`; for paths written in the code, not user input.
    pub(crate) fn dotted(path: &str) -> Self {
        KeyPath(
            path.split('.')
                .map(|k| Segment::Key(k.to_owned()))
                .collect(),
        )
    }

    pub(crate) fn key(mut self, key: &str) -> Self {
        self.0.push(Segment::Key(key.to_owned()));
        self
    }

    pub(crate) fn index(mut self, index: usize) -> Self {
        self.0.push(Segment::Index(index));
        self
    }

    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last named key (`workers` for `lcores.workers[1]`).
    pub(crate) fn leaf(&self) -> Option<&str> {
        self.0.iter().rev().find_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        })
    }

    fn parent(&self) -> Option<KeyPath> {
        let (_, rest) = self.0.split_last()?;
        Some(KeyPath(rest.to_vec()))
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for segment in &self.0 {
            if let Segment::Key(key) = segment {
                if !first {
                    f.write_str(".")?;
                }
                f.write_str(key)?;
                first = false;
            }
        }
        Ok(())
    }
}

struct Entry {
    path: KeyPath,
    /// The key as written (`name` in `name = "x"`, `node` in `[node]`).
    key_span: Option<Range<usize>>,
    /// The value; for a `[table]`, from its header to its last value.
    value_span: Option<Range<usize>>,
    kind: Kind,
}

/// How an entry is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `[x]`, `x = { ... }`, or implied by `[x.y]` / `x.y = 1`.
    Table,
    /// `[[x]]`.
    ArrayOfTables,
    /// Any other value.
    Value,
}

/// Every key, table and array element of a document with its spans.
pub(crate) struct SpanIndex {
    root_span: Option<Range<usize>>,
    entries: Vec<Entry>,
}

impl SpanIndex {
    pub(crate) fn new(doc: &ImDocument<&str>) -> Self {
        let mut index = SpanIndex {
            root_span: doc.as_table().span(),
            entries: Vec::new(),
        };
        index.add_table(&KeyPath::root(), doc.as_table());
        index
    }

    fn add_table(&mut self, path: &KeyPath, table: &Table) {
        for (name, _) in table.iter() {
            if let Some((key, item)) = table.get_key_value(name) {
                self.add_item(path.clone().key(name), key.span(), item);
            }
        }
    }

    fn add_item(&mut self, path: KeyPath, key_span: Option<Range<usize>>, item: &Item) {
        let kind = match item {
            Item::Table(_) | Item::Value(Value::InlineTable(_)) => Kind::Table,
            Item::ArrayOfTables(_) => Kind::ArrayOfTables,
            Item::Value(_) | Item::None => Kind::Value,
        };
        self.entries.push(Entry {
            path: path.clone(),
            key_span,
            value_span: item.span(),
            kind,
        });
        match item {
            Item::Table(table) => self.add_table(&path, table),
            Item::ArrayOfTables(tables) => {
                for (i, table) in tables.iter().enumerate() {
                    let element = path.clone().index(i);
                    self.entries.push(Entry {
                        path: element.clone(),
                        key_span: None,
                        value_span: table.span(),
                        kind: Kind::Table,
                    });
                    self.add_table(&element, table);
                }
            }
            Item::Value(value) => self.add_value_children(&path, value),
            Item::None => {}
        }
    }

    fn add_value_children(&mut self, path: &KeyPath, value: &Value) {
        match value {
            Value::Array(array) => {
                for (i, element) in array.iter().enumerate() {
                    let element_path = path.clone().index(i);
                    self.entries.push(Entry {
                        path: element_path.clone(),
                        key_span: None,
                        value_span: element.span(),
                        kind: match element {
                            Value::InlineTable(_) => Kind::Table,
                            _ => Kind::Value,
                        },
                    });
                    self.add_value_children(&element_path, element);
                }
            }
            Value::InlineTable(table) => {
                for (name, _) in table.iter() {
                    if let Some((key, item)) = table.get_key_value(name) {
                        self.add_item(path.clone().key(name), key.span(), item);
                    }
                }
            }
            _ => {}
        }
    }

    fn find(&self, path: &KeyPath) -> Option<&Entry> {
        self.entries.iter().find(|e| &e.path == path)
    }

    pub(crate) fn contains(&self, path: &KeyPath) -> bool {
        self.find(path).is_some()
    }

    /// How `path` is written, if it is present.
    pub(crate) fn kind(&self, path: &KeyPath) -> Option<Kind> {
        self.find(path).map(|e| e.kind)
    }

    /// True when `path` is written as a table (`[x]` or `x = { ... }`).
    pub(crate) fn is_table(&self, path: &KeyPath) -> bool {
        self.kind(path) == Some(Kind::Table)
    }

    /// Byte offset to report for `path`: its value, or when it is absent,
    /// the nearest enclosing table that is written out, or the file start.
    pub(crate) fn offset_of(&self, path: &KeyPath) -> usize {
        let mut current = Some(path.clone());
        while let Some(path) = current {
            if let Some(start) = self
                .find(&path)
                .and_then(|e| e.value_span.as_ref().or(e.key_span.as_ref()))
                .map(|span| span.start)
            {
                return start;
            }
            current = path.parent();
        }
        0
    }

    /// Byte offset of the key itself (rather than its value).
    pub(crate) fn key_offset_of(&self, path: &KeyPath) -> usize {
        match self.find(path).and_then(|e| e.key_span.as_ref()) {
            Some(span) => span.start,
            None => self.offset_of(path),
        }
    }

    /// The key a serde error span points at: a key (unknown field), a
    /// value (bad value), or a whole table (missing field).
    pub(crate) fn path_at(&self, span: &Range<usize>) -> KeyPath {
        if let Some(entry) = self
            .entries
            .iter()
            .find(|e| e.key_span.as_ref() == Some(span))
        {
            return entry.path.clone();
        }
        if self.root_span.as_ref() == Some(span) {
            return KeyPath::root();
        }
        let contains = |outer: &Range<usize>| {
            outer.start <= span.start
                && span.end <= outer.end
                && (span.start < outer.end || outer.is_empty())
        };
        self.entries
            .iter()
            .filter(|e| e.value_span.as_ref().is_some_and(contains))
            .max_by_key(|e| e.path.0.len())
            .map_or_else(KeyPath::root, |e| e.path.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
[node]
name = \"a\"

[lcores]
workers = [1, 2]
";

    fn index() -> SpanIndex {
        SpanIndex::new(&ImDocument::parse(DOC).unwrap())
    }

    #[test]
    fn finds_values_keys_and_elements() {
        let index = index();
        assert_eq!(index.offset_of(&KeyPath::dotted("node.name")), 14);
        assert_eq!(index.key_offset_of(&KeyPath::dotted("node.name")), 7);
        let second = KeyPath::dotted("lcores.workers").index(1);
        assert_eq!(&DOC[index.offset_of(&second)..][..1], "2");
        assert!(index.is_table(&KeyPath::dotted("lcores")));
    }

    #[test]
    fn absent_keys_fall_back_to_their_table() {
        let index = index();
        assert_eq!(index.offset_of(&KeyPath::dotted("lcores.control")), 19);
        assert_eq!(index.offset_of(&KeyPath::dotted("wire.pci")), 0);
    }

    #[test]
    fn spans_map_back_to_paths() {
        let index = index();
        assert_eq!(index.path_at(&(7..11)).to_string(), "node.name");
        assert_eq!(index.path_at(&(14..17)).to_string(), "node.name");
        let workers = DOC.find("[1, 2]").unwrap();
        assert_eq!(
            index.path_at(&(workers + 4..workers + 5)),
            KeyPath::dotted("lcores.workers").index(1)
        );
        assert_eq!(
            KeyPath::dotted("lcores.workers").index(1).to_string(),
            "lcores.workers"
        );
    }
}
