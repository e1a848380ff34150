//! The syntax HTTP/1.x messages share (RFC 9112): lines, header fields,
//! tokens. Strict where leniency would let two parsers disagree about a
//! message: bare LF, whitespace before a colon, obsolete line folding.

/// The longest request line, status line or header line accepted.
pub const MAX_LINE: usize = 8 * 1024;

/// A parser's answer: `Ok(Some(_))` parsed, `Ok(None)` valid so far but
/// incomplete, `Err(reason)` cannot be valid whatever follows.
pub type Partial<T> = Result<Option<T>, &'static str>;

/// The longest method accepted (the longest registered one has 17 bytes).
const MAX_METHOD: usize = 32;

/// Splits off one CRLF-terminated line; `Ok(None)` if the line is not
/// complete yet (and not already too long).
pub fn next_line<'a>(bytes: &'a [u8], too_long: &'static str) -> Partial<(&'a [u8], &'a [u8])> {
    let Some(lf) = bytes.iter().position(|&b| b == b'\n') else {
        return if bytes.len() > MAX_LINE {
            Err(too_long)
        } else {
            Ok(None)
        };
    };
    if lf == 0 || bytes[lf - 1] != b'\r' {
        return Err("line ends with a bare LF");
    }
    let line = &bytes[..lf - 1];
    if line.len() > MAX_LINE {
        return Err(too_long);
    }
    Ok(Some((line, &bytes[lf + 1..])))
}

/// A partial line may end with the CR of its CRLF.
pub fn strip_partial_cr(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

pub fn split_at_space(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(sp) => (&bytes[..sp], Some(&bytes[sp + 1..])),
        None => (bytes, None),
    }
}

/// `name ":" OWS value OWS` → (name, value).
pub fn header(line: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err("obsolete header line folding");
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err("header line has no colon");
    };
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err("header name is not a token");
    }
    let value = trim_ows(&line[colon + 1..]);
    if value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
        return Err("control character in header value");
    }
    Ok((name, value))
}

/// Checks the part of a header name present in an incomplete line.
pub fn header_name_prefix(partial: &[u8]) -> Result<(), &'static str> {
    if matches!(partial.first(), Some(b' ' | b'\t')) {
        return Err("obsolete header line folding");
    }
    let name_end = partial
        .iter()
        .position(|&b| b == b':')
        .unwrap_or(partial.len());
    if !partial[..name_end].iter().all(|&b| is_tchar(b)) {
        return Err("header name is not a token");
    }
    Ok(())
}

pub fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// RFC 9110 `tchar`: the characters of a token.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks `method SP request-target SP HTTP-version`. When `complete` is
/// false, `line` is a prefix and only what is there is checked.
pub fn request_line(line: &[u8], complete: bool) -> Partial<(&[u8], &[u8])> {
    let (method, rest) = split_at_space(line);
    if !method.iter().all(|&b| is_tchar(b)) {
        return Err("method is not a token");
    }
    if method.len() > MAX_METHOD {
        return Err("method too long");
    }
    let Some(rest) = rest else {
        return if complete {
            Err("request line has no target")
        } else {
            Ok(None)
        };
    };
    if method.is_empty() {
        return Err("request line starts with a space");
    }
    let (target, rest) = split_at_space(rest);
    if !target.iter().all(|&b| b > b' ' && b != 0x7f) {
        return Err("request target has a control character");
    }
    let Some(version) = rest else {
        return if complete {
            Err("request line has no HTTP version")
        } else {
            Ok(None)
        };
    };
    if target.is_empty() {
        return Err("empty request target");
    }
    const HTTP1: &[u8] = b"HTTP/1.";
    let prefix_ok = version.len() <= HTTP1.len() + 1
        && version.iter().zip(HTTP1).all(|(a, b)| a == b)
        && version.get(HTTP1.len()).iter().all(|b| b.is_ascii_digit());
    if !prefix_ok || (complete && version.len() != HTTP1.len() + 1) {
        return Err("not an HTTP/1.x request");
    }
    Ok(complete.then_some((method, target)))
}
