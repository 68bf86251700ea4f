//! Query-string lookup and `application/x-www-form-urlencoded` style percent-decoding.
//!
//! Decoding is exact or refused: decoded bytes that are not UTF-8 are an error
//! ([`NotUtf8`]), never replaced with U+FFFD, so two different byte strings never decode to
//! the same text (`%FE` and `%FF` used to both become U+FFFD, and an id named by one matched
//! the other). An invalid escape (`%` not followed by two hex digits) is kept literally,
//! which is lossless. When there is nothing to decode the input is returned borrowed.
//!
//! [`parse_request`](super::parse_request) refuses (400) a request whose target does not
//! decode ([`target_decodes`]), so every component of a parsed
//! [`Request`](super::Request)'s path and query decodes exactly.

use std::borrow::Cow;
use std::fmt;

/// Percent-decoded bytes that are not valid UTF-8 (e.g. `%FE`, or `%C3` alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8;

impl fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not UTF-8 once percent-decoded")
    }
}

impl std::error::Error for NotUtf8 {}

/// Percent-decodes `input`, also turning `+` into a space (form encoding, as used in query
/// strings). Invalid escapes are kept literally; decoded bytes that are not UTF-8 are
/// [`NotUtf8`] (never replaced lossily). The input is borrowed unchanged when it contains
/// neither `%` nor `+`.
pub fn percent_decode(input: &str) -> Result<Cow<'_, str>, NotUtf8> {
    let bytes = input.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return Ok(Cow::Borrowed(input));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (hex_value(bytes.get(i + 1)), hex_value(bytes.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| NotUtf8)
}

/// Whether every component of a request target (its path segments, query names and
/// values) percent-decodes to UTF-8. Decoding the whole target is the same test: the
/// separators (`/ ? & =`) are ASCII, so no multi-byte sequence or escape spans two
/// components, and a target is valid exactly when each of its components is. Allocates
/// only when the target holds an escape.
pub(crate) fn target_decodes(target: &str) -> bool {
    if !target.as_bytes().contains(&b'%') {
        return true; // a &str: already UTF-8, and `+` only makes spaces
    }
    percent_decode(target).is_ok()
}

/// The value of one hex digit, if `b` is one.
fn hex_value(b: Option<&u8>) -> Option<u8> {
    match *b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The decoded value of the first `name` parameter in `query` (the part after `?`). A
/// parameter without `=` has the empty value; names are compared after decoding (a name
/// that does not decode matches nothing). A value that does not decode is `Some(Err)`.
pub(crate) fn find_param<'b>(query: &'b str, name: &str) -> Option<Result<Cow<'b, str>, NotUtf8>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| percent_decode(key).is_ok_and(|k| k == name))
        .map(|(_, value)| percent_decode(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(input: &str) -> String {
        percent_decode(input).expect("decodes").into_owned()
    }

    #[test]
    fn decode_plain_is_borrowed() {
        assert!(matches!(
            percent_decode("abc-._~"),
            Ok(Cow::Borrowed("abc-._~"))
        ));
        assert!(matches!(percent_decode(""), Ok(Cow::Borrowed(""))));
    }

    #[test]
    fn decode_escapes_and_plus() {
        assert_eq!(decoded("a%20b+c"), "a b c");
        assert_eq!(decoded("%2B%2b"), "++");
        assert_eq!(decoded("%E2%9C%93"), "\u{2713}");
        assert_eq!(decoded("%41%42%43"), "ABC");
        assert_eq!(decoded("%EF%BF%BD"), "\u{FFFD}"); // a real U+FFFD is text like any other
        assert_eq!(decoded("%F0%9F%A6%80"), "\u{1F980}");
    }

    #[test]
    fn decode_invalid_escapes_kept_literally() {
        assert_eq!(decoded("%"), "%");
        assert_eq!(decoded("%4"), "%4");
        assert_eq!(decoded("%zz"), "%zz");
        assert_eq!(decoded("100%"), "100%");
        assert_eq!(decoded("%%41"), "%A");
        assert_eq!(decoded("%4g+"), "%4g ");
    }

    #[test]
    fn decode_non_utf8_is_refused_never_replaced() {
        for bad in [
            "%FE",
            "%FF",
            "a%FFb",
            "%C3",            // a lead byte alone
            "%C3+",           // a lead byte then a space
            "%80",            // a continuation byte alone
            "%C0%AF",         // overlong '/'
            "%ED%A0%80",      // a UTF-16 surrogate
            "%F4%90%80%80",   // above U+10FFFF
            "%E2%9C",         // cut short
            "ok%E2%9C%93%FE", // valid, then not
        ] {
            assert_eq!(percent_decode(bad), Err(NotUtf8), "{bad}");
        }
        // The defect: both used to decode to "\u{FFFD}", one id for two different ones.
        assert_ne!(percent_decode("%FE"), percent_decode("%EF%BF%BD"));
        assert_eq!(NotUtf8.to_string(), "not UTF-8 once percent-decoded");
    }

    #[test]
    fn target_decodes_when_every_component_does() {
        for good in [
            "/",
            "/gateway?roomId=1&participantId=p",
            "/rooms/J%C3%BCrgen/participants/%EF%BF%BD",
            "/a?x=%zz&y=100%",
            "/a+b?c=d+e",
        ] {
            assert!(target_decodes(good), "{good}");
        }
        for bad in [
            "/gateway?roomId=%FE&participantId=p",
            "/gateway?roomId=r&participantId=%FF",
            "/rooms/%FE/participants/p",
            "/rooms/r/participants/%C3",
            "/x?%FF=1",
            "/%C3/%A9", // halves of one character in two segments: both invalid
            "/x?a=%C3&b=%A9",
        ] {
            assert!(!target_decodes(bad), "{bad}");
        }
    }

    #[test]
    fn find_param_cases() {
        let q = "roomId=1&name=J%C3%BCrgen+K&empty=&flag&&roomId=2&a%20b=x";
        let find = |name| find_param(q, name).map(|v| v.expect("decodes"));
        assert_eq!(find("roomId").as_deref(), Some("1"));
        assert_eq!(find("name").as_deref(), Some("Jürgen K"));
        assert_eq!(find("empty").as_deref(), Some(""));
        assert_eq!(find("flag").as_deref(), Some(""));
        assert_eq!(find("a b").as_deref(), Some("x"));
        assert_eq!(find("missing"), None);
        assert_eq!(find(""), None);
        assert_eq!(find_param("", "x"), None);
        assert_eq!(find_param("x=a=b", "x"), Some(Ok(Cow::Borrowed("a=b"))));
        assert!(matches!(
            find_param(q, "roomId"),
            Some(Ok(Cow::Borrowed("1")))
        ));
    }

    #[test]
    fn find_param_never_aliases_undecodable_values_or_names() {
        assert_eq!(find_param("id=%FE", "id"), Some(Err(NotUtf8)));
        assert_eq!(find_param("id=%FF&id=ok", "id"), Some(Err(NotUtf8)));
        assert_eq!(find_param("%FF=1", "\u{FFFD}"), None);
        assert_eq!(
            find_param("%FF=1&%EF%BF%BD=2", "\u{FFFD}"),
            Some(Ok(Cow::Borrowed("2")))
        );
    }
}
