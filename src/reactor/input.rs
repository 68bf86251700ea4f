//! The read path: bytes from a socket into the HTTP or WebSocket state machine, and their
//! events into the application.
//!
//! Reads go into the reactor's one shared buffer. Complete frames are handled in place; only
//! the tail of an incomplete frame (or request) is copied into the connection's own `rx`,
//! which is sized for exactly that frame and freed as soon as the frame completes.

use super::app::{Accept, App, Closed, Message};
use super::core::Ended;
use super::ctx::Ctx;
use super::entry::Phase;
use super::token::ConnId;
use super::Reactor;
use crate::close::CloseCode;
use crate::http::{self, HttpError, Parsed, Request, Response};
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
#[derive(Copy, Clone)]
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

/// One read of a socket and how many bytes it asked for (fewer read: the socket is empty).
struct ReadStep {
    outcome: ReadOutcome,
    asked: usize,
}

/// Reads a connection's socket: into the shared buffer when it holds no partial frame
/// (`rx` empty), else onto the end of its partial frame in `rx`.
fn read_step(stream: &mut mio::net::TcpStream, rx: &mut Vec<u8>, shared: &mut [u8]) -> ReadStep {
    if rx.is_empty() {
        return ReadStep {
            outcome: read_into(stream, shared),
            asked: shared.len(),
        };
    }
    let old = rx.len();
    let want = rx.capacity().saturating_sub(old).max(MIN_RX_READ);
    rx.resize(old + want, 0);
    let outcome = read_into(stream, &mut rx[old..]);
    let got = if let ReadOutcome::Data(n) = outcome {
        n
    } else {
        0
    };
    rx.truncate(old + got);
    ReadStep {
        outcome,
        asked: want,
    }
}

/// What [`Reactor::process`] did with the bytes it was given.
struct Processed {
    /// Bytes used (the rest is the start of an incomplete frame or request).
    used: usize,
    /// When a frame or request is incomplete: the bytes it needs in all, if known.
    need: Option<usize>,
}

impl Processed {
    /// Every byte of `buf` used (or dropped: the connection reads no more).
    fn all(buf: &[u8]) -> Processed {
        Processed {
            used: buf.len(),
            need: None,
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
            entry.read_pending = false;
            if matches!(&entry.phase, Phase::Draining(d) if d.discarded >= DRAIN_DISCARD) {
                break;
            }
            let mut rx = std::mem::take(&mut entry.rx);
            let step = read_step(&mut entry.stream, &mut rx, &mut shared);
            let n = match step.outcome {
                ReadOutcome::Data(n) => n,
                ReadOutcome::WouldBlock => {
                    entry.rx = rx;
                    break;
                }
                ReadOutcome::Eof | ReadOutcome::Failed => {
                    self.read_ended(id, step.outcome);
                    break;
                }
            };
            entry.last_rx = now;
            self.frames = 0;
            self.feed(id, rx, &mut shared, n);
            self.deliver_closed();
            budget = budget.saturating_sub(n.max(self.frames.saturating_mul(FRAME_COST)));
            let peer_closed = self.core.get(id).is_some_and(|e| e.peer_closed);
            if n < step.asked && !peer_closed {
                // A short read emptied the socket; epoll (edge-triggered) reports new data.
                // Not so a FIN that came with this data: then read on until EOF.
                break;
            }
            if budget == 0 {
                if let Some(entry) = self.core.get_mut(id) {
                    entry.read_pending = true;
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

    /// A read found EOF or failed.
    fn read_ended(&mut self, id: ConnId, outcome: ReadOutcome) {
        let Some(entry) = self.core.get_mut(id) else {
            return;
        };
        if matches!(outcome, ReadOutcome::Eof) && !entry.outbox.is_empty() {
            // The peer half-closed after its last bytes, and their answer (a 101, an echo,
            // a Close) is still queued: write it, then close.
            if let Some(state) = entry.state.take() {
                let why = Closed::Dropped;
                self.core.closed.push_back(Ended { id, state, why });
            }
            self.core.finish(id);
        } else {
            self.core.remove(id, Closed::Dropped);
        }
    }

    /// Feeds the `n` bytes just read to the state machine: the start of `shared` when the
    /// connection held no partial frame, else `rx` (its partial frame, the new bytes
    /// already appended). What stays incomplete is kept in the connection's own `rx`,
    /// sized for the whole frame when its size is known.
    fn feed(&mut self, id: ConnId, mut rx: Vec<u8>, shared: &mut [u8], n: usize) {
        if rx.is_empty() {
            let fresh = &mut shared[..n];
            let done = self.process(id, fresh);
            if done.used < fresh.len() {
                if let Some(entry) = self.core.get_mut(id) {
                    let left = fresh.len() - done.used;
                    let mut keep = Vec::with_capacity(done.need.unwrap_or(0).max(left));
                    keep.extend_from_slice(&fresh[done.used..]);
                    entry.rx = keep;
                }
            }
        } else {
            let done = self.process(id, &mut rx);
            rx.drain(..done.used);
            if let Some(entry) = self.core.get_mut(id) {
                if !rx.is_empty() {
                    if let Some(need) = done.need {
                        rx.reserve(need.saturating_sub(rx.len()));
                    }
                    entry.rx = rx;
                }
            }
        }
    }

    /// Feeds bytes to the connection's current phase until they run out or it stops
    /// reading.
    fn process(&mut self, id: ConnId, buf: &mut [u8]) -> Processed {
        let mut pos = 0;
        while pos < buf.len() {
            let max = self.core.config.max_payload;
            let Some(entry) = self.core.get_mut(id) else {
                return Processed::all(buf);
            };
            match &mut entry.phase {
                Phase::Draining(drain) => {
                    let dropped = u32::try_from(buf.len() - pos).unwrap_or(u32::MAX);
                    drain.discarded = drain.discarded.saturating_add(dropped);
                    return Processed::all(buf);
                }
                Phase::Http(_) => match self.http_input(id, &mut buf[pos..]) {
                    HttpStep::Consumed(n) => pos += n,
                    HttpStep::NeedMore(need) => return Processed { used: pos, need },
                    HttpStep::Stop => return Processed::all(buf),
                },
                Phase::Ws(ws) => match ws.decode(&mut buf[pos..], max) {
                    Ok(Decoded::NeedMore { frame_len: need }) => {
                        return Processed { used: pos, need }
                    }
                    Ok(Decoded::Frame { consumed, event }) => {
                        pos += consumed;
                        self.frames += 1;
                        self.ws_event(id, event);
                    }
                    Err(e) => {
                        log::debug!("{id}: failing connection: {e}");
                        let code = e.close_code();
                        self.core
                            .close_as(id, code, e.reason(), Closed::Failed(code));
                        return Processed::all(buf);
                    }
                },
            }
        }
        Processed {
            used: pos,
            need: None,
        }
    }

    /// Acts on one decoded frame.
    fn ws_event(&mut self, id: ConnId, event: Event<'_>) {
        let deliverable = self.core.get(id).is_some_and(|e| e.state.is_some());
        match event {
            Event::Text(text) if deliverable => self.deliver(id, Message::Text(text)),
            Event::Binary(bytes) if deliverable => self.deliver(id, Message::Binary(bytes)),
            Event::Assembled(kind) => self.assembled(id, kind, deliverable),
            Event::Ping(payload) if deliverable => {
                // A pong is output like any other and counts against the outbox cap: a peer
                // that pings without reading is a slow reader (1008), not a memory leak.
                let len = payload.len() + 2;
                let _ = self.core.send_with(id, len, |outbox, pool| {
                    outbox.push_frame(pool, OpCode::Pong, payload)
                });
            }
            // A Pong counts as something heard (`last_rx`, set by the read): nothing more.
            Event::Pong(_) => {}
            Event::Close { code, reply, .. } => self.peer_closing(id, code, reply),
            // Fragments, and data arriving while our Close is on its way, are dropped.
            _ => {}
        }
    }

    /// A fragmented message is complete: hands it over (if the application still holds the
    /// connection).
    fn assembled(&mut self, id: ConnId, kind: Kind, deliverable: bool) {
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

    /// The peer's Close: echoed (its code) when `reply` (it started the handshake; the
    /// application is told), and the connection finishes.
    fn peer_closing(&mut self, id: ConnId, code: Option<CloseCode>, reply: bool) {
        if reply {
            let echo = code.map(|c| c.0.to_be_bytes());
            let payload = echo.as_ref().map_or(&[][..], |b| &b[..]);
            self.core.push_control(id, OpCode::Close, payload);
            if let Some(state) = self.core.get_mut(id).and_then(|e| e.state.take()) {
                let why = Closed::ByPeer(code);
                self.core.closed.push_back(Ended { id, state, why });
            }
        }
        // Both Close frames are out: the handshake is complete.
        self.core.finish(id);
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
        while let Some(Ended { id, state, why }) = self.core.closed.pop_front() {
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

    /// Refuses a request with the status `err` calls for; the connection stops reading.
    fn refuse_error(&mut self, id: ConnId, err: &HttpError) -> HttpStep {
        log::debug!("{id}: refusing request: {err}");
        self.refuse(id, &Response::from_error(err));
        HttpStep::Stop
    }

    /// Handles the request at the start of `buf`: an upgrade or a plain request.
    fn http_input(&mut self, id: ConnId, buf: &mut [u8]) -> HttpStep {
        let mut headers = [httparse::EMPTY_HEADER; http::MAX_HEADERS];
        let max_head = self.core.config.max_request_head;
        let (request, head_len) = match http::parse_request(buf, &mut headers) {
            Ok(Parsed::Complete { request, head_len }) if head_len <= max_head => {
                (request, head_len)
            }
            Ok(Parsed::Partial) if buf.len() < max_head => return HttpStep::NeedMore(None),
            Ok(_) => return self.refuse_error(id, &HttpError::HeadersTooLarge),
            Err(e) => return self.refuse_error(id, &e),
        };
        if request.attempts_websocket() {
            self.upgrade_input(id, &request, head_len)
        } else {
            self.plain_input(id, &request, buf, head_len)
        }
    }

    /// A plain request (its head is `head_len` bytes of `buf`): waits for its body, answers
    /// it with `on_http`, and keeps the connection for the next one or ends it.
    fn plain_input(
        &mut self,
        id: ConnId,
        request: &Request<'_, '_>,
        buf: &[u8],
        head_len: usize,
    ) -> HttpStep {
        let body_len = match request.content_length() {
            Ok(n) if n > self.core.config.max_http_body => {
                return self.refuse_error(id, &HttpError::PayloadTooLarge)
            }
            Ok(n) => n,
            Err(e) => return self.refuse_error(id, &e),
        };
        let total = head_len + body_len;
        if buf.len() < total {
            return HttpStep::NeedMore(Some(total));
        }
        let keep_alive = request.keep_alive() && self.may_keep_alive(id);
        let response = {
            let mut ctx = Ctx::new(&mut self.core);
            self.app
                .on_http(&mut ctx, id, request, &buf[head_len..total])
        };
        self.deliver_closed();
        let mut out = Vec::with_capacity(128 + response.body.len());
        http::write_response(&mut out, &response, keep_alive);
        self.core.push_bytes(id, &out);
        // Pipelined requests from a client that does not read its responses: past the
        // outbox cap, stop answering and end the connection once the backlog is out.
        if !keep_alive || self.core.backlog_over(id, self.core.config.outbox_limit) {
            self.core.drain(id);
            return HttpStep::Stop;
        }
        self.await_next_request(id);
        HttpStep::Consumed(total)
    }

    /// Arms a keep-alive connection's deadline: the next request is due within the
    /// handshake timeout, and within the connection's lifetime (past it, an idle connection
    /// is closed without a word).
    fn await_next_request(&mut self, id: ConnId) {
        let now = self.core.now;
        let born = match self.core.get(id).map(|e| &e.phase) {
            Some(Phase::Http(http)) => http.born,
            _ => now,
        };
        let config = &self.core.config;
        let at = (now + config.handshake_timeout).min(born + config.http_connection_lifetime);
        self.core.arm(id, at);
    }

    /// An upgrade request: checked (RFC 6455, capacity), offered to `on_upgrade`, and
    /// answered `101` (the connection is then a WebSocket) or refused.
    fn upgrade_input(
        &mut self,
        id: ConnId,
        request: &Request<'_, '_>,
        head_len: usize,
    ) -> HttpStep {
        let upgrade = match http::validate_upgrade(request) {
            Ok(upgrade) => upgrade,
            Err(e) => return self.refuse_error(id, &e),
        };
        if !self.core.config.origin_policy.admits(request) {
            log::info!("{id}: upgrade refused: origin not allowed");
            self.refuse(id, &Response::text(403, "origin not allowed\n"));
            return HttpStep::Stop;
        }
        if self.core.shutting_down || self.core.ws_count >= self.core.config.max_connections {
            self.refuse(id, &Response::text(503, "server at capacity\n"));
            return HttpStep::Stop;
        }
        let accept = {
            let mut ctx = Ctx::new(&mut self.core);
            self.app.on_upgrade(&mut ctx, id, request)
        };
        self.deliver_closed();
        match accept {
            Accept::Yes { state, mut headers } => {
                let ws = self.new_ws(request, &mut headers);
                let mut out = Vec::with_capacity(160);
                http::write_switching_protocols(&mut out, &upgrade.accept_key(), &headers);
                self.core.push_bytes(id, &out);
                if !self.open_websocket(id, state, ws) {
                    return HttpStep::Stop;
                }
                HttpStep::Consumed(head_len)
            }
            Accept::No(response) => {
                self.refuse(id, &response);
                HttpStep::Stop
            }
        }
    }

    /// The WebSocket state machine of an accepted upgrade, with permessage-deflate when the
    /// client offered it and the configuration allows it (its answer joins `headers`).
    fn new_ws(&self, request: &Request<'_, '_>, headers: &mut Vec<(String, String)>) -> WsConn {
        #[allow(unused_mut)]
        let mut ws = WsConn::with_max_fragments(self.core.config.max_fragments);
        #[cfg(feature = "deflate")]
        if let Some(deflate) = super::compress::negotiate(&self.core.config, request, headers) {
            ws.enable_deflate(deflate);
        }
        #[cfg(not(feature = "deflate"))]
        let _ = (request, headers);
        ws
    }

    /// Makes `id` the WebSocket `ws` with the application's `state` (its `101` is queued),
    /// arms its idle deadline and calls `on_open`. False if the connection is gone.
    fn open_websocket(&mut self, id: ConnId, state: A::Conn, ws: WsConn) -> bool {
        let Some(entry) = self.core.get_mut(id) else {
            return false;
        };
        entry.phase = Phase::Ws(ws);
        entry.state = Some(state);
        self.core.ws_count += 1;
        self.arm_idle(id);
        let mut ctx = Ctx::new(&mut self.core);
        self.app.on_open(&mut ctx, id);
        self.deliver_closed();
        true
    }

    /// Counts a plain request on `id` and says whether its answer may keep the connection
    /// open: not while shutting down, not for the last request a connection may make, not
    /// past the connection's lifetime.
    fn may_keep_alive(&mut self, id: ConnId) -> bool {
        let (now, shutting_down) = (self.core.now, self.core.shutting_down);
        let max = self.core.config.max_requests_per_connection;
        let lifetime = self.core.config.http_connection_lifetime;
        let Some(Phase::Http(http)) = self.core.get_mut(id).map(|e| &mut e.phase) else {
            return false;
        };
        http.requests = http.requests.saturating_add(1);
        !shutting_down && http.requests < max && now < http.born + lifetime
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
