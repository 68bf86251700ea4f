//! Sending with permessage-deflate: the hooks [`Ctx`](super::Ctx)'s sends call when a
//! connection negotiated compression (the `deflate` cargo feature).
//!
//! Without server context takeover (the default) one deflater per window size serves
//! the whole reactor, and a broadcast is compressed once per window size, whatever the
//! number of members: the compressed frame is shared like any [`SharedFrame`]. With it,
//! each connection has its own deflater (about 260 KiB) and every message, broadcasts
//! included, is compressed once per member.
//!
//! What goes out uncompressed (RSV1 clear, as RFC 7692 allows): messages under
//! `DeflateConfig::min_size`, control frames, messages that would not shrink (without
//! context takeover), and frames sent with a per-connection prefix
//! ([`Ctx::send_prefixed`](super::Ctx::send_prefixed), the gateways' dispatches).

use super::core::{Core, Phase, SendError};
use super::token::ConnId;
use crate::app::App;
use crate::close::CloseCode;
use crate::wire::{OpCode, MAX_HEADER_LEN};
use crate::ws::deflate::{DeflateConn, Deflater};
use crate::ws::SharedFrame;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sizes_index_the_shared_deflaters() {
        assert_eq!(window_index(8), 0);
        assert_eq!(window_index(9), 0);
        assert_eq!(window_index(15), 6);
    }
}
