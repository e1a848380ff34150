//! HTTP/1.x: the request line and the Host header (RFC 9112).
//!
//! Parsing is strict where leniency would let two parsers disagree about
//! the request (bare LF, whitespace before a colon, obsolete line folding)
//! and incremental: every byte already held is checked, so a client that
//! speaks something else is found out on its first segment.

use super::{normalize_name, Partial, Request};

/// The longest request line or header line accepted.
pub const MAX_LINE: usize = 8 * 1024;
/// The longest method accepted (the longest registered one has 17 bytes).
const MAX_METHOD: usize = 32;

pub(super) fn classify(bytes: &[u8]) -> Partial<Request> {
    // A server should ignore empty lines before the request line.
    let mut bytes = bytes;
    while let Some(rest) = bytes.strip_prefix(b"\r\n") {
        bytes = rest;
    }
    if bytes == b"\r" {
        return Ok(None);
    }

    let Some((line, mut rest)) = next_line(bytes, "request line too long")? else {
        request_line(strip_partial_cr(bytes), false)?;
        return Ok(None);
    };
    // A complete line is either valid (Some) or an error.
    let Some((method, target)) = request_line(line, true)? else {
        return Err("incomplete request line");
    };
    let method = String::from_utf8_lossy(method).into_owned();

    // An absolute-form target names the host itself, and it wins over Host.
    if let Some((host, path)) = absolute_form(target)? {
        return Ok(Some(Request::Http { method, path, host }));
    }
    let path = String::from_utf8_lossy(target).into_owned();

    loop {
        let Some((line, after)) = next_line(rest, "header line too long")? else {
            header_name_prefix(strip_partial_cr(rest))?;
            return Ok(None);
        };
        rest = after;
        if line.is_empty() {
            // End of the header block and no Host: route on the path alone.
            return Ok(Some(Request::Http {
                method,
                path,
                host: None,
            }));
        }
        let (name, value) = header(line)?;
        if name.eq_ignore_ascii_case(b"host") {
            let host = host_value(value)?;
            return Ok(Some(Request::Http { method, path, host }));
        }
    }
}

/// Splits off one CRLF-terminated line; `Ok(None)` if the line is not
/// complete yet (and not already too long).
fn next_line<'a>(bytes: &'a [u8], too_long: &'static str) -> Partial<(&'a [u8], &'a [u8])> {
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
fn strip_partial_cr(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// Checks `method SP request-target SP HTTP-version`. When `complete` is
/// false, `line` is a prefix and only what is there is checked.
fn request_line(line: &[u8], complete: bool) -> Partial<(&[u8], &[u8])> {
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

fn split_at_space(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(sp) => (&bytes[..sp], Some(&bytes[sp + 1..])),
        None => (bytes, None),
    }
}

/// The host and path named by an absolute-form request target.
type HostAndPath = (Option<String>, String);

/// `http://host[:port]/path` → (host, path). `Ok(None)` for any other form.
fn absolute_form(target: &[u8]) -> Result<Option<HostAndPath>, &'static str> {
    let after_scheme = [&b"http://"[..], b"https://"].iter().find_map(|scheme| {
        let head = target.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme)
            .then(|| &target[scheme.len()..])
    });
    let Some(rest) = after_scheme else {
        return Ok(None);
    };
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    // Drop any userinfo.
    let authority = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let host = host_value(authority)?;
    let path = match path {
        [] => "/".to_owned(),
        [b'/', ..] => String::from_utf8_lossy(path).into_owned(),
        _ => format!("/{}", String::from_utf8_lossy(path)),
    };
    Ok(Some((host, path)))
}

/// `name ":" OWS value OWS` → (name, value).
fn header(line: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
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
fn header_name_prefix(partial: &[u8]) -> Result<(), &'static str> {
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

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// `host [":" port]` or `"[" IPv6 "]" [":" port]` → the host, normalised.
fn host_value(value: &[u8]) -> Result<Option<String>, &'static str> {
    let (host, port) = if value.starts_with(b"[") {
        let Some(close) = value.iter().position(|&b| b == b']') else {
            return Err("IPv6 literal in Host has no closing bracket");
        };
        let (literal, after) = value.split_at(close + 1);
        match after {
            [] => (literal, None),
            [b':', port @ ..] => (literal, Some(port)),
            _ => return Err("junk after IPv6 literal in Host"),
        }
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
            None => (value, None),
        }
    };
    if port.is_some_and(|p| !p.iter().all(u8::is_ascii_digit)) {
        return Err("port in Host is not a number");
    }
    if !host.starts_with(b"[") && host.contains(&b':') {
        return Err("Host has more than one colon");
    }
    normalize_name(host)
}

/// RFC 9110 `tchar`: the characters of a token.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
