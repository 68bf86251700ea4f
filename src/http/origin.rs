//! Which web pages may open a WebSocket: the `Origin` policy checked at the upgrade, before
//! the application sees the request (cross-site WebSocket hijacking: a browser sends the
//! cookies and credentials of the target site with an upgrade that any page may start, and
//! tells the server which page did in `Origin`).
//!
//! Browsers always send `Origin` with a WebSocket upgrade; other clients usually send none.
//! A request **without** `Origin` is therefore admitted by every policy: it cannot come from
//! a page in a browser, and a non-browser client can write any `Origin` it likes anyway, so
//! the check protects browser users, not the server. An `Origin` the policy refuses (the
//! opaque `null` of sandboxed frames and `file:` pages included) is answered
//! `403 Forbidden` and the socket is closed.

use super::Request;

/// Which `Origin` headers an upgrade may carry (see the module documentation). The default,
/// [`OriginPolicy::Any`], keeps the behaviour of a server that does not look at `Origin`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OriginPolicy {
    /// Every origin (the default): the application decides, if it cares.
    #[default]
    Any,
    /// The server's own origin, the `Origin` whose host and port equal the request's `Host`
    /// (the scheme's default port when either leaves it out: 80 for `http`, 443 for
    /// `https`), and also the origins listed (as in [`OriginPolicy::AllowList`]).
    SameOrigin(Vec<String>),
    /// Only the origins listed, each `scheme://host[:port]` (compared without regard to
    /// ASCII case, a trailing `/` ignored, the scheme's default port filled in).
    AllowList(Vec<String>),
}

/// The parts of a serialised origin, `scheme://host[:port]`.
#[derive(Debug, PartialEq, Eq)]
struct Origin<'a> {
    scheme: &'a str,
    host: &'a str,
    /// The port given, or the scheme's default.
    port: Option<u16>,
}

impl OriginPolicy {
    /// Whether `request` may upgrade under this policy: always when it has no `Origin`
    /// header; otherwise per the variant. An `Origin` that is not UTF-8 or not
    /// `scheme://host[:port]` (e.g. `null`) is admitted only by [`OriginPolicy::Any`].
    #[must_use]
    pub fn admits(&self, request: &Request<'_, '_>) -> bool {
        let Some(raw) = request.header("origin") else {
            return true;
        };
        match self {
            OriginPolicy::Any => true,
            OriginPolicy::SameOrigin(also) => {
                let origin = std::str::from_utf8(raw).map(str::trim).unwrap_or("");
                let host = request.header_str("host").unwrap_or("");
                same_origin(origin, host) || listed(also, origin)
            }
            OriginPolicy::AllowList(list) => {
                let origin = std::str::from_utf8(raw).map(str::trim).unwrap_or("");
                listed(list, origin)
            }
        }
    }
}

/// Whether `origin` is one of `list` (an unparsable origin is none of them).
fn listed(list: &[String], origin: &str) -> bool {
    let Some(origin) = parse_origin(origin) else {
        return false;
    };
    list.iter()
        .filter_map(|allowed| parse_origin(allowed.trim().trim_end_matches('/')))
        .any(|allowed| {
            allowed.scheme.eq_ignore_ascii_case(origin.scheme)
                && allowed.host.eq_ignore_ascii_case(origin.host)
                && allowed.port == origin.port
        })
}

/// Whether `origin`'s host and port are those of the `Host` header `host`.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some(origin) = parse_origin(origin) else {
        return false;
    };
    let Some((host_name, host_port)) = split_host_port(host) else {
        return false;
    };
    let host_port = host_port.or(default_port(origin.scheme));
    !host_name.is_empty()
        && host_name.eq_ignore_ascii_case(origin.host)
        && host_port.is_some()
        && host_port == origin.port
}

/// `scheme://host[:port]` with nothing after it; `None` for anything else (`null`, a path).
fn parse_origin(text: &str) -> Option<Origin<'_>> {
    let (scheme, rest) = text.split_once("://")?;
    let valid_scheme = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !valid_scheme || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = split_host_port(rest)?;
    if host.is_empty() {
        return None;
    }
    Some(Origin {
        scheme,
        host,
        port: port.or(default_port(scheme)),
    })
}

/// `host[:port]` (an IPv6 literal in brackets) → host and the port if given; `None` when a
/// port is given but is not a number.
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    let after_host = match text.strip_prefix('[') {
        Some(v6) => v6.find(']')? + 2,
        None => text.find(':').unwrap_or(text.len()),
    };
    let (host, port) = text.split_at(after_host.min(text.len()));
    match port.strip_prefix(':') {
        Some(digits) => Some((host, Some(digits.parse().ok()?))),
        None if port.is_empty() => Some((host, None)),
        None => None,
    }
}

/// The default port of `scheme` (`http`/`ws` 80, `https`/`wss` 443).
fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, Parsed, MAX_HEADERS};

    /// Whether `policy` admits an upgrade with these `Host` and `Origin` headers.
    fn admits(policy: &OriginPolicy, host: &str, origin: Option<&str>) -> bool {
        let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        let text = format!("GET / HTTP/1.1\r\nHost: {host}\r\n{origin}\r\n");
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match parse_request(text.as_bytes(), &mut headers) {
            Ok(Parsed::Complete { request, .. }) => policy.admits(&request),
            other => panic!("not parsed: {other:?}"),
        }
    }

    #[test]
    fn any_admits_everything() {
        let any = OriginPolicy::default();
        assert_eq!(any, OriginPolicy::Any);
        assert!(admits(&any, "a:1", Some("http://evil.example")));
        assert!(admits(&any, "a:1", Some("null")));
        assert!(admits(&any, "a:1", None));
    }

    #[test]
    fn same_origin_is_the_host_and_port_of_host() {
        let same = OriginPolicy::SameOrigin(Vec::new());
        let host = "127.0.0.1:9004";
        assert!(admits(&same, host, Some("http://127.0.0.1:9004")));
        assert!(admits(&same, host, Some("https://127.0.0.1:9004")));
        assert!(admits(
            &same,
            "Chat.Example:9004",
            Some("HTTP://chat.example:9004")
        ));
        assert!(admits(&same, "[::1]:9004", Some("http://[::1]:9004")));
        // Default ports on either side.
        assert!(admits(&same, "chat.example", Some("https://chat.example")));
        assert!(admits(
            &same,
            "chat.example",
            Some("https://chat.example:443")
        ));
        assert!(admits(
            &same,
            "chat.example:80",
            Some("http://chat.example")
        ));
        // No Origin: not a browser.
        assert!(admits(&same, host, None));
        // Another port, another host, null, garbage.
        assert!(!admits(&same, host, Some("http://127.0.0.1:9005")));
        assert!(!admits(&same, host, Some("http://localhost:9004")));
        assert!(!admits(&same, host, Some("http://127.0.0.1")));
        assert!(!admits(
            &same,
            "chat.example",
            Some("http://chat.example:8080")
        ));
        assert!(!admits(&same, host, Some("null")));
        assert!(!admits(&same, host, Some("")));
        assert!(!admits(&same, host, Some("http://127.0.0.1:9004/path")));
        assert!(!admits(&same, host, Some("http://x@127.0.0.1:9004")));
        assert!(!admits(&same, host, Some("http://127.0.0.1:99999")));
        assert!(!admits(&same, "", Some("http://127.0.0.1:9004")));
        assert!(!admits(&same, "[::1:9004", Some("http://[::1]:9004")));
    }

    #[test]
    fn allow_lists_match_scheme_host_and_port() {
        let list = vec![
            "https://app.example".to_string(),
            "http://x.example:8080/".into(),
        ];
        let allow = OriginPolicy::AllowList(list.clone());
        let host = "127.0.0.1:9004";
        assert!(admits(&allow, host, Some("https://app.example")));
        assert!(admits(&allow, host, Some("https://APP.example:443")));
        assert!(admits(&allow, host, Some("http://x.example:8080")));
        assert!(admits(&allow, host, None));
        assert!(!admits(&allow, host, Some("http://app.example")));
        assert!(!admits(&allow, host, Some("http://x.example")));
        assert!(!admits(&allow, host, Some("http://127.0.0.1:9004")));
        assert!(!admits(&allow, host, Some("null")));
        // Same origin plus the list.
        let both = OriginPolicy::SameOrigin(list);
        assert!(admits(&both, host, Some("http://127.0.0.1:9004")));
        assert!(admits(&both, host, Some("https://app.example")));
        assert!(!admits(&both, host, Some("https://evil.example")));
    }
}
