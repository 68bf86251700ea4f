//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! A text message may be split across fragments and reads at any byte, even inside a
//! code point. The validator keeps at most three bytes of an unfinished code point and
//! reports an error as soon as a byte makes the text invalid, so a bad message is refused
//! with 1007 without waiting for the rest of it.

use std::fmt;

/// The text is not UTF-8 (close code 1007).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Utf8Error;

impl fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl std::error::Error for Utf8Error {}

/// Validates a byte stream piece by piece; 5 bytes of state.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: u8,
}

/// Expected length of the sequence a lead byte starts (0 for a byte that cannot lead).
fn sequence_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

/// Checks `bytes`: Ok(None) when complete and valid, Ok(Some(start)) when valid except for
/// a possibly-valid unfinished code point from `start`, Err when invalid anywhere.
fn check(bytes: &[u8]) -> Result<Option<usize>, Utf8Error> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(None),
        Err(e) if e.error_len().is_none() => Ok(Some(e.valid_up_to())),
        Err(_) => Err(Utf8Error),
    }
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub const fn new() -> Utf8Validator {
        Utf8Validator {
            pending: [0; 4],
            pending_len: 0,
        }
    }

    /// Feeds the next bytes of the message. Fails on the first byte that cannot be part of
    /// valid UTF-8, whatever follows.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Utf8Error> {
        if self.pending_len > 0 {
            let have = usize::from(self.pending_len);
            let need = sequence_len(self.pending[0]);
            let take = need.saturating_sub(have).min(bytes.len());
            let mut seq = self.pending;
            seq[have..have + take].copy_from_slice(&bytes[..take]);
            let len = have + take;
            match check(&seq[..len])? {
                None => {
                    self.pending_len = 0;
                    bytes = &bytes[take..];
                }
                Some(_) => {
                    // Still unfinished (so all of `bytes` went in) but not wrong yet.
                    self.pending = seq;
                    self.pending_len = len as u8;
                    return Ok(());
                }
            }
        }
        if let Some(start) = check(bytes)? {
            let tail = &bytes[start..];
            self.pending[..tail.len()].copy_from_slice(tail);
            self.pending_len = tail.len() as u8;
        }
        Ok(())
    }

    /// Ends the message: an unfinished code point at the end is an error. Resets the
    /// validator for the next message either way.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let unfinished = self.pending_len > 0;
        *self = Utf8Validator::new();
        if unfinished {
            Err(Utf8Error)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_everywhere(bytes: &[u8]) -> Vec<Result<(), Utf8Error>> {
        (0..=bytes.len())
            .map(|cut| {
                let mut v = Utf8Validator::new();
                v.feed(&bytes[..cut])?;
                v.feed(&bytes[cut..])?;
                v.finish()
            })
            .collect()
    }

    #[test]
    fn valid_text_passes_at_every_split_and_byte_by_byte() {
        let text = "κόσμε a€𝄞 Hello-µ@ßöäüàá-UTF-8!!".as_bytes();
        assert!(split_everywhere(text).iter().all(Result::is_ok));
        let mut v = Utf8Validator::new();
        for b in text {
            v.feed(std::slice::from_ref(b)).unwrap();
        }
        v.finish().unwrap();
    }

    #[test]
    fn invalid_text_fails_at_every_split() {
        let cases: [&[u8]; 6] = [
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", // surrogate
            b"\xf4\x90\x80\x80",                                               // > U+10FFFF
            b"\xc0\xaf",                                                       // overlong
            b"abc\xff",
            b"\xe0\x80\xaf",
            b"\xf0\x9f\x98", // truncated at the end
        ];
        for bytes in cases {
            assert!(
                split_everywhere(bytes).iter().all(Result::is_err),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn fails_as_soon_as_the_bad_byte_arrives() {
        let mut v = Utf8Validator::new();
        v.feed(b"\xce\xba\xe1").unwrap();
        assert_eq!(v.feed(b"\xbd\xb9\xed\xa0"), Err(Utf8Error)); // surrogate prefix
        let mut v = Utf8Validator::new();
        v.feed(b"\xf4").unwrap();
        assert_eq!(v.feed(b"\x90"), Err(Utf8Error)); // beyond U+10FFFF already
        let mut v = Utf8Validator::new();
        v.feed(b"\xf0\x90").unwrap(); // a valid prefix, more may come
    }
}
