//! Sending with permessage-deflate: the hooks [`Ctx`](super::Ctx)'s sends call when a
//! connection negotiated compression (the `deflate` cargo feature).
//!
//! Without server context takeover (the default) one deflater per window size serves
//! the whole reactor, and a broadcast is compressed once per window size, whatever the
//! number of members: the compressed frame is shared like any [`SharedFrame`]. With it,
//! each connection has its own deflater (371 KiB at 15 bits) and every message, broadcasts
//! included, is compressed once per member.
//!
//! A frame with a per-connection prefix and a shared body
//! ([`Ctx::send_prefixed`](super::Ctx::send_prefixed), the gateways' dispatches with their
//! sequence numbers) is sent, without context takeover, as a stored (uncompressed) deflate
//! block holding the prefix followed by the body compressed on its own: the body is
//! compressed once for all the members it goes to in a row, each member costing 5 bytes
//! more than its prefix.
//!
//! What goes out uncompressed (RSV1 clear, as RFC 7692 allows): messages under
//! `DeflateConfig::min_size`, control frames, and messages that would not shrink (without
//! context takeover).

use super::app::App;
use super::core::{Core, SendError};
use super::entry::Phase;
use super::token::ConnId;
use crate::close::CloseCode;
use crate::wire::{OpCode, MAX_HEADER_LEN};
use crate::ws::deflate::{stored_block, DeflateConn, Deflater};
use crate::ws::{SharedFrame, SharedPayload};
use std::rc::Rc;

/// Compression buffer kept between messages up to this size (a bigger one is freed).
const SCRATCH_KEEP: usize = 64 * 1024;

/// The reactor's shared compression state.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// One deflater per window size (9-15) for connections without server context
    /// takeover, made on first use.
    deflaters: [Option<Deflater>; 7],
    /// Where a message is compressed before it is queued.
    scratch: Vec<u8>,
    /// The last prefixed body compressed (a gateway delivers one body to every member
    /// in a row): compressed once, shared by every member with the same window.
    last_body: Option<CompressedBody>,
}

/// A shared body and its compressed form for one window size.
#[derive(Debug)]
struct CompressedBody {
    /// The body (held, so that its address cannot be reused by another).
    key: Rc<[u8]>,
    bits: u8,
    /// `None`: it does not shrink; sent plain.
    compressed: Option<Rc<[u8]>>,
}

/// A broadcast frame compressed at most once per window size: `None` not yet tried,
/// `Some(None)` sent uncompressed (it would not shrink).
#[derive(Debug, Default)]
pub(crate) struct BroadcastCache {
    frames: [Option<Option<SharedFrame>>; 7],
}

/// How one message is compressed for one connection.
enum Compressed {
    /// Not negotiated, too small, or not worth it: send it as usual.
    Plain,
    /// In `Shared::scratch`.
    Ready,
    /// The connection's own deflater failed: it has been closed.
    Failed,
}

/// The upgrade's hook: the permessage-deflate state for a connection whose request
/// carries an acceptable offer (and the answer appended to `headers`), if the server
/// enables compression.
pub(crate) fn negotiate(
    config: &crate::Config,
    request: &crate::http::Request<'_, '_>,
    headers: &mut Vec<(String, String)>,
) -> Option<DeflateConn> {
    let deflate = config.deflate.as_ref()?;
    let params = crate::http::negotiate_deflate(request, deflate)?;
    headers.push(("Sec-WebSocket-Extensions".to_owned(), params.response()));
    Some(DeflateConn::new(params, deflate.level))
}

fn window_index(bits: u8) -> usize {
    usize::from(bits.clamp(9, 15) - 9)
}

impl<A: App> Core<A> {
    /// Compresses `payload` for `id` into the shared scratch buffer.
    fn compress_for(&mut self, id: ConnId, payload: &[u8]) -> Compressed {
        let Some(config) = self.config.deflate.as_ref() else {
            return Compressed::Plain;
        };
        let (level, min_size) = (config.level, config.min_size);
        if payload.len() < min_size {
            return Compressed::Plain;
        }
        let Some(entry) = self
            .conns
            .get_mut(id.index())
            .filter(|e| e.generation == id.generation() && e.state.is_some())
        else {
            return Compressed::Plain;
        };
        let Phase::Ws(ws) = &mut entry.phase else {
            return Compressed::Plain;
        };
        let Some(d) = ws.deflate_mut() else {
            return Compressed::Plain;
        };
        let bits = d.params().server_max_window_bits;
        let scratch = &mut self.deflate.scratch;
        if let Some(own) = d.own_deflater() {
            if own.compress(payload, scratch).is_ok() {
                return Compressed::Ready;
            }
            log::warn!("{id}: deflate failed");
            self.close(id, CloseCode::INTERNAL_ERROR, "compression failed");
            return Compressed::Failed;
        }
        let slot = &mut self.deflate.deflaters[window_index(bits)];
        let deflater = slot.get_or_insert_with(|| Deflater::new(level, bits, false));
        if deflater.compress(payload, scratch).is_err() {
            *slot = None;
            return Compressed::Plain;
        }
        if scratch.len() >= payload.len() {
            return Compressed::Plain;
        }
        Compressed::Ready
    }

    /// Sends one message compressed when `id` negotiated permessage-deflate; `None` when
    /// it goes out as usual instead.
    pub(crate) fn send_deflated(
        &mut self,
        id: ConnId,
        opcode: OpCode,
        payload: &[u8],
    ) -> Option<Result<(), SendError>> {
        match self.compress_for(id, payload) {
            Compressed::Plain => None,
            Compressed::Failed => Some(Err(SendError::Closing)),
            Compressed::Ready => {
                let scratch = std::mem::take(&mut self.deflate.scratch);
                let len = scratch.len() + MAX_HEADER_LEN;
                let sent = self.send_with(id, len, |outbox, pool| {
                    outbox.push_compressed(pool, opcode, &scratch)
                });
                if scratch.capacity() <= SCRATCH_KEEP {
                    self.deflate.scratch = scratch;
                }
                Some(sent)
            }
        }
    }

    /// Sends a shared frame compressed when `id` negotiated permessage-deflate: without
    /// context takeover, the compressed frame is made once per `cache` and shared.
    pub(crate) fn send_shared_deflated(
        &mut self,
        id: ConnId,
        frame: &SharedFrame,
        cache: &mut BroadcastCache,
    ) -> Option<Result<(), SendError>> {
        let deflate = self.config.deflate.as_ref()?;
        let header = crate::wire::header::parse(frame.bytes(), usize::MAX).ok()??;
        if header.opcode.is_control() || header.payload_len < deflate.min_size {
            return None;
        }
        let payload = frame.bytes().get(header.header_len..)?;
        let entry = self.get_mut(id)?;
        let Phase::Ws(ws) = &mut entry.phase else {
            return None;
        };
        let d = ws.deflate_mut()?;
        if !d.params().server_no_context_takeover {
            // Context takeover: this member's own deflater, once per member.
            return self.send_deflated(id, header.opcode, payload);
        }
        let index = window_index(d.params().server_max_window_bits);
        if cache.frames[index].is_none() {
            let made = match self.compress_for(id, payload) {
                Compressed::Ready => Some(SharedFrame::compressed(
                    header.opcode,
                    &self.deflate.scratch,
                )),
                Compressed::Plain | Compressed::Failed => None,
            };
            cache.frames[index] = Some(made);
        }
        let compressed = cache.frames[index].clone()??;
        Some(self.send_with(id, compressed.len(), |outbox, _| {
            outbox.push_shared(&compressed)
        }))
    }
}

impl<A: App> Core<A> {
    /// Sends `prefix` + `body` compressed when `id` negotiated permessage-deflate (see the
    /// module notes); `None` when it goes out as usual instead.
    pub(crate) fn send_prefixed_deflated(
        &mut self,
        id: ConnId,
        prefix: &[u8],
        body: &SharedPayload,
    ) -> Option<Result<(), SendError>> {
        let deflate = self.config.deflate.as_ref()?;
        let level = deflate.level;
        if prefix.len() + body.len() < deflate.min_size {
            return None;
        }
        let entry = self
            .conns
            .get_mut(id.index())
            .filter(|e| e.generation == id.generation())?;
        let Phase::Ws(ws) = &mut entry.phase else {
            return None;
        };
        let d = ws.deflate_mut()?;
        let bits = d.params().server_max_window_bits;
        // Context takeover: the whole message through this member's deflater.
        let own = d
            .own_deflater()
            .map(|own| own.compress_parts(&[prefix, body.bytes()], &mut self.deflate.scratch));
        match own {
            Some(Ok(())) => {
                let scratch = std::mem::take(&mut self.deflate.scratch);
                let sent = self.send_with(id, scratch.len() + MAX_HEADER_LEN, |outbox, pool| {
                    outbox.push_compressed(pool, OpCode::Text, &scratch)
                });
                if scratch.capacity() <= SCRATCH_KEEP {
                    self.deflate.scratch = scratch;
                }
                return Some(sent);
            }
            Some(Err(_)) => {
                self.close(id, CloseCode::INTERNAL_ERROR, "compression failed");
                return Some(Err(SendError::Closing));
            }
            None => {}
        }
        let tail = self.compressed_body(body, bits, level)?;
        let mut head = [0u8; 128];
        let n = match prefix.is_empty() {
            true => 0,
            false => stored_block(&mut head, prefix)?,
        };
        let len = n + tail.len() + MAX_HEADER_LEN;
        Some(self.send_with(id, len, |outbox, pool| {
            outbox.push_prefixed_with(pool, true, OpCode::Text, &head[..n], &tail)
        }))
    }

    /// `body` compressed alone with a `bits` window, from the one-entry cache when it was
    /// the last body compressed; `None` when it does not shrink.
    fn compressed_body(&mut self, body: &SharedPayload, bits: u8, level: u32) -> Option<Rc<[u8]>> {
        let shared = &mut self.deflate;
        if let Some(c) = &shared.last_body {
            if Rc::ptr_eq(&c.key, body.rc()) && c.bits == bits {
                return c.compressed.clone();
            }
        }
        let slot = &mut shared.deflaters[window_index(bits)];
        let deflater = slot.get_or_insert_with(|| Deflater::new(level, bits, false));
        let compressed = match deflater.compress(body.bytes(), &mut shared.scratch) {
            Ok(()) if shared.scratch.len() < body.len() => Some(Rc::from(&shared.scratch[..])),
            Ok(()) => None,
            Err(_) => {
                *slot = None;
                None
            }
        };
        shared.last_body = Some(CompressedBody {
            key: Rc::clone(body.rc()),
            bits,
            compressed: compressed.clone(),
        });
        compressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_prefix_then_a_body_compressed_alone_inflate_as_one_message() {
        let body = b",\"t\":\"MESSAGE_CREATE\",\"d\":{\"content\":\"hello hello hello\"}}";
        let mut tail = Vec::new();
        Deflater::new(6, 15, false)
            .compress(body, &mut tail)
            .unwrap();
        let mut wire = [0u8; 64];
        let n = stored_block(&mut wire, b"{\"op\":0,\"s\":42").unwrap();
        let mut message = wire[..n].to_vec();
        message.extend_from_slice(&tail);
        let mut out = Vec::new();
        crate::ws::deflate::Inflater::new(15, false)
            .inflate(&message, true, &mut out, 4096)
            .unwrap();
        let mut expect = b"{\"op\":0,\"s\":42".to_vec();
        expect.extend_from_slice(body);
        assert_eq!(out, expect);
    }

    #[test]
    fn window_sizes_index_the_shared_deflaters() {
        assert_eq!(window_index(8), 0);
        assert_eq!(window_index(9), 0);
        assert_eq!(window_index(15), 6);
    }
}
