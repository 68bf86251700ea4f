//! Parsing of the `ws://HOST:PORT/path` target URL (plain `ws` only: no TLS).

use std::net::{SocketAddr, ToSocketAddrs};

/// A resolved WebSocket target.
#[derive(Debug, Clone)]
pub struct WsUrl {
    /// `Host` header value (`host:port` as written).
    pub host: String,
    /// Request target, starting with `/`.
    pub path: String,
    /// Resolved socket address.
    pub addr: SocketAddr,
}

impl WsUrl {
    /// Parses and resolves `ws://host[:port][/path]`; the port defaults to 80.
    pub fn parse(url: &str) -> crate::Result<Self> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("only ws:// URLs are supported: {url:?}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("missing host in {url:?}").into());
        }
        let with_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_string()
        };
        let addr = with_port
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| format!("cannot resolve {authority:?}"))?;
        Ok(Self {
            host: authority.to_string(),
            path: path.to_string(),
            addr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::WsUrl;

    #[test]
    fn parses_host_port_and_path() {
        let u = WsUrl::parse("ws://127.0.0.1:9001/gateway?v=1").unwrap();
        assert_eq!(u.host, "127.0.0.1:9001");
        assert_eq!(u.path, "/gateway?v=1");
        assert_eq!(u.addr.port(), 9001);
        let u = WsUrl::parse("ws://127.0.0.1").unwrap();
        assert_eq!((u.path.as_str(), u.addr.port()), ("/", 80));
        assert!(WsUrl::parse("http://x").is_err());
    }
}
