//! The soak's client side: each session's state across its connections, the checks made
//! on every event it receives, heartbeats, the message flow and the churn.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use memchr::memmem;

use super::super::chat::{self, Heartbeats};
use crate::client::{Action, Client, CloseMode, Closed, Handler, Message, Writer};
use crate::histogram::Histogram;
use crate::rng::Rng;

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Stage {
    /// Not connected yet (or its first connection failed before READY).
    #[default]
    New,
    /// Not connected: a reconnect is queued.
    Away,
    /// Connecting, upgrading or waiting for HELLO; presents if it has no id, else resumes.
    Opening,
    /// Present sent, waiting for READY.
    Presented,
    /// Resume sent, waiting for READY.
    Resuming,
    /// READY received: heartbeating.
    Identified,
    /// We are closing its connection (churn).
    Closing,
}

/// One chat session, across its connections.
#[derive(Debug, Clone, Default)]
pub(super) struct Session {
    pub(super) stage: Stage,
    /// Current connection id (stale while `New` or `Away`).
    pub(super) conn: usize,
    /// `session_id` from READY (0: none yet).
    pub(super) id: u64,
    /// Last event sequence number received.
    pub(super) last_s: u64,
    /// First and last MESSAGE_CREATE id received.
    pub(super) first_msg: Option<u64>,
    pub(super) last_msg: Option<u64>,
    /// Identified before the first message was sent: must see every message.
    pub(super) fresh: bool,
    /// After a refused resume: the old session's last message id.
    pub(super) refused_last: Option<u64>,
    /// When it last sent a MESSAGE_CREATE.
    pub(super) sent_at: Option<Instant>,
    /// A fatal 150 was counted as a drop: its Close is not counted again.
    pub(super) fatal: bool,
}

/// Counters of the whole run.
#[derive(Debug, Default, Clone)]
pub(super) struct Counts {
    pub(super) events: u64,
    pub(super) seq_gaps: u64,
    pub(super) seq_dups: u64,
    pub(super) malformed: u64,
    pub(super) message_gaps: u64,
    pub(super) message_dups: u64,
    pub(super) messages_sent: u64,
    pub(super) churned: [u64; 4],
    pub(super) resumes_ok: u64,
    pub(super) resumes_refused: u64,
    pub(super) resume_not_resumed: u64,
    pub(super) unrecoverable: u64,
    pub(super) drops: u64,
    pub(super) fatal_150: u64,
    pub(super) errors_150: u64,
    pub(super) open_failed: u64,
    pub(super) connect_errors: u64,
    pub(super) beats: u64,
    pub(super) acks: u64,
}

/// Churn close modes, used by turns.
pub(super) const MODES: [CloseMode; 4] = [
    CloseMode::Frame,
    CloseMode::Drop,
    CloseMode::Reset,
    CloseMode::Wait,
];
pub(super) const NONE: usize = usize::MAX;

pub(super) struct Soak {
    pub(super) token: String,
    pub(super) present: Vec<u8>,
    pub(super) sessions: Vec<Session>,
    /// Connection id → session index (`NONE`).
    pub(super) by_conn: Vec<usize>,
    pub(super) identified: usize,
    pub(super) beats: Option<Heartbeats>,
    pub(super) due: Vec<usize>,
    pub(super) slots: usize,
    pub(super) anchor: Instant,
    pub(super) rtt: Histogram,
    /// Sessions to (re)open in the open phase, and queued reconnects (due, session).
    pub(super) retry: Vec<usize>,
    pub(super) reconnects: BinaryHeap<Reverse<(Instant, usize)>>,
    /// In the steady phase (or after): failed connections are drops.
    pub(super) steady: bool,
    /// The run's first and last message ids seen by any session.
    pub(super) msg_min: Option<u64>,
    pub(super) msg_max: u64,
    pub(super) c: Counts,
    pub(super) rng: Rng,
    pub(super) first_drop: Option<String>,
    pub(super) first_150: Option<String>,
}

impl Soak {
    /// Binds connection `conn` to session `i`, which starts opening.
    pub(super) fn attach(&mut self, conn: usize, i: usize) {
        if self.by_conn.len() <= conn {
            self.by_conn.resize(conn + 1, NONE);
        }
        self.by_conn[conn] = i;
        self.sessions[i].conn = conn;
        self.sessions[i].stage = Stage::Opening;
    }

    /// Takes session `i` out of the identified set (no more heartbeats).
    pub(super) fn leave(&mut self, i: usize) {
        if self.sessions[i].stage == Stage::Identified {
            self.identified -= 1;
            if let Some(b) = self.beats.as_mut() {
                b.remove(self.sessions[i].conn);
            }
        }
    }

    /// Queues a reconnect (and resume) of session `i` at `at`.
    pub(super) fn reconnect(&mut self, i: usize, at: Instant) {
        self.sessions[i].stage = Stage::Away;
        self.reconnects.push(Reverse((at, i)));
    }

    /// Lost events so far (the final report adds the end-of-run checks).
    pub(super) fn lost(&self) -> u64 {
        let c = &self.c;
        c.seq_gaps + c.message_gaps + c.unrecoverable + c.resume_not_resumed
    }

    /// Checks an event's `s` and, for MESSAGE_CREATE, its message id.
    pub(super) fn on_event(&mut self, i: usize, data: &[u8]) {
        self.c.events += 1;
        let s = &mut self.sessions[i];
        match chat::uint_field(data, br#""s""#) {
            Some(seq) if seq == s.last_s + 1 => s.last_s = seq,
            Some(seq) if seq > s.last_s => {
                self.c.seq_gaps += seq - s.last_s - 1;
                s.last_s = seq;
            }
            Some(_) => {
                self.c.seq_dups += 1;
                return;
            }
            None => self.c.malformed += 1,
        }
        if memmem::find(data, br#""t":"MESSAGE_CREATE""#).is_none() {
            return;
        }
        let Some(id) = chat::uint_field(data, br#""id""#) else {
            self.c.malformed += 1;
            return;
        };
        match s.last_msg {
            Some(last) if id <= last => {
                self.c.message_dups += 1;
                return;
            }
            Some(last) => self.c.message_gaps += id - last - 1,
            None => {
                s.first_msg = Some(id);
                if let Some(old) = s.refused_last.take() {
                    self.c.unrecoverable += id.saturating_sub(old + 1); // never replayed
                }
            }
        }
        s.last_msg = Some(id);
        self.msg_min = Some(self.msg_min.map_or(id, |m| m.min(id)));
        self.msg_max = self.msg_max.max(id);
    }

    /// READY on session `i`'s connection.
    pub(super) fn on_ready(&mut self, i: usize, data: &[u8], now: Instant) {
        let sid = chat::uint_field(data, br#""session_id""#).unwrap_or(0);
        let resumed = memmem::find(data, br#""resumed":true"#).is_some();
        let s = &mut self.sessions[i];
        if s.stage == Stage::Resuming {
            if resumed && sid == s.id {
                self.c.resumes_ok += 1;
            } else {
                self.c.resume_not_resumed += 1;
                s.refused_last = s.last_msg;
                (s.last_s, s.first_msg, s.last_msg, s.fresh) = (0, None, None, false);
            }
        } else if self.c.messages_sent == 0 {
            s.fresh = true;
        }
        s.id = sid;
        s.stage = Stage::Identified;
        self.identified += 1;
        if let Some(b) = self.beats.as_mut() {
            b.add(s.conn, now);
        }
    }
}

impl Handler for Soak {
    fn on_message(
        &mut self,
        id: usize,
        msg: Message<'_>,
        out: &mut Writer,
        now: Instant,
    ) -> Action {
        let i = self.by_conn.get(id).copied().unwrap_or(NONE);
        if i == NONE {
            return Action::Keep;
        }
        match (self.sessions[i].stage, chat::function_code(msg.data)) {
            (_, Some(120)) => {
                self.c.acks += 1;
                if let Some(rtt) = self.beats.as_mut().and_then(|b| b.acked(id, now)) {
                    self.rtt.record(rtt);
                }
            }
            (_, Some(130)) => self.on_event(i, msg.data),
            (Stage::Opening, Some(100)) => {
                if self.beats.is_none() {
                    let ms = chat::hb_int(msg.data).unwrap_or(20_000);
                    let interval = Duration::from_millis(ms);
                    self.beats = Some(Heartbeats::new(interval, self.slots, self.anchor));
                }
                let s = &mut self.sessions[i];
                if s.id == 0 {
                    out.text(&self.present);
                    s.stage = Stage::Presented;
                } else {
                    out.text(&chat::resume(&self.token, s.id, s.last_s));
                    s.stage = Stage::Resuming;
                }
            }
            (Stage::Presented | Stage::Resuming, Some(140)) => self.on_ready(i, msg.data, now),
            (stage, Some(150)) => {
                let fatal = memmem::find(msg.data, br#""d":true"#).is_some();
                let s = &mut self.sessions[i];
                if stage == Stage::Resuming && !fatal && chat::error_code(msg.data) == Some(4006) {
                    // Refused: what the old session had not received is lost for good.
                    self.c.resumes_refused += 1;
                    self.c.unrecoverable += 1;
                    s.refused_last = s.last_msg;
                    (s.id, s.last_s, s.first_msg, s.last_msg, s.fresh) = (0, 0, None, None, false);
                    out.text(&self.present);
                    s.stage = Stage::Presented;
                    return Action::Keep;
                }
                if fatal {
                    self.c.fatal_150 += 1;
                    if !s.fatal && s.stage != Stage::Closing {
                        s.fatal = true;
                        self.c.drops += 1;
                    }
                } else {
                    self.c.errors_150 += 1;
                }
                if self.first_150.is_none() {
                    self.first_150 = Some(String::from_utf8_lossy(msg.data).into_owned());
                }
            }
            _ => self.c.malformed += 1, // out of place: counted as malformed
        }
        Action::Keep
    }

    fn on_closed(&mut self, id: usize, why: Closed, now: Instant) {
        let i = self.by_conn.get(id).copied().unwrap_or(NONE);
        if i == NONE {
            return;
        }
        self.by_conn[id] = NONE;
        self.leave(i);
        if self.sessions[i].stage == Stage::Closing {
            let delay = 200 + self.rng.next_u64() % 1801;
            self.reconnect(i, now + Duration::from_millis(delay));
            return;
        }
        let s = &mut self.sessions[i];
        let counted = std::mem::take(&mut s.fatal);
        if s.id == 0 && !self.steady {
            self.c.open_failed += 1;
            s.stage = Stage::New;
            self.retry.push(i);
        } else {
            // Reconnects, then resumes (or presents if it has no session id).
            if !counted {
                self.c.drops += 1;
            }
            self.reconnect(i, now + Duration::from_millis(200));
        }
        if self.first_drop.is_none() {
            self.first_drop = Some(format!("{why:?}"));
        }
    }
}

/// Sends due heartbeats, opens due reconnects, then polls until `until` at most.
pub(super) fn turn(client: &mut Client, h: &mut Soak, until: Instant) -> crate::Result<()> {
    let now = Instant::now();
    if let Some(b) = h.beats.as_mut() {
        let mut due = std::mem::take(&mut h.due);
        due.clear();
        b.take_due(now, &mut due);
        for &id in &due {
            if client.send_text(id, chat::HEARTBEAT, h) {
                h.c.beats += 1;
            }
        }
        h.due = due;
    }
    while let Some(&Reverse((at, i))) = h.reconnects.peek() {
        if at > now {
            break;
        }
        h.reconnects.pop();
        match client.connect() {
            Ok(conn) => h.attach(conn, i),
            Err(e) => {
                h.c.connect_errors += 1;
                h.c.drops += 1;
                h.first_drop
                    .get_or_insert_with(|| format!("reconnect: {e}"));
                h.reconnect(i, now + Duration::from_secs(1));
            }
        }
    }
    let now = Instant::now();
    let mut wait = until
        .saturating_duration_since(now)
        .min(Duration::from_millis(100));
    if let Some(next) = h.beats.as_mut().and_then(Heartbeats::next_due) {
        wait = wait.min(next.saturating_duration_since(now));
    }
    if let Some(&Reverse((at, _))) = h.reconnects.peek() {
        wait = wait.min(at.saturating_duration_since(now));
    }
    client.poll(h, wait)?;
    Ok(())
}

/// Sends the next MESSAGE_CREATE from the next identified session in turn.
pub(super) fn send_message(client: &mut Client, h: &mut Soak, cursor: &mut usize, now: Instant) {
    let n = h.sessions.len();
    for _ in 0..n {
        let i = *cursor % n;
        *cursor = cursor.wrapping_add(1);
        if h.sessions[i].stage != Stage::Identified {
            continue;
        }
        let text = chat::message_create(&format!("soak-{}", h.c.messages_sent + 1));
        if client.send_text(h.sessions[i].conn, &text, h) {
            h.c.messages_sent += 1;
            h.sessions[i].sent_at = Some(now);
            return;
        }
    }
}

/// Drops the connection of a random identified session (which resumes later).
pub(super) fn churn(client: &mut Client, h: &mut Soak, now: Instant) {
    let n = h.sessions.len() as u64;
    for _ in 0..64 {
        let i = (h.rng.next_u64() % n) as usize;
        let s = &h.sessions[i];
        let recent = s.sent_at.is_some_and(|t| now - t < Duration::from_secs(2));
        if s.stage != Stage::Identified || recent {
            continue;
        }
        let total: u64 = h.c.churned.iter().sum();
        let k = (total % MODES.len() as u64) as usize;
        h.c.churned[k] += 1;
        h.leave(i);
        h.sessions[i].stage = Stage::Closing;
        client.close(h.sessions[i].conn, MODES[k], h);
        return;
    }
}
