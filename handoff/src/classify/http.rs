//! HTTP/1.x: the request line and the Host header (RFC 9112).
//!
//! Parsing is strict (see [`crate::http1::syntax`]) and incremental: every
//! byte already held is checked, so a client that speaks something else is
//! found out on its first segment.

use super::{normalize_name, Request};
use crate::http1::syntax::{
    header, header_name_prefix, next_line, request_line, strip_partial_cr, Partial,
};

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

#[cfg(test)]
mod tests;
