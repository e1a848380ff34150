//! The one error type of the packet views.

use std::fmt;

/// Why a buffer is not a valid header of the kind asked for.
///
/// Parsing never panics: every malformed input ends up as one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field claims.
    Truncated,
    /// The IP version nibble is not the one the view is for.
    BadVersion,
    /// An IPv4 IHL or a TCP data offset below the minimum header size.
    BadHeaderLength,
    /// The IPv4 total length is shorter than the header.
    BadTotalLength,
    /// A TCP option with an impossible length, or a known option whose
    /// length does not match its kind.
    BadOption,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::Truncated => "truncated packet",
            Error::BadVersion => "wrong IP version",
            Error::BadHeaderLength => "header length below minimum",
            Error::BadTotalLength => "IPv4 total length shorter than header",
            Error::BadOption => "malformed TCP option",
        };
        f.write_str(text)
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of the packet views.
pub type Result<T> = core::result::Result<T, Error>;
