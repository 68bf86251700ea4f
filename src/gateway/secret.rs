//! Secrets: session ids, constant-time comparison, and random tokens from the OS (the one
//! file that reads the operating system's randomness).
//!
//! Tokens and session ids are credentials: compare them without an early exit (so response
//! timing does not reveal how much of a guess was right) and never log them.

use std::fmt;
use std::io::Read;

/// A session's identifier: 53 bits from the operating system's randomness (see
/// [`random_session_id`]), so that no one can guess another client's session, and every
/// JSON reader (JavaScript's `JSON.parse` included) reads it exactly. A credential: neither its `Display` nor its `Debug`
/// prints the number; a dialect spells it with [`SessionId::get`].
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

impl SessionId {
    /// The id a client sent back (a dialect decoding a resume), or a fixed one in a test.
    #[must_use]
    pub const fn new(raw: u64) -> SessionId {
        SessionId(raw)
    }

    /// The number, for a dialect to write into READY. Never log it.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the id itself: it is a resume credential.
        f.write_str("session")
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(..)")
    }
}

/// Fills `buf` from the OS's random source (`/dev/urandom`).
pub fn os_random(buf: &mut [u8]) -> std::io::Result<()> {
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// A random `u64` from the OS (0 is never returned).
pub fn random_u64() -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    os_random(&mut b)?;
    Ok(u64::from_le_bytes(b).max(1))
}

/// The largest integer every JSON reader holds exactly: 2^53 − 1, JavaScript's
/// `Number.MAX_SAFE_INTEGER`. Integers a server sends as JSON numbers stay at or below it.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A random session id: 53 random bits from the OS, never 0, never above
/// [`MAX_SAFE_INTEGER`], so that a client parsing JSON numbers as doubles sends back the
/// id it was given.
pub fn random_session_id() -> std::io::Result<SessionId> {
    Ok(SessionId((random_u64()? & MAX_SAFE_INTEGER).max(1)))
}

/// Compares two secrets in time that depends only on their lengths.
pub fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// A random token of `bytes` bytes from the OS, as lowercase hex (2 × `bytes` characters).
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut raw = vec![0u8; bytes];
    os_random(&mut raw)?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes * 2);
    for b in raw {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xF)]));
    }
    Ok(out)
}

/// A random version-4 UUID from the OS, e.g. `ad13c35f-7bf4-413b-997d-eef2fe009f98`.
pub fn random_uuid() -> std::io::Result<String> {
    let mut b = [0u8; 16];
    os_random(&mut b)?;
    b[6] = (b[6] & 0x0F) | 0x40;
    b[8] = (b[8] & 0x3F) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_exactly() {
        assert!(secret_eq(b"token", b"token"));
        assert!(!secret_eq(b"token", b"tokem"));
        assert!(!secret_eq(b"token", b"token2"));
        assert!(!secret_eq(b"", b"x"));
        assert!(secret_eq(b"", b""));
    }

    #[test]
    fn session_ids_never_print_their_number() {
        let id = SessionId::new(0x1234_5678_9abc);
        for shown in [
            format!("{id}"),
            format!("{id:?}"),
            format!("{:?}", Some(id)),
        ] {
            assert!(!shown.contains("1234") && !shown.contains(&id.get().to_string()));
        }
        assert_eq!(SessionId::new(7).get(), 7);
    }

    #[test]
    fn os_random_differs() {
        assert_ne!(random_u64().unwrap(), random_u64().unwrap());
    }

    #[test]
    fn random_shapes() {
        let t = random_hex(16).unwrap();
        assert_eq!(t.len(), 32);
        assert_ne!(t, random_hex(16).unwrap());
        let u = random_uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }
}
