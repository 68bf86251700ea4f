//! The read path: bytes from a socket into the HTTP or WebSocket state machine, and their
//! events into the application.
//!
//! Reads go into the reactor's one shared buffer. Complete frames are handled in place; only
//! the tail of an incomplete frame (or request) is copied into the connection's own `rx`,
//! which is sized for exactly that frame and freed as soon as the frame completes.

use super::core::{flag, Phase};
use super::ctx::Ctx;
use super::token::ConnId;
use super::Reactor;
use crate::app::{Accept, App, Closed, Message};
use crate::close::CloseCode;
use crate::http::{self, HttpError, Parsed, Response};
use crate::wire::OpCode;
use crate::ws::{Decoded, Event, Kind, WsConn};
use std::io::{self, Read};

/// Smallest read into a connection's own buffer.
const MIN_RX_READ: usize = 4096;
/// What each frame costs against the per-turn read budget at least, in bytes: a flood of
/// empty frames costs a decode each, far more than its 6 bytes say.
pub(crate) const FRAME_COST: usize = 64;
/// Bytes a closing connection's peer may still send after the connection stopped reading
/// them (failed, or refused): read and dropped, to see its EOF (and so that a client that
/// writes a whole oversized request before reading gets to read its refusal). Beyond, the
/// socket is no longer read (the peer's sends stall on a full window) until the close
/// deadline drops it: a peer cannot have the loop copy and drop at full speed for the
/// whole close deadline.
pub(crate) const DRAIN_DISCARD: u32 = 1024 * 1024;

/// Outcome of one read attempt.
enum ReadOutcome {
    Data(usize),
    WouldBlock,
    Eof,
    Failed,
}

fn read_into(stream: &mut mio::net::TcpStream, buf: &mut [u8]) -> ReadOutcome {
    loop {
        match stream.read(buf) {
            Ok(0) => return ReadOutcome::Eof,
            Ok(n) => return ReadOutcome::Data(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::WouldBlock,
            Err(_) => return ReadOutcome::Failed,
        }
    }
}

/// What the HTTP phase did with the bytes it was shown.
enum HttpStep {
    /// This many bytes were one request; go on with the rest (maybe in another phase).
    Consumed(usize),
    /// The request is incomplete; `need` bytes in all would complete it, if known.
    NeedMore(Option<usize>),
    /// The connection is done reading (refused, or closed).
    Stop,
}

impl<A: App> Reactor<A> {
    /// Reads a connection until the socket is drained or its budget is spent, feeding the
    /// bytes to its state machine.
    pub(super) fn read_conn(&mut self, id: ConnId) {
        let mut shared = std::mem::take(&mut self.core.read_buf);
        let mut budget = self.core.config.read_budget;
        loop {
            let now = self.core.now;
            let Some(entry) = self.core.get_mut(id) else {
                break;
            };
            entry.flags &= !flag::READ_PENDING;
            if matches!(entry.phase, Phase::Draining) && entry.discarded >= DRAIN_DISCARD {
                break;
            }
            let mut rx = std::mem::take(&mut entry.rx);
            let (outcome, asked) = if rx.is_empty() {
                let asked = shared.len();
                (read_into(&mut entry.stream, &mut shared), asked)
            } else {
                let old = rx.len();
                let want = rx.capacity().saturating_sub(old).max(MIN_RX_READ);
                rx.resize(old + want, 0);
                let outcome = read_into(&mut entry.stream, &mut rx[old..]);
                rx.truncate(
                    old + if let ReadOutcome::Data(n) = outcome {
                        n
                    } else {
                        0
                    },
                );
                (outcome, want)
            };
            let n = match outcome {
                ReadOutcome::Data(n) => n,
                ReadOutcome::WouldBlock => {
                    entry.rx = rx;
                    break;
                }
                ReadOutcome::Eof if !entry.outbox.is_empty() => {
                    // The peer half-closed after its last bytes, and their answer (a 101, an
                    // echo, a Close) is still queued: write it, then close.
                    if let Some(state) = entry.state.take() {
                        self.core.closed.push_back((id, state, Closed::Dropped));
                    }
                    self.core.finish(id);
                    break;
                }
                ReadOutcome::Eof | ReadOutcome::Failed => {
                    self.core.remove(id, Closed::Dropped);
                    break;
                }
            };
            entry.last_rx = now;
            self.frames = 0;
            if rx.is_empty() {
                let (used, need) = self.process(id, &mut shared[..n]);
                if used < n {
                    if let Some(entry) = self.core.get_mut(id) {
                        let mut keep = Vec::with_capacity(need.unwrap_or(0).max(n - used));
                        keep.extend_from_slice(&shared[used..n]);
                        entry.rx = keep;
                    }
                }
            } else {
                let (used, need) = self.process(id, &mut rx);
                rx.drain(..used);
                if let Some(entry) = self.core.get_mut(id) {
                    if !rx.is_empty() {
                        if let Some(need) = need {
                            rx.reserve(need.saturating_sub(rx.len()));
                        }
                        entry.rx = rx;
                    }
                }
            }
            self.deliver_closed();
            budget = budget.saturating_sub(n.max(self.frames.saturating_mul(FRAME_COST)));
            let peer_closed = self
                .core
                .get(id)
                .is_some_and(|e| e.flags & flag::PEER_CLOSED != 0);
            if n < asked && !peer_closed {
                // A short read emptied the socket; epoll (edge-triggered) reports new data.
                // Not so a FIN that came with this data: then read on until EOF.
                break;
            }
            if budget == 0 {
                if let Some(entry) = self.core.get_mut(id) {
                    entry.flags |= flag::READ_PENDING;
                    self.core.pending_reads.push(id);
                }
                break;
            }
        }
        self.core.read_buf = shared;
        // A connection dropped by this read (EOF, reset) is told to the application now, so
        // that nothing is sent to it as if it were live.
        self.deliver_closed();
    }

    /// Feeds bytes to the connection's current phase until they run out or it stops
    /// reading. Returns how many were used and, when a frame or request is incomplete, how
    /// many bytes it needs in all.
    fn process(&mut self, id: ConnId, buf: &mut [u8]) -> (usize, Option<usize>) {
        let mut pos = 0;
        while pos < buf.len() {
            let max = self.core.config.max_payload;
            let Some(entry) = self.core.get_mut(id) else {
                return (buf.len(), None);
            };
            match &mut entry.phase {
                Phase::Draining => {
                    let dropped = u32::try_from(buf.len() - pos).unwrap_or(u32::MAX);
                    entry.discarded = entry.discarded.saturating_add(dropped);
                    return (buf.len(), None);
                }
                Phase::Http => match self.http_input(id, &mut buf[pos..]) {
                    HttpStep::Consumed(n) => pos += n,
                    HttpStep::NeedMore(need) => return (pos, need),
                    HttpStep::Stop => return (buf.len(), None),
                },
                Phase::Ws(ws) => match ws.decode(&mut buf[pos..], max) {
                    Ok(Decoded::NeedMore { frame_len }) => return (pos, frame_len),
                    Ok(Decoded::Frame { consumed, event }) => {
                        pos += consumed;
                        self.frames += 1;
                        self.ws_event(id, event);
                    }
                    Err(e) => {
                        log::debug!("{id}: failing connection: {e}");
                        self.core.close_as(
                            id,
                            e.close_code(),
                            e.reason(),
                            Closed::Failed(e.close_code()),
                        );
                        return (buf.len(), None);
                    }
                },
            }
        }
        (pos, None)
    }

    /// Acts on one decoded frame.
    fn ws_event(&mut self, id: ConnId, event: Event<'_>) {
        let deliverable = self.core.get(id).is_some_and(|e| e.state.is_some());
        match event {
            Event::Text(text) if deliverable => self.deliver(id, Message::Text(text)),
            Event::Binary(bytes) if deliverable => self.deliver(id, Message::Binary(bytes)),
            Event::Assembled(kind) => {
                let data = match self.core.get_mut(id).map(|e| &mut e.phase) {
                    Some(Phase::Ws(ws)) => ws.take_message(),
                    _ => return,
                };
                if !deliverable {
                    return;
                }
                match kind {
                    Kind::Binary => self.deliver(id, Message::Binary(&data)),
                    // Checked as it arrived; a failure here would be a bug, answered as 1007.
                    Kind::Text => match std::str::from_utf8(&data) {
                        Ok(text) => self.deliver(id, Message::Text(text)),
                        Err(_) => self.core.close_as(
                            id,
                            CloseCode::INVALID_PAYLOAD,
                            "invalid UTF-8 in text",
                            Closed::Failed(CloseCode::INVALID_PAYLOAD),
                        ),
                    },
                }
            }
            Event::Ping(payload) if deliverable => {
                // A pong is output like any other and counts against the outbox cap: a peer
                // that pings without reading is a slow reader (1008), not a memory leak.
                let len = payload.len() + 2;
                let _ = self.core.send_with(id, len, |outbox, pool| {
                    outbox.push_frame(pool, OpCode::Pong, payload)
                });
            }
            Event::Pong(_) => {
                if let Some(entry) = self.core.get_mut(id) {
                    entry.flags &= !flag::PINGED;
                }
            }
            Event::Close { code, reply, .. } => {
                if reply {
                    let echo = code.map(|c| c.0.to_be_bytes());
                    self.core.push_control(
                        id,
                        OpCode::Close,
                        echo.as_ref().map_or(&[][..], |b| &b[..]),
                    );
                    if let Some(entry) = self.core.get_mut(id) {
                        if let Some(state) = entry.state.take() {
                            self.core
                                .closed
                                .push_back((id, state, Closed::ByPeer(code)));
                        }
                    }
                }
                // Both Close frames are out: the handshake is complete.
                self.core.finish(id);
            }
            // Fragments, and data arriving while our Close is on its way, are dropped.
            _ => {}
        }
    }

    /// Calls `on_message`, then delivers any `on_close` it caused.
    fn deliver(&mut self, id: ConnId, message: Message<'_>) {
        let mut ctx = Ctx::new(&mut self.core);
        self.app.on_message(&mut ctx, id, message);
        self.deliver_closed();
    }

    /// Calls `on_close` for every connection that ended, including ones ended from inside
    /// an `on_close`.
    pub(super) fn deliver_closed(&mut self) {
        while let Some((id, state, why)) = self.core.closed.pop_front() {
            let mut ctx = Ctx::new(&mut self.core);
            self.app.on_close(&mut ctx, id, state, why);
        }
    }

    /// Answers an HTTP request with `response` and stops reading (`Connection: close`).
    fn refuse(&mut self, id: ConnId, response: &Response) {
        let mut out = Vec::with_capacity(128 + response.body.len());
        http::write_response(&mut out, response, false);
        self.core.push_bytes(id, &out);
        self.core.drain(id);
    }

    fn refuse_error(&mut self, id: ConnId, err: &HttpError) {
        log::debug!("{id}: refusing request: {err}");
        self.refuse(id, &Response::from_error(err));
    }

    /// Handles the request at the start of `buf`: an upgrade or a plain request.
    fn http_input(&mut self, id: ConnId, buf: &mut [u8]) -> HttpStep {
        let mut headers = [httparse::EMPTY_HEADER; http::MAX_HEADERS];
        let (request, head_len) = match http::parse_request(buf, &mut headers) {
            Err(e) => {
                self.refuse_error(id, &e);
                return HttpStep::Stop;
            }
            Ok(Parsed::Partial) => {
                if buf.len() >= self.core.config.max_request_head {
                    self.refuse_error(id, &HttpError::HeadersTooLarge);
                    return HttpStep::Stop;
                }
                return HttpStep::NeedMore(None);
            }
            Ok(Parsed::Complete { request, head_len }) => (request, head_len),
        };
        if head_len > self.core.config.max_request_head {
            self.refuse_error(id, &HttpError::HeadersTooLarge);
            return HttpStep::Stop;
        }
        if !request.attempts_websocket() {
            let body_len = match request.content_length() {
                Ok(n) if n > self.core.config.max_http_body => {
                    self.refuse_error(id, &HttpError::PayloadTooLarge);
                    return HttpStep::Stop;
                }
                Ok(n) => n,
                Err(e) => {
                    self.refuse_error(id, &e);
                    return HttpStep::Stop;
                }
            };
            let total = head_len + body_len;
            if buf.len() < total {
                return HttpStep::NeedMore(Some(total));
            }
            let keep_alive = request.keep_alive() && self.may_keep_alive(id);
            let response = {
                let mut ctx = Ctx::new(&mut self.core);
                self.app
                    .on_http(&mut ctx, id, &request, &buf[head_len..total])
            };
            self.deliver_closed();
            let mut out = Vec::with_capacity(128 + response.body.len());
            http::write_response(&mut out, &response, keep_alive);
            self.core.push_bytes(id, &out);
            if !keep_alive {
                self.core.drain(id);
                return HttpStep::Stop;
            }
            // Pipelined requests from a client that does not read its responses: past the
            // outbox cap, stop answering and end the connection once the backlog is out.
            if self.core.backlog_over(id, self.core.config.outbox_limit) {
                self.core.drain(id);
                return HttpStep::Stop;
            }
            // The next request is due within the handshake timeout, and within the
            // connection's lifetime (past it, an idle connection is closed without a word).
            let born = self.core.get(id).map_or(self.core.now, |e| e.born);
            let config = &self.core.config;
            let at = (self.core.now + config.handshake_timeout)
                .min(born + config.http_connection_lifetime);
            self.core.arm(id, at);
            return HttpStep::Consumed(total);
        }
        let upgrade = match http::validate_upgrade(&request) {
            Ok(upgrade) => upgrade,
            Err(e) => {
                self.refuse_error(id, &e);
                return HttpStep::Stop;
            }
        };
        if self.core.shutting_down || self.core.ws_count >= self.core.config.max_connections {
            self.refuse(id, &Response::text(503, "server at capacity\n"));
            return HttpStep::Stop;
        }
        let accept = {
            let mut ctx = Ctx::new(&mut self.core);
            self.app.on_upgrade(&mut ctx, id, &request)
        };
        self.deliver_closed();
        #[allow(unused_mut)]
        let (state, mut extra) = match accept {
            Accept::Yes { state, headers } => (state, headers),
            Accept::No(response) => {
                self.refuse(id, &response);
                return HttpStep::Stop;
            }
        };
        #[cfg(feature = "deflate")]
        let deflate = super::compress::negotiate(&self.core.config, &request, &mut extra);
        let mut out = Vec::with_capacity(160);
        http::write_switching_protocols(&mut out, &upgrade.accept_key(), &extra);
        self.core.push_bytes(id, &out);
        #[allow(unused_mut)]
        let mut ws = WsConn::with_max_fragments(self.core.config.max_fragments);
        #[cfg(feature = "deflate")]
        if let Some(deflate) = deflate {
            ws.enable_deflate(deflate);
        }
        let Some(entry) = self.core.get_mut(id) else {
            return HttpStep::Stop;
        };
        entry.phase = Phase::Ws(ws);
        entry.state = Some(state);
        entry.flags |= flag::UPGRADED;
        self.core.ws_count += 1;
        self.arm_idle(id);
        let mut ctx = Ctx::new(&mut self.core);
        self.app.on_open(&mut ctx, id);
        self.deliver_closed();
        HttpStep::Consumed(head_len)
    }

    /// Counts a plain request on `id` and says whether its answer may keep the connection
    /// open: not while shutting down, not for the last request a connection may make, not
    /// past the connection's lifetime.
    fn may_keep_alive(&mut self, id: ConnId) -> bool {
        let (now, shutting_down) = (self.core.now, self.core.shutting_down);
        let max = self.core.config.max_requests_per_connection;
        let lifetime = self.core.config.http_connection_lifetime;
        let Some(entry) = self.core.get_mut(id) else {
            return false;
        };
        entry.requests = entry.requests.saturating_add(1);
        !shutting_down && entry.requests < max && now < entry.born + lifetime
    }

    /// After the upgrade: no deadline, or the idle/ping deadline when configured.
    pub(super) fn arm_idle(&mut self, id: ConnId) {
        let config = &self.core.config;
        let next = match (config.ping_interval, config.idle_timeout) {
            (Some(ping), Some(_)) => Some(ping),
            (None, Some(idle)) => Some(idle),
            _ => None,
        };
        match next {
            Some(after) => {
                let base = self.core.get(id).map_or(self.core.now, |e| e.last_rx);
                self.core.arm(id, base + after);
            }
            None => {
                if let Some(t) = self.core.get_mut(id).and_then(|e| e.timer.take()) {
                    self.core.wheel.cancel(t);
                }
            }
        }
    }
}
