//! The client side of the HTTP/1.1 upgrade: request building and response checking.

use crate::rng::Rng;

/// GUID appended to the key before hashing (RFC 6455 section 1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A random `Sec-WebSocket-Key`: 16 random bytes, base64 (24 characters).
pub fn random_key(rng: &mut Rng) -> [u8; 24] {
    let mut raw = [0u8; 16];
    rng.fill(&mut raw);
    let mut key = [0u8; 24];
    key.copy_from_slice(base64(&raw).as_bytes());
    key
}

/// The `Sec-WebSocket-Accept` value a server must answer for `key`.
pub fn accept_for(key: &[u8]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(GUID);
    base64(&sha.digest().bytes())
}

/// Appends the upgrade request for `path` on `host` with `key` to `out`.
pub fn write_request(out: &mut Vec<u8>, host: &str, path: &str, key: &[u8; 24]) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(
        b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
    );
    out.extend_from_slice(key);
    out.extend_from_slice(b"\r\n\r\n");
}

/// Checks the server's answer at the start of `buf`.
///
/// Returns `Ok(None)` while the header block is incomplete, `Ok(Some(n))` with the
/// header length once a valid `101` with the right accept key is complete (frames may
/// follow in the same buffer), or an error describing what was wrong.
pub fn parse_response(buf: &[u8], key: &[u8; 24]) -> Result<Option<usize>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad HTTP response: {e}")),
    };
    if resp.code != Some(101) {
        return Err(format!(
            "expected 101, got {} {}",
            resp.code.unwrap_or(0),
            resp.reason.unwrap_or("")
        ));
    }
    let accept = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .ok_or("101 without Sec-WebSocket-Accept")?;
    if accept.value.trim_ascii() != accept_for(key).as_bytes() {
        return Err("wrong Sec-WebSocket-Accept".into());
    }
    Ok(Some(len))
}

/// Standard base64 with padding (encoding only).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_example_accept() {
        assert_eq!(
            accept_for(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn checks_response() {
        let key = random_key(&mut Rng::new(7));
        let accept = accept_for(&key);
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n\x01\x00"
        );
        let n = parse_response(ok.as_bytes(), &key).unwrap().unwrap();
        assert_eq!(n, ok.len() - 2);
        assert_eq!(parse_response(&ok.as_bytes()[..20], &key), Ok(None));
        assert!(parse_response(b"HTTP/1.1 400 Bad\r\n\r\n", &key).is_err());
        let bad = ok.replace(&accept, "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert!(parse_response(bad.as_bytes(), &key).is_err());
    }

    #[test]
    fn request_shape() {
        let mut out = Vec::new();
        write_request(&mut out, "h:1", "/gw", &[b'k'; 24]);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("GET /gw HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(s.ends_with(&format!("Sec-WebSocket-Key: {}\r\n\r\n", "k".repeat(24))));
    }
}
