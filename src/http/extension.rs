//! The permessage-deflate offer and answer (RFC 7692 §5, §7.1), sans-IO.
//!
//! [`negotiate_deflate`] reads every `Sec-WebSocket-Extensions` header of an upgrade
//! request and picks the first `permessage-deflate` offer the server can accept under its
//! [`DeflateConfig`]; [`DeflateParams::response`] is the header value answering it.
//!
//! Rules, for the client's eyes:
//! - An offer with an unknown parameter, a parameter given twice, a value where none is
//!   allowed, or a window size outside 8-15 (or with a leading zero) is declined; the next
//!   offer is tried. Other extensions are ignored.
//! - A header that does not parse (RFC 6455 §9.1 grammar: tokens, `;` parameters, `=`
//!   token or quoted-string values, `,` between extensions) declines every offer: the
//!   connection is upgraded without compression, never refused (a client that cannot work
//!   without it closes with 1010 itself).
//! - The server always answers `server_no_context_takeover` and `client_no_context_takeover`
//!   unless [`DeflateConfig`] allows context takeover (and the client did not ask for none).
//! - `server_max_window_bits=N` offered: the server compresses with at most
//!   `min(N, config)` bits and says so. N = 8 is answered 8 but compressed with zlib's 9-bit
//!   window, whose matches never reach back more than 250 bytes (zlib cannot compress with
//!   an 8-bit window; this is what zlib-based servers do).
//! - `client_max_window_bits` offered (with or without a value): answered with
//!   `min(value or 15, config)`; not offered: the client may use 15 bits.

use super::request::{trim_ows, Request};

/// The server's permessage-deflate settings (`Config::deflate`; off unless set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Keep the compressor's window between messages sent (default false: each message is
    /// compressed alone, so one compression serves a whole broadcast and a connection holds
    /// no compressor; true costs a compressor per connection: 371 KiB with a 15-bit
    /// window, 245 KiB with 9, measured with zlib-rs). Ignored when the client offers
    /// `server_no_context_takeover`.
    pub server_context_takeover: bool,
    /// Let the client keep its window between messages (default false: the server asks
    /// for `client_no_context_takeover`, and holds no inflate state between messages; true
    /// costs an inflater per connection, 47 KiB whatever the window with zlib-rs).
    pub client_context_takeover: bool,
    /// Largest window the server compresses with, 9-15 (default 15).
    pub server_max_window_bits: u8,
    /// Largest window the client is asked to compress with, 9-15 (default 15), when it
    /// offers `client_max_window_bits`.
    pub client_max_window_bits: u8,
    /// Compression level, 0-9 (default 6, zlib's default).
    pub level: u32,
    /// Messages shorter than this are sent uncompressed (default 32 bytes).
    pub min_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_context_takeover: false,
            client_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 6,
            min_size: 32,
        }
    }
}

/// What one connection agreed to (the answer to its accepted offer).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server compresses each message alone.
    pub server_no_context_takeover: bool,
    /// The client compresses each message alone.
    pub client_no_context_takeover: bool,
    /// The server's window (8-15).
    pub server_max_window_bits: u8,
    /// The client's window (8-15).
    pub client_max_window_bits: u8,
    /// Whether `server_max_window_bits` goes in the answer (only when offered).
    pub answer_server_bits: bool,
    /// Whether `client_max_window_bits` goes in the answer (only when offered).
    pub answer_client_bits: bool,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value answering the accepted offer.
    pub fn response(&self) -> String {
        let mut out = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            out.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            out.push_str("; client_no_context_takeover");
        }
        if self.answer_server_bits {
            out.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if self.answer_client_bits {
            out.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        out
    }
}

/// The first acceptable permessage-deflate offer of `request`, answered under `config`.
pub fn negotiate_deflate(
    request: &Request<'_, '_>,
    config: &DeflateConfig,
) -> Option<DeflateParams> {
    let mut found = None;
    for value in request.header_values("sec-websocket-extensions") {
        let Ok(text) = std::str::from_utf8(trim_ows(value)) else {
            return None;
        };
        let offers = parse_extensions(text)?;
        if found.is_none() {
            found = offers
                .into_iter()
                .find_map(|offer| accept_offer(&offer, config));
        }
    }
    found
}

/// One extension of a `Sec-WebSocket-Extensions` list: its name and parameters.
#[derive(Debug, PartialEq, Eq)]
struct Offer<'a> {
    name: &'a str,
    params: Vec<(&'a str, Option<String>)>,
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A tiny cursor over the header value.
struct Cursor<'a> {
    s: &'a str,
}

impl<'a> Cursor<'a> {
    fn skip_ows(&mut self) {
        self.s = self.s.trim_start_matches([' ', '\t']);
    }
    fn eat(&mut self, c: char) -> bool {
        self.skip_ows();
        match self.s.strip_prefix(c) {
            Some(rest) => {
                self.s = rest;
                true
            }
            None => false,
        }
    }
    fn token(&mut self) -> Option<&'a str> {
        self.skip_ows();
        let end = self.s.find(|c| !is_tchar(c)).unwrap_or(self.s.len());
        let (token, rest) = self.s.split_at(end);
        self.s = rest;
        (!token.is_empty()).then_some(token)
    }
    fn quoted(&mut self) -> Option<String> {
        let mut out = String::new();
        let mut chars = self.s.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.s = &self.s[i + 1..];
                    return Some(out);
                }
                '\\' => out.push(chars.next()?.1),
                c if c.is_ascii_control() && c != '\t' => return None,
                c => out.push(c),
            }
        }
        None
    }
    fn value(&mut self) -> Option<String> {
        self.skip_ows();
        match self.s.strip_prefix('"') {
            Some(rest) => {
                self.s = rest;
                self.quoted()
            }
            None => self.token().map(str::to_owned),
        }
    }
}

/// Parses a `Sec-WebSocket-Extensions` value; `None` if it breaks the grammar.
fn parse_extensions(text: &str) -> Option<Vec<Offer<'_>>> {
    let mut cur = Cursor { s: text };
    let mut offers = Vec::new();
    loop {
        let name = cur.token()?;
        let mut params = Vec::new();
        while cur.eat(';') {
            let key = cur.token()?;
            let value = if cur.eat('=') {
                Some(cur.value()?)
            } else {
                None
            };
            params.push((key, value));
        }
        offers.push(Offer { name, params });
        cur.skip_ows();
        if cur.s.is_empty() {
            return Some(offers);
        }
        if !cur.eat(',') {
            return None;
        }
    }
}

/// A window size parameter's value: 8-15, decimal, no leading zero.
fn window_bits(value: &str) -> Option<u8> {
    match value.as_bytes() {
        [b'8'] => Some(8),
        [b'9'] => Some(9),
        [b'1', d @ b'0'..=b'5'] => Some(10 + (d - b'0')),
        _ => None,
    }
}

/// The answer to one offer, or `None` to decline it.
fn accept_offer(offer: &Offer<'_>, config: &DeflateConfig) -> Option<DeflateParams> {
    if !offer.name.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut server_nct = None;
    let mut client_nct = None;
    let mut server_bits: Option<u8> = None;
    let mut client_bits: Option<Option<u8>> = None;
    for (key, value) in &offer.params {
        match (key.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if server_nct.is_none() => server_nct = Some(()),
            ("client_no_context_takeover", None) if client_nct.is_none() => client_nct = Some(()),
            ("server_max_window_bits", Some(v)) if server_bits.is_none() => {
                server_bits = Some(window_bits(v)?)
            }
            ("client_max_window_bits", None) if client_bits.is_none() => client_bits = Some(None),
            ("client_max_window_bits", Some(v)) if client_bits.is_none() => {
                client_bits = Some(Some(window_bits(v)?))
            }
            _ => return None,
        }
    }
    let own_server = config.server_max_window_bits.clamp(9, 15);
    let own_client = config.client_max_window_bits.clamp(9, 15);
    Some(DeflateParams {
        server_no_context_takeover: server_nct.is_some() || !config.server_context_takeover,
        client_no_context_takeover: client_nct.is_some() || !config.client_context_takeover,
        server_max_window_bits: server_bits.map_or(own_server, |b| b.min(own_server)),
        client_max_window_bits: match client_bits {
            Some(offered) => offered.unwrap_or(15).min(own_client),
            None => 15,
        },
        answer_server_bits: server_bits.is_some(),
        answer_client_bits: client_bits.is_some(),
    })
}

#[cfg(test)]
#[path = "extension_tests.rs"]
mod tests;
