//! Query-string lookup and `application/x-www-form-urlencoded` style percent-decoding.
//!
//! Decoding never fails: an invalid escape (`%` not followed by two hex digits) is kept
//! literally and decoded bytes that are not UTF-8 are replaced lossily. When there is nothing
//! to decode the input is returned borrowed.

use std::borrow::Cow;

/// Percent-decodes `input`, also turning `+` into a space (form encoding, as used in query
/// strings). Invalid escapes are kept literally, non-UTF-8 results are decoded lossily
/// (U+FFFD), and the input is borrowed unchanged when it contains neither `%` nor `+`.
pub fn percent_decode(input: &str) -> Cow<'_, str> {
    let bytes = input.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(input);
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
    Cow::Owned(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
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
/// parameter without `=` has the empty value; names are compared after decoding.
pub(crate) fn find_param<'b>(query: &'b str, name: &str) -> Option<Cow<'b, str>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| percent_decode(key) == name)
        .map(|(_, value)| percent_decode(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_plain_is_borrowed() {
        assert!(matches!(
            percent_decode("abc-._~"),
            Cow::Borrowed("abc-._~")
        ));
        assert!(matches!(percent_decode(""), Cow::Borrowed("")));
    }

    #[test]
    fn decode_escapes_and_plus() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%2B%2b"), "++");
        assert_eq!(percent_decode("%E2%9C%93"), "\u{2713}");
        assert_eq!(percent_decode("%41%42%43"), "ABC");
    }

    #[test]
    fn decode_invalid_escapes_kept_literally() {
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%%41"), "%A");
        assert_eq!(percent_decode("%4g+"), "%4g ");
    }

    #[test]
    fn decode_non_utf8_is_lossy() {
        assert_eq!(percent_decode("a%FFb"), "a\u{FFFD}b");
        assert_eq!(percent_decode("%C3"), "\u{FFFD}");
    }

    #[test]
    fn find_param_cases() {
        let q = "roomId=1&name=J%C3%BCrgen+K&empty=&flag&&roomId=2&a%20b=x";
        assert_eq!(find_param(q, "roomId").as_deref(), Some("1"));
        assert_eq!(find_param(q, "name").as_deref(), Some("Jürgen K"));
        assert_eq!(find_param(q, "empty").as_deref(), Some(""));
        assert_eq!(find_param(q, "flag").as_deref(), Some(""));
        assert_eq!(find_param(q, "a b").as_deref(), Some("x"));
        assert_eq!(find_param(q, "missing"), None);
        assert_eq!(find_param(q, ""), None);
        assert_eq!(find_param("", "x"), None);
        assert_eq!(find_param("x=a=b", "x").as_deref(), Some("a=b"));
        assert!(matches!(find_param(q, "roomId"), Some(Cow::Borrowed("1"))));
    }
}
