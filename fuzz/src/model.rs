//! The real gateway engine, driven in memory (`postern::gateway::driver`, feature
//! `testing`) by arbitrary operations and clock jumps, beside a model of its clients.
//!
//! The engine runs as it ships ([`Gateway`] with a seed-004 dialect whose probes are
//! visible); only the clients are modelled. After every operation the model checks:
//!
//! - deadlines: no timer fires forever at one time (the driver panics: a reactor would
//!   spin), and every live connection's armed deadline is after `now` (one at or before
//!   `now` would re-arm in the past);
//! - sequence numbers: each client reads `last + 1` every time (strictly increasing, no
//!   gap, nothing twice), across any number of resumes; a resume replays exactly
//!   `(seen, seq]` or is refused;
//! - memory: every replay buffer within its event bound, within its byte bound unless it
//!   holds a single event, contiguous up to the session's sequence; the registry within
//!   `max_sessions` or the peak of sessions live at once, each owner within
//!   `max_sessions_per_owner`, a live connection's session always held and attached to it
//!   (no live session evicted); the command and heartbeat rate limits.
//!
//! Dependency-free apart from `postern` and `serde_json`: `tests/properties.rs` includes it
//! with `#[path]`.

use crate::input::{config, Input};
use postern::gateway::dialects::i386::I386;
use postern::gateway::driver::Driver;
use postern::gateway::{
    Admit, Answer, DecodeError, Dialect, Gateway, GatewayConfig, GatewayError, Gw, GwCommand,
    Handler, Op, Owner, Ready, SessionId,
};
use postern::http::Request;
use postern::{ConnId, Millis};
use serde_json::value::RawValue;
use serde_json::Value;

/// Connections open at once, at most.
const MAX_CONNS: usize = 6;
/// Clients in the model.
const CLIENTS: usize = 3;
/// Operations per run, at most.
const MAX_OPS: usize = 400;
/// The probe this harness's dialect sends (seed 004 has none).
const PROBE: &str = r#"{"f":160}"#;
/// The error codes the model reads (seed 004's).
const INVALID_SESSION: u64 = 4006;
const RATE_LIMITED: u64 = 4008;
const TOO_MANY_SESSIONS: u64 = 4017;
const SESSION_REPLACED: u16 = 4015;

/// The owner of client `c`'s sessions: clients 0 and 2 share one, so that one owner's
/// quota meets another's sessions.
fn owner_of(c: usize) -> Owner {
    Owner::user(if c.is_multiple_of(2) { "even" } else { "odd" })
}

/// Seed 004's dialect with a probe (`{"f":160}`), so that probes are seen.
#[derive(Debug)]
pub struct Probing;

impl Dialect for Probing {
    fn decode<'a>(&self, text: &'a str) -> Result<Op<'a>, DecodeError> {
        I386.decode(text)
    }
    fn hello(&self, out: &mut String, interval: Millis) {
        I386.hello(out, interval);
    }
    fn ready(&self, out: &mut String, ready: &Ready<'_>) {
        I386.ready(out, ready);
    }
    fn heartbeat_ack(&self, out: &mut String, echo: Option<&RawValue>) {
        I386.heartbeat_ack(out, echo);
    }
    fn heartbeat_request(&self, out: &mut String) {
        out.push_str(PROBE);
    }
    fn dispatch_prefix(&self) -> Option<&'static [u8]> {
        I386.dispatch_prefix()
    }
    fn dispatch_tail(&self, out: &mut String, event: &str, data: &str) {
        I386.dispatch_tail(out, event, data);
    }
    fn answer(&self, error: &GatewayError) -> Answer {
        I386.answer(error)
    }
}

/// The application: client `c` identifies with token `c<c>`; a resume needs the same
/// token; `?resume=<id>` resumes at the upgrade. Counts the sessions that end.
#[derive(Debug, Default)]
pub struct Clients {
    ended: u64,
}

fn client_of(payload: &RawValue) -> Option<usize> {
    let v: Value = serde_json::from_str(payload.get()).ok()?;
    let token = v.get("token")?.as_str()?;
    token.strip_prefix('c')?.parse().ok()
}

impl Handler for Clients {
    type Dialect = Probing;
    type Session = usize;
    type Timer = ();
    type Command = ();

    fn on_upgrade(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        request: &Request<'_, '_>,
    ) -> Admit<usize> {
        match request.query_param("resume").and_then(|s| s.parse().ok()) {
            Some(sid) => Admit::Resume(SessionId::new(sid)),
            None => Admit::Accept,
        }
    }

    fn identify(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        payload: &RawValue,
    ) -> Result<usize, GatewayError> {
        client_of(payload).ok_or(GatewayError::AuthenticationFailed)
    }

    fn owner(&self, client: &usize) -> Option<Owner> {
        Some(owner_of(*client))
    }

    fn resume(&mut self, client: &usize, payload: &RawValue) -> bool {
        client_of(payload) == Some(*client)
    }

    fn on_event(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: SessionId,
        _: &str,
        _: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        Ok(())
    }

    fn on_session_end(&mut self, _: &mut Gw<'_, '_, Self>, _: SessionId, _: usize) {
        self.ended += 1;
    }
}

/// A connection the model opened and the server has not closed.
#[derive(Debug)]
struct Conn {
    id: ConnId,
    created: Millis,
    /// Commands that passed the rate limit.
    commands: u64,
    /// Heartbeats that passed their own rate limit.
    heartbeats: u64,
}

/// One client: a user who keeps its session across connections.
#[derive(Debug, Default)]
struct Client {
    /// Its current connection (an abandoned one lives on, half-open, unread).
    conn: Option<ConnId>,
    session: Option<u64>,
    /// The last sequence number it read (or gave up: see [`Stats::unreplayable`]).
    last: u64,
}

/// The engine under the driver, and the clients.
#[derive(Debug)]
pub struct Model {
    d: Driver<Clients>,
    config: GatewayConfig,
    conns: Vec<Conn>,
    clients: Vec<Client>,
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
    /// Identifies and resumes refused (invalid session, too many sessions).
    pub refused: u64,
    /// Old connections replaced by a resume elsewhere.
    pub replaced: u64,
    /// Connections closed by a deadline (identify, heartbeat, probe).
    pub expired: u64,
    /// Probes seen.
    pub probes: u64,
    /// Sessions ended: resume window over, or evicted over the session bounds.
    pub dropped: u64,
    /// Events read by clients.
    pub read: u64,
    /// Events that a resume without a client sequence did not replay: such a resume
    /// replays from where the server detached the session, so what was in flight at that
    /// moment is lost (the protocol has no way to know of it). Counted, not an error.
    pub unreplayable: u64,
}

fn json(frame: &str) -> Value {
    serde_json::from_str(frame).expect("the server sends JSON")
}

/// The error code of a 150 frame.
fn error_code(v: &Value) -> Option<u64> {
    (v["f"] == 150).then(|| v["cnf"]["c"].as_u64()).flatten()
}

impl Model {
    /// A gateway with `config` and no connection.
    pub fn new(config: GatewayConfig) -> Model {
        let gateway = Gateway::new(Clients::default(), Probing, config.clone());
        Model {
            d: Driver::new(gateway),
            config,
            conns: Vec::new(),
            clients: (0..CLIENTS).map(|_| Client::default()).collect(),
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
            model.prune();
            model.check();
        }
        model.finish();
        model
    }

    /// One operation.
    fn step(&mut self, input: &mut Input<'_>) {
        let c = usize::from(input.byte()) % CLIENTS;
        let now = self.d.now();
        match input.byte() % 16 {
            0 => self.d.advance_to(now + Millis(u64::from(input.byte()))),
            1 => self.d.advance_to(now + Millis(u64::from(input.u16()))),
            2 => {
                let by = Millis(u64::from(input.u16()) << (input.byte() % 24));
                self.d.jump_to(now + by);
            }
            3 => {
                self.connect(c, "/");
            }
            4 => self.identify(c),
            5 => self.resume(c),
            6 => self.resume_at_upgrade(c),
            7 | 8 => self.client_send(c, r#"{"f":120}"#, true),
            9 => self.client_send(c, r#"{"f":130,"t":"EVENT"}"#, false),
            10 | 11 => {
                let (k, size) = (usize::from(input.byte()), usize::from(input.byte()));
                self.dispatch(k, size);
            }
            12 | 13 => self.read(c),
            14 => {
                if let Some(id) = self.live_conn(c) {
                    self.d.disconnect(id);
                }
            }
            _ => self.check_since(input.u16()),
        }
    }

    /// The client's connection, if the server has not closed it.
    fn live_conn(&self, c: usize) -> Option<ConnId> {
        self.clients[c].conn.filter(|&id| self.d.is_open(id))
    }

    /// The client opens a new connection (with `target`); an old one is abandoned,
    /// half-open (it lives on until its deadlines close it, and the client reads nothing
    /// more from it). Nothing happens when every slot is taken.
    fn connect(&mut self, c: usize, target: &str) -> Option<ConnId> {
        if self.conns.len() >= MAX_CONNS {
            return None;
        }
        let id = self.d.connect(target).ok()?;
        self.conns.push(Conn {
            id,
            created: self.d.now(),
            commands: 0,
            heartbeats: 0,
        });
        self.clients[c].conn = Some(id);
        Some(id)
    }

    /// The client's connection for an identify or resume: its own unless that one has
    /// identified, else a fresh one.
    fn fresh_conn(&mut self, c: usize) -> Option<ConnId> {
        match self.live_conn(c) {
            Some(id) if self.d.session_of(id).is_none() => Some(id),
            _ => self.connect(c, "/"),
        }
    }

    /// Sends a client message, and checks the rate limits against what passed them (a
    /// message not answered with the rate-limit error). Returns the frames it caused.
    fn send(&mut self, id: ConnId, text: &str, heartbeat: bool) -> Vec<String> {
        let before = self.d.frames(id).len();
        self.d.send(id, text);
        let new: Vec<String> = self.d.frames(id)[before..].to_vec();
        let limited = new
            .iter()
            .any(|f| error_code(&json(f)) == Some(RATE_LIMITED));
        let (now, config) = (self.d.now(), &self.config);
        let Some(conn) = self.conns.iter_mut().find(|t| t.id == id) else {
            return new;
        };
        if !limited {
            // A token bucket of `cap` per `window`, full at the start, allows at most
            // cap + elapsed * cap / window takes.
            let (count, cap, window) = if heartbeat {
                conn.heartbeats += 1;
                let (burst, interval) = (config.heartbeat_burst, config.heartbeat_interval);
                (conn.heartbeats, burst, interval)
            } else {
                conn.commands += 1;
                let limit = config.rate_limit;
                (conn.commands, limit.commands, limit.window)
            };
            let cap = u64::from(cap);
            let bound = cap + (now.0 - conn.created.0) * cap / window.0;
            assert!(
                count <= bound,
                "{count} admitted over the rate limit's {bound}"
            );
        }
        new
    }

    fn client_send(&mut self, c: usize, text: &str, heartbeat: bool) {
        if let Some(id) = self.live_conn(c) {
            self.send(id, text, heartbeat);
        }
    }

    /// The client identifies: a new session, or a refusal.
    fn identify(&mut self, c: usize) {
        let Some(id) = self.fresh_conn(c) else {
            return;
        };
        let text = format!(r#"{{"f":110,"cnf":{{"token":"c{c}"}}}}"#);
        self.send(id, &text, false);
        if self.d.session_of(id).is_some() {
            self.stats.identified += 1;
            self.clients[c].last = 0;
        }
        self.read(c);
    }

    /// The client resumes its session with the last sequence it read (a stranger's
    /// session number when it has none, which must be refused).
    fn resume(&mut self, c: usize) {
        let Some(id) = self.fresh_conn(c) else {
            return;
        };
        let (sid, seen) = match self.clients[c].session {
            Some(sid) => (sid, self.clients[c].last),
            None => (u64::MAX, 0),
        };
        let cnf = format!(r#"{{"token":"c{c}","session_id":{sid},"s":{seen}}}"#);
        self.send(id, &format!(r#"{{"f":110,"cnf":{cnf}}}"#), false);
        self.read(c);
        if self.d.session_of(id) == Some(SessionId::new(sid)) {
            assert_eq!(self.clients[c].session, Some(sid), "resumed a stranger's");
            let seq = self.seq(sid);
            // `read` saw seen + 1, seen + 2, ... in order; all of them, up to seq.
            assert_eq!(
                self.clients[c].last, seq,
                "a resume from {seen} replayed short"
            );
            self.stats.resumed += 1;
            self.stats.replayed += seq - seen;
        }
    }

    /// A resume decided at the upgrade, without a client sequence (`Admit::Resume`): it
    /// replays from where the server detached the session.
    fn resume_at_upgrade(&mut self, c: usize) {
        let Some(sid) = self.clients[c].session else {
            return;
        };
        let Some(id) = self.connect(c, &format!("/?resume={sid}")) else {
            return;
        };
        let frames = self.d.take_frames(id);
        if self.d.session_of(id) != Some(SessionId::new(sid)) {
            return self.absorb(c, &frames);
        }
        let replayed: Vec<u64> = frames
            .iter()
            .map(|f| json(f))
            .filter(|v| v["f"] == 130)
            .map(|v| v["s"].as_u64().expect("a sequence number"))
            .collect();
        let seq = self.seq(sid);
        let from = seq - replayed.len() as u64;
        let last = self.clients[c].last;
        assert!(
            from >= last,
            "replays from {from} after the client read {last}"
        );
        assert_eq!(
            replayed,
            (from + 1..=seq).collect::<Vec<_>>(),
            "replay not (from, seq]"
        );
        self.stats.unreplayable += from - last;
        self.stats.resumed += 1;
        self.stats.replayed += replayed.len() as u64;
        self.stats.read += replayed.len() as u64;
        self.clients[c].last = seq;
    }

    /// The session's last sequence number.
    fn seq(&self, sid: u64) -> u64 {
        let record = self.d.gateway.registry().get(SessionId::new(sid));
        record.expect("a live session").seq
    }

    /// The server dispatches an event of about `size` bytes to client `k`'s session, or
    /// (`k` ≥ 224) to every session.
    fn dispatch(&mut self, k: usize, size: usize) {
        let data = format!("\"{}\"", "x".repeat(size));
        if k >= 224 {
            self.d.command(GwCommand::DispatchAll("E".into(), data));
        } else if let Some(sid) = self.clients[k % CLIENTS].session {
            let sid = SessionId::new(sid);
            self.d.command(GwCommand::Dispatch(sid, "E".into(), data));
        }
    }

    /// The client reads what its connection got (also after the server closed it).
    fn read(&mut self, c: usize) {
        if let Some(id) = self.clients[c].conn {
            let frames = self.d.take_frames(id);
            self.absorb(c, &frames);
        }
    }

    /// What a client makes of the frames it reads.
    fn absorb(&mut self, c: usize, frames: &[String]) {
        for frame in frames {
            let v = json(frame);
            let client = &mut self.clients[c];
            match v["f"].as_u64() {
                Some(130) => {
                    let seq = v["s"].as_u64().expect("a sequence number");
                    assert_eq!(seq, client.last + 1, "read {seq} after {}", client.last);
                    client.last = seq;
                    self.stats.read += 1;
                }
                Some(140) => {
                    client.session = v["cnf"]["session_id"].as_u64();
                    if v["cnf"]["resumed"] != true {
                        client.last = 0;
                    }
                }
                Some(150) => match error_code(&v) {
                    Some(INVALID_SESSION) => {
                        client.session = None;
                        self.stats.refused += 1;
                    }
                    Some(TOO_MANY_SESSIONS) => self.stats.refused += 1,
                    _ => {}
                },
                Some(160) => self.stats.probes += 1,
                _ => {}
            }
        }
    }

    /// Forgets the connections the server closed, counting why.
    fn prune(&mut self) {
        let d = &self.d;
        let (open, closed): (Vec<Conn>, Vec<Conn>) = std::mem::take(&mut self.conns)
            .into_iter()
            .partition(|t| d.is_open(t.id));
        self.conns = open;
        for conn in closed {
            let probes = d.frames(conn.id).iter().filter(|f| *f == PROBE).count();
            self.stats.probes += probes as u64;
            match d.close_of(conn.id) {
                Some((code, _)) if code.0 == SESSION_REPLACED => self.stats.replaced += 1,
                Some((_, "heartbeat timeout" | "not authenticated in time")) => {
                    self.stats.expired += 1;
                }
                _ => {}
            }
        }
        self.stats.dropped = self.d.gateway.handler().ended;
    }

    /// A resume from an arbitrary sequence (a confused or lying client), against the
    /// first client's session: exactly `(seen, seq]`, or refused when that is not all held.
    fn check_since(&self, seen: u16) {
        let seen = u64::from(seen);
        let registry = self.d.gateway.registry();
        let Some(record) = self
            .clients
            .iter()
            .filter_map(|c| registry.get(SessionId::new(c.session?)))
            .next()
        else {
            return;
        };
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
        let now = self.d.now();
        for conn in &self.conns {
            if let Some(at) = self.d.conn_deadline(conn.id) {
                assert!(at > now, "deadline {at} not after now {now}");
            }
        }
        let registry = self.d.gateway.registry();
        for conn in &self.conns {
            // A live connection's session is held, and held as live on it: a live session
            // is never evicted, and a replaced or ended one is unhooked from its connection.
            if let Some(sid) = self.d.session_of(conn.id) {
                let record = registry
                    .get(sid)
                    .expect("a live connection's session evicted");
                assert_eq!(record.conn, Some(conn.id), "a session live elsewhere");
            }
        }
        let mut live = 0;
        for sid in registry.ids() {
            let r = registry.get(sid).expect("listed session");
            live += usize::from(r.conn.is_some());
            let held = r.replay.len();
            assert!(held <= self.config.replay_events, "{held} events held");
            let bytes = r.replay.bytes();
            let bound = self.config.replay_bytes;
            assert!(bytes <= bound || held == 1, "{bytes} bytes held");
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
            let held = registry.owner_sessions(&owner_of(c));
            let quota = self.config.max_sessions_per_owner;
            assert!(
                held <= quota,
                "owner of client {c} holds {held} over {quota}"
            );
        }
        self.peak_live = self.peak_live.max(live);
        let bound = self.config.max_sessions.max(self.peak_live);
        assert!(
            registry.len() <= bound,
            "{} sessions over {bound}",
            registry.len()
        );
    }

    /// At the end, a client still attached reads what is in flight and has seen all.
    fn finish(&mut self) {
        for c in 0..CLIENTS {
            let (Some(id), Some(sid)) = (self.live_conn(c), self.clients[c].session) else {
                continue;
            };
            let registry = self.d.gateway.registry();
            let Some(record) = registry.get(SessionId::new(sid)) else {
                continue;
            };
            if record.conn == Some(id) {
                let seq = record.seq;
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
