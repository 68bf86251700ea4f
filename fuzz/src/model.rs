//! The session machine, the registry and the replay buffer driven by arbitrary operations
//! and clock jumps, beside a model of the clients.
//!
//! The engine's glue (src/gateway/core.rs and engine.rs: `deliver`, `resume`, `make_room`,
//! `on_close`, the timers) needs a reactor and sockets, so [`Model`] repeats it over the
//! real [`ConnSession`], [`Registry`] and [`ReplayBuffer`](postern::gateway::replay) and
//! checks, after every operation:
//!
//! - deadlines: a connection's next deadline is after `now` (a due timer was handled; one
//!   at or before `now` would re-arm in the past and spin the reactor), and a tick at or
//!   after the deadline never answers `Idle`;
//! - sequence numbers: each client reads `last + 1` every time (strictly increasing, no
//!   gap, nothing twice), across any number of resumes; a resume either replays exactly
//!   `(seen, seq]` or is refused;
//! - memory: every replay buffer within its event bound, within its byte bound unless it
//!   holds a single event, contiguous up to the session's sequence; the registry within
//!   `max_sessions` or the peak of sessions live at once, each owner within
//!   `max_sessions_per_owner`, no live session evicted; the command rate limit.
//!
//! Dependency-free apart from `postern` and `serde_json`: `tests/properties.rs` includes it
//! with `#[path]`.

use crate::input::{config, Input};
use postern::gateway::config::{DuplicatePolicy, GatewayConfig};
use postern::gateway::owner::Owner;
use postern::gateway::registry::{Quota, Registry};
use postern::gateway::session::{ConnSession, Tick};
use postern::gateway::{GatewayError, Op, SessionId};
use postern::ws::SharedPayload;
use postern::{ConnId, Millis};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;

/// Connections open at once, at most.
const MAX_CONNS: usize = 6;
/// Clients in the model.
const CLIENTS: usize = 3;
/// Operations per run, at most.
const MAX_OPS: usize = 400;

/// The owner of client `c`'s sessions: clients 0 and 2 share one, so that one owner's
/// quota meets another's sessions.
fn owner_of(c: usize) -> Owner {
    Owner::user(if c.is_multiple_of(2) { "even" } else { "odd" })
}

/// One open connection.
#[derive(Debug)]
struct Conn {
    id: ConnId,
    machine: ConnSession,
    /// Sequence numbers written to this connection and not yet read by its client.
    inflight: Vec<u64>,
    created: Millis,
    /// Commands that passed the rate limit.
    commands: u64,
    /// Heartbeats that passed their own rate limit.
    heartbeats: u64,
}

/// One client: a user who keeps its session across connections.
#[derive(Debug, Default)]
struct Client {
    /// Its current connection (an index into `Model::conns`).
    conn: Option<usize>,
    session: Option<SessionId>,
    /// The last sequence number it read (or gave up: see [`Stats::unreplayable`]).
    last: u64,
}

/// The engine's state around the machines under test, and the clients.
#[derive(Debug)]
pub struct Model {
    config: GatewayConfig,
    now: Millis,
    conns: Vec<Option<Conn>>,
    clients: Vec<Client>,
    registry: Registry<()>,
    /// Resume-window deadlines of detached sessions.
    expiry: HashMap<SessionId, Millis>,
    next_id: u64,
    peak_live: usize,
    /// What the run went through, to see that the operations reach deep states.
    pub stats: Stats,
}

/// Counts of what a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sessions opened by identify.
    pub identified: u64,
    /// Resumes granted (with or without a client sequence).
    pub resumed: u64,
    /// Events replayed by those resumes.
    pub replayed: u64,
    /// Resumes refused as invalid sessions.
    pub refused: u64,
    /// Old connections replaced by a resume elsewhere.
    pub replaced: u64,
    /// Connections closed by a deadline (identify, heartbeat, probe).
    pub expired: u64,
    /// Probes sent.
    pub probes: u64,
    /// Sessions dropped: resume window over, or evicted over the session bound.
    pub dropped: u64,
    /// Events read by clients.
    pub read: u64,
    /// Events that a resume without a client sequence did not replay: such a resume
    /// replays from where the server detached the session, so what was in flight at that
    /// moment is lost (the protocol has no way to know of it). Counted, not an error.
    pub unreplayable: u64,
}

impl Model {
    /// A gateway at time 1000 with no connection.
    pub fn new(config: GatewayConfig) -> Model {
        Model {
            config,
            now: Millis(1000),
            conns: (0..MAX_CONNS).map(|_| None).collect(),
            clients: (0..CLIENTS).map(|_| Client::default()).collect(),
            registry: Registry::default(),
            expiry: HashMap::new(),
            next_id: 1,
            peak_live: 0,
            stats: Stats::default(),
        }
    }

    /// Runs the operations the input spells, checking the invariants after each.
    pub fn run(input: &mut Input<'_>) -> Model {
        let mut model = Model::new(config(input));
        for _ in 0..MAX_OPS {
            if input.is_empty() {
                break;
            }
            model.step(input);
            model.check();
        }
        model.finish();
        model
    }

    /// The client's open connection, if any.
    fn conn_of(&self, c: usize) -> Option<usize> {
        self.clients[c].conn.filter(|&i| self.conns[i].is_some())
    }

    fn conn(&mut self, i: usize) -> &mut Conn {
        self.conns[i].as_mut().expect("open connection")
    }

    /// One operation.
    fn step(&mut self, input: &mut Input<'_>) {
        let c = usize::from(input.byte()) % CLIENTS;
        match input.byte() % 16 {
            0 => {
                let by = Millis(u64::from(input.byte()));
                self.advance(self.now + by, true);
            }
            1 => {
                let by = Millis(u64::from(input.u16()));
                self.advance(self.now + by, true);
            }
            2 => {
                let by = Millis(u64::from(input.u16()) << (input.byte() % 24));
                self.advance(self.now + by, false);
            }
            3 => self.connect(c),
            4 => self.identify(c),
            5 => self.resume(c),
            6 => self.resume_at_upgrade(c),
            7 | 8 => self.client_op(c, Op::Heartbeat(None)),
            9 => {
                let op = Op::Dispatch {
                    event: Cow::Borrowed("EVENT"),
                    data: None,
                };
                self.client_op(c, op);
            }
            10 | 11 => {
                let (k, size) = (usize::from(input.byte()), usize::from(input.byte()));
                let mut ids: Vec<SessionId> = self.registry.ids().collect();
                ids.sort();
                let all = k >= 224;
                for (n, id) in ids.into_iter().enumerate() {
                    if all || n == k % CLIENTS.max(1) {
                        self.deliver(id, size);
                    }
                }
            }
            12 | 13 => self.read(c),
            14 => {
                if let Some(i) = self.conn_of(c) {
                    self.close(i);
                }
            }
            _ => self.check_since(input.u16()),
        }
    }

    /// The client's connection for an identify or resume: a fresh one unless it has one
    /// that has not identified yet.
    fn fresh_conn(&mut self, c: usize) -> Option<usize> {
        match self.conn_of(c) {
            Some(i) if !self.conn(i).machine.is_identified() => Some(i),
            _ => {
                self.connect(c);
                let i = self.conn_of(c)?;
                (!self.conn(i).machine.is_identified()).then_some(i)
            }
        }
    }

    /// Moves the clock to `to`, firing every timer due on the way: at its own time when
    /// `precise`, all at `to` otherwise (a reactor that was held up, or a clock jump).
    fn advance(&mut self, to: Millis, precise: bool) {
        for _ in 0..10_000 {
            let conns = self.conns.iter().flatten();
            let next_conn = conns.map(|c| c.machine.next_deadline(&self.config)).min();
            let next_expiry = self.expiry.values().copied().min();
            let next = next_conn.into_iter().chain(next_expiry).min();
            let Some(next) = next.filter(|&n| n <= to) else {
                self.now = to;
                return;
            };
            assert!(
                next >= self.now,
                "a deadline {next} before now {}",
                self.now
            );
            self.now = if precise { next } else { to };
            self.fire();
        }
        panic!("timers keep firing at {}: the reactor would spin", self.now);
    }

    /// Handles every timer due at `now`.
    fn fire(&mut self) {
        let now = self.now;
        for i in 0..MAX_CONNS {
            let Some(conn) = self.conns[i].as_mut() else {
                continue;
            };
            if conn.machine.next_deadline(&self.config) > now {
                continue;
            }
            match conn.machine.tick(now, &self.config) {
                Tick::Expired(_) => {
                    self.stats.expired += 1;
                    self.close(i);
                }
                Tick::Probe => {
                    self.stats.probes += 1;
                    let at = conn.machine.next_deadline(&self.config);
                    assert!(at >= now, "probe deadline {at} before now {now}");
                }
                Tick::Idle => panic!("tick at a due deadline answered Idle at {now}"),
            }
        }
        let due: Vec<SessionId> = self
            .expiry
            .iter()
            .filter(|&(_, &at)| at <= now)
            .map(|(&s, _)| s)
            .collect();
        for sid in due {
            self.expiry.remove(&sid);
            if self.registry.get(sid).is_some_and(|r| r.conn.is_none()) {
                self.registry.remove(sid);
                self.stats.dropped += 1;
            }
        }
    }

    /// The client opens a new connection; an old one is abandoned, half-open (it lives on
    /// until its deadlines close it, and the client reads nothing more from it). Nothing
    /// happens when every slot is taken.
    fn connect(&mut self, c: usize) {
        let Some(slot) = self.conns.iter().position(Option::is_none) else {
            return;
        };
        let id = ConnId::from_u64(self.next_id);
        self.next_id += 1;
        let machine = ConnSession::new(self.now, &self.config);
        self.conns[slot] = Some(Conn {
            id,
            machine,
            inflight: Vec::new(),
            created: self.now,
            commands: 0,
            heartbeats: 0,
        });
        self.clients[c].conn = Some(slot);
    }

    /// The connection is gone (closed by either side, or dropped): what it had in flight
    /// is lost, and its session, if still attached here, is detached for resume.
    fn close(&mut self, i: usize) {
        let Some(conn) = self.conns[i].take() else {
            return;
        };
        for client in &mut self.clients {
            if client.conn == Some(i) {
                client.conn = None;
            }
        }
        let Some(sid) = conn.machine.session() else {
            return;
        };
        if self
            .registry
            .get(sid)
            .is_some_and(|r| r.conn == Some(conn.id))
        {
            self.registry.detach(sid);
            self.expiry
                .insert(sid, self.now + self.config.resume_window);
        }
    }

    /// Passes an op through the machine's admission; an error other than a non-fatal
    /// rate limit closes the connection (as the seed dialects answer them).
    fn admit(&mut self, i: usize, op: &Op<'_>) -> bool {
        let (now, config) = (self.now, &self.config);
        let conn = self.conns[i].as_mut().expect("open connection");
        // Every message is proof of life, admitted or not (Gateway::on_message).
        conn.machine.heard(now);
        let verdict = conn.machine.admit(now, op, config);
        if !matches!(verdict, Err(GatewayError::RateLimited { .. })) {
            // A token bucket of `cap` per `window`, full at the start, allows at most
            // cap + elapsed * cap / window takes.
            let (count, cap, window) = match op {
                Op::Heartbeat(_) => {
                    conn.heartbeats += 1;
                    (
                        conn.heartbeats,
                        config.heartbeat_burst,
                        config.heartbeat_interval,
                    )
                }
                _ => {
                    conn.commands += 1;
                    (
                        conn.commands,
                        config.rate_limit.commands,
                        config.rate_limit.window,
                    )
                }
            };
            let cap = u64::from(cap);
            let bound = cap + (now.0 - conn.created.0) * cap / window.0;
            assert!(
                count <= bound,
                "{count} admitted over the rate limit's {bound}"
            );
        }
        match verdict {
            Ok(()) => true,
            Err(GatewayError::RateLimited { fatal: false }) => false,
            Err(_) => {
                self.close(i);
                false
            }
        }
    }

    fn client_op(&mut self, c: usize, op: Op<'_>) {
        if let Some(i) = self.conn_of(c) {
            self.admit(i, &op);
        }
    }

    /// The client identifies: a new session, after evicting detached ones over the bound.
    fn identify(&mut self, c: usize) {
        let Some(i) = self.fresh_conn(c) else {
            return;
        };
        if !self.admit(i, &Op::Identify(RawValue::NULL)) {
            return;
        }
        // GwCore::make_room: the detached sessions the quotas pick, or a fatal refusal.
        let owner = owner_of(c);
        let quota = Quota {
            max_sessions: self.config.max_sessions,
            per_owner: self.config.max_sessions_per_owner,
        };
        let Ok(victims) = self.registry.room_for(&owner, quota) else {
            self.stats.refused += 1;
            self.close(i);
            return;
        };
        for old in victims {
            let r = self.registry.remove(old).expect("a listed victim");
            assert!(r.conn.is_none(), "a live session evicted");
            self.expiry.remove(&old);
            self.stats.dropped += 1;
        }
        self.stats.identified += 1;
        let sid = SessionId::new(self.next_id);
        self.next_id += 1;
        let id = self.conn(i).id;
        self.registry.insert(sid, (), id, owner);
        let now = self.now;
        self.conn(i).machine.identified(now, sid);
        self.clients[c] = Client {
            conn: Some(i),
            session: Some(sid),
            last: 0,
        };
    }

    /// The client resumes its session with the last sequence it read (a stranger's
    /// session number when it has none, which must be refused).
    fn resume(&mut self, c: usize) {
        let Some(i) = self.fresh_conn(c) else {
            return;
        };
        let (sid, seen) = match self.clients[c].session {
            Some(sid) => (sid, self.clients[c].last),
            None => (SessionId::new(u64::MAX), 0),
        };
        let op = Op::Resume {
            session: sid,
            seq: seen,
            payload: RawValue::NULL,
        };
        if !self.admit(i, &op) {
            return;
        }
        match self.attach(i, sid, Some(seen)) {
            // `attach` checked that the replay is exactly (seen, seq].
            Ok(_) => assert_eq!(self.clients[c].session, Some(sid), "resumed a stranger's"),
            Err(GatewayError::InvalidSession) => {
                self.stats.refused += 1;
                self.clients[c].session = None;
            }
            Err(_) => self.close(i),
        }
    }

    /// A resume decided at the upgrade, without a client sequence (`Admit::Resume`).
    fn resume_at_upgrade(&mut self, c: usize) {
        let Some(sid) = self.clients[c].session else {
            return;
        };
        let Some(i) = self.fresh_conn(c) else {
            return;
        };
        match self.attach(i, sid, None) {
            Ok(replayed) => {
                let last = self.clients[c].last;
                let seq = self.registry.get(sid).map_or(0, |r| r.seq);
                let from = seq - replayed.len() as u64;
                assert!(
                    from >= last,
                    "replays from {from} after the client read {last}"
                );
                self.stats.unreplayable += from - last;
                self.clients[c].last = from;
            }
            Err(GatewayError::InvalidSession) => {
                self.stats.refused += 1;
                self.clients[c].session = None;
            }
            Err(_) => self.close(i),
        }
    }

    /// GwCore::resume: re-attaches `sid` to connection `i` and queues the replay.
    fn attach(
        &mut self,
        i: usize,
        sid: SessionId,
        seen: Option<u64>,
    ) -> Result<Vec<u64>, GatewayError> {
        let id = self.conn(i).id;
        let record = self.registry.get(sid).ok_or(GatewayError::InvalidSession)?;
        let from = match seen {
            Some(seen) => seen,
            None if record.conn.is_some_and(|c| c != id) => record.seq,
            None => record.detached_seq,
        };
        let replay = record.replay.since(from, record.seq);
        let replay = replay.ok_or(GatewayError::InvalidSession)?;
        let replay: Vec<u64> = replay.map(|(s, _)| s).collect();
        let want: Vec<u64> = (from + 1..=record.seq).collect();
        assert_eq!(replay, want, "since({from}) is not (from, seq]");
        if let Some(old) = record.conn.filter(|&c| c != id) {
            if self.config.duplicate == DuplicatePolicy::RefuseNew {
                return Err(GatewayError::AlreadyConnected);
            }
            if let Some(j) = self
                .conns
                .iter()
                .position(|c| c.as_ref().is_some_and(|c| c.id == old))
            {
                self.conn(j).machine.unhook();
                self.close(j);
                self.stats.replaced += 1;
            }
        }
        let now = self.now;
        self.conn(i).machine.identified(now, sid);
        self.registry.attach(sid, id);
        self.expiry.remove(&sid);
        self.conn(i).inflight.extend_from_slice(&replay);
        self.stats.resumed += 1;
        self.stats.replayed += replay.len() as u64;
        Ok(replay)
    }

    /// GwCore::deliver: the next sequence number, kept for replay, sent if live.
    fn deliver(&mut self, sid: SessionId, size: usize) {
        let (events, bytes) = (self.config.replay_events, self.config.replay_bytes);
        let Some(record) = self.registry.get_mut(sid) else {
            return;
        };
        record.seq += 1;
        let seq = record.seq;
        record
            .replay
            .push(seq, SharedPayload::new(vec![b'x'; size]), events, bytes);
        let Some(conn) = record.conn else {
            return;
        };
        let live = self.conns.iter_mut().flatten().find(|c| c.id == conn);
        live.expect("a session attached to a closed connection")
            .inflight
            .push(seq);
    }

    /// The client reads everything in flight on its connection.
    fn read(&mut self, c: usize) {
        let Some(i) = self.conn_of(c) else {
            return;
        };
        let got = std::mem::take(&mut self.conn(i).inflight);
        self.stats.read += got.len() as u64;
        let client = &mut self.clients[c];
        for seq in got {
            assert_eq!(seq, client.last + 1, "read {seq} after {}", client.last);
            client.last = seq;
        }
    }

    /// A resume from an arbitrary sequence (a confused or lying client), against the
    /// first session: exactly `(seen, seq]`, or refused when that is not all held.
    fn check_since(&self, seen: u16) {
        let seen = u64::from(seen);
        let Some(sid) = self.registry.ids().min() else {
            return;
        };
        let record = self.registry.get(sid).expect("listed session");
        let oldest = record.seq + 1 - record.replay.len() as u64;
        let servable = seen <= record.seq && (seen == record.seq || oldest <= seen + 1);
        match record.replay.since(seen, record.seq) {
            Some(events) => {
                assert!(servable, "since({seen}) served a gap (oldest {oldest})");
                let got: Vec<u64> = events.map(|(s, _)| s).collect();
                assert_eq!(got, (seen + 1..=record.seq).collect::<Vec<_>>());
            }
            None => assert!(!servable, "since({seen}) refused what it holds"),
        }
    }

    /// The invariants that hold between operations.
    fn check(&mut self) {
        let now = self.now;
        for conn in self.conns.iter().flatten() {
            let at = conn.machine.next_deadline(&self.config);
            assert!(at > now, "deadline {at} not after now {now}");
        }
        let mut live = 0;
        for sid in self.registry.ids() {
            let r = self.registry.get(sid).expect("listed session");
            live += usize::from(r.conn.is_some());
            let held = r.replay.len();
            assert!(held <= self.config.replay_events, "{held} events held");
            let bytes = r.replay.bytes();
            assert!(
                bytes <= self.config.replay_bytes || held == 1,
                "{bytes} bytes held"
            );
            let from = r.seq - held as u64;
            let seqs: Option<Vec<u64>> = r
                .replay
                .since(from, r.seq)
                .map(|e| e.map(|(s, _)| s).collect());
            assert_eq!(
                seqs,
                Some((from + 1..=r.seq).collect()),
                "replay not contiguous"
            );
        }
        for c in 0..CLIENTS {
            let held = self.registry.owner_sessions(&owner_of(c));
            let quota = self.config.max_sessions_per_owner;
            assert!(
                held <= quota,
                "owner of client {c} holds {held} over {quota}"
            );
        }
        self.peak_live = self.peak_live.max(live);
        let bound = self.config.max_sessions.max(self.peak_live);
        assert!(
            self.registry.len() <= bound,
            "{} sessions over {bound}",
            self.registry.len()
        );
    }

    /// At the end, a client still attached reads what is in flight and has seen all.
    fn finish(&mut self) {
        for c in 0..CLIENTS {
            let (Some(i), Some(sid)) = (self.conn_of(c), self.clients[c].session) else {
                continue;
            };
            let id = self.conn(i).id;
            if let Some(seq) = self
                .registry
                .get(sid)
                .filter(|r| r.conn == Some(id))
                .map(|r| r.seq)
            {
                self.read(c);
                assert_eq!(self.clients[c].last, seq, "a live client missed events");
            }
        }
    }
}

/// The fuzz entry point.
pub fn fuzz(data: &[u8]) {
    Model::run(&mut Input(data));
}
