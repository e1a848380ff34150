//! The error every config problem turns into, and the message type the
//! value parsers use.

use std::fmt;

/// Why a config could not be loaded: which file, where in it, which key,
/// and what is wrong.
///
/// `Display` is one line, made for a terminal and for `grep`:
///
/// ```text
/// node1.toml:14:11: `lcores.workers`: lcore 0 is already the control lcore
/// node1.toml: cannot read: No such file or directory (os error 2)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: String,
    position: Option<(usize, usize)>,
    key: Option<String>,
    message: String,
}

impl ConfigError {
    /// An error at byte `offset` of `text`.
    pub(crate) fn at(
        file: &str,
        text: &str,
        offset: usize,
        key: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.to_owned(),
            position: Some(line_column(text, offset)),
            key,
            message: one_line(&message.into()),
        }
    }

    /// The file could not be read at all.
    pub(crate) fn unreadable(file: &str, error: &std::io::Error) -> Self {
        ConfigError {
            file: file.to_owned(),
            position: None,
            key: None,
            message: one_line(&format!("cannot read: {error}")),
        }
    }

    /// The file name as given to [`crate::load`] or [`crate::parse`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// 1-based line; `None` only when the file could not be read.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|(line, _)| line)
    }

    /// 1-based column, in characters; `None` only when the file could not be read.
    pub fn column(&self) -> Option<usize> {
        self.position.map(|(_, column)| column)
    }

    /// The dotted key the problem is about, e.g. `lcores.workers`.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What is wrong, without the location prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Why a single value (a PCI address, a MAC, a CIDR) is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(String);

impl ValueError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ValueError(message.into())
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

/// 1-based line and character column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Keeps `Display` on one line whatever the underlying parser said.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_in_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // Byte 10 is the `=`, after "bé " (3 characters, 4 bytes).
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn display_is_one_line() {
        let err = ConfigError::at("x.toml", "a\nb", 2, Some("a.b".into()), "bad\nthing\n");
        assert_eq!(err.to_string(), "x.toml:2:1: `a.b`: bad; thing");
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = ConfigError::unreadable("x.toml", &io);
        assert_eq!(err.to_string(), "x.toml: cannot read: entity not found");
        assert_eq!(err.line(), None);
    }
}
