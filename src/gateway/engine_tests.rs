//! The engine's lifecycle through the in-memory driver: a fake clock, no sockets, no
//! sleeps. The dialect is seed 004's (`I386`): `{"f":110}` identifies or resumes, 120 is a
//! heartbeat, 130 an event (sequenced `{"f":130,"s":n,...}` from the server), 140 READY,
//! 150 an error `{"c":code,"d":fatal}` followed by a close with that code when fatal.

use super::*;
use crate::close::CloseCode;
use crate::gateway::config::{DuplicatePolicy, ProbePolicy, RateLimit};
use crate::gateway::dialects::i386::{code, I386};
use crate::gateway::driver::Driver;
use crate::gateway::{DecodeError, Gw, Owner};
use crate::time::Millis;
use std::net::SocketAddr;

/// Sessions owned by the token they identified with; every session joins room "all";
/// event `SAY` is dispatched to the room, `ME` to the sender alone.
struct Chat<D = I386> {
    ended: Vec<String>,
    dialect: std::marker::PhantomData<D>,
}

impl<D> Default for Chat<D> {
    fn default() -> Self {
        Chat {
            ended: Vec::new(),
            dialect: std::marker::PhantomData,
        }
    }
}

/// Seed 004's dialect with a visible probe, `{"f":160}` (seed 004 has none).
struct Probing;

const PROBE: &str = r#"{"f":160}"#;

impl Dialect for Probing {
    fn decode<'a>(&self, text: &'a str) -> Result<Op<'a>, DecodeError> {
        I386.decode(text)
    }
    fn hello(&self, out: &mut String, interval: Millis) {
        I386.hello(out, interval);
    }
    fn ready(&self, out: &mut String, ready: &crate::gateway::Ready<'_>) {
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
    fn answer(&self, error: &GatewayError) -> crate::gateway::Answer {
        I386.answer(error)
    }
}

impl<D: Dialect> Handler for Chat<D> {
    type Dialect = D;
    type Session = String;
    type Timer = ();
    type Command = ();

    fn identify(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        payload: &RawValue,
    ) -> Result<String, GatewayError> {
        let v: serde_json::Value = serde_json::from_str(payload.get()).unwrap_or_default();
        match v["token"].as_str() {
            Some(token) => Ok(token.to_string()),
            None => Err(GatewayError::AuthenticationFailed),
        }
    }

    fn owner(&self, session: &String) -> Option<Owner> {
        Some(Owner::user(session))
    }

    fn resume(&mut self, session: &String, payload: &RawValue) -> bool {
        let v: serde_json::Value = serde_json::from_str(payload.get()).unwrap_or_default();
        v["token"].as_str() == Some(session.as_str())
    }

    fn on_ready(&mut self, gw: &mut Gw<'_, '_, Self>, session: SessionId, _: bool) {
        gw.join(session, "all");
    }

    fn on_event(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        session: SessionId,
        event: &str,
        data: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        let data = data.map_or("{}", RawValue::get);
        match event {
            "SAY" => {
                let _ = gw.dispatch_room("all", "SAID", data, None);
            }
            _ => {
                let _ = gw.dispatch(session, "ME", data);
            }
        }
        Ok(())
    }

    fn on_session_end(&mut self, _: &mut Gw<'_, '_, Self>, _: SessionId, state: String) {
        self.ended.push(state);
    }
}

fn config() -> GatewayConfig {
    let mut c = GatewayConfig::with_heartbeat(Millis(1_000));
    c.identify_timeout = Millis(5_000);
    c.resume_window = Millis(10_000);
    c
}

fn driver(config: GatewayConfig) -> Driver<Chat> {
    Driver::new(Gateway::new(Chat::default(), I386, config))
}

fn probing(config: GatewayConfig) -> Driver<Chat<Probing>> {
    Driver::new(Gateway::new(Chat::default(), Probing, config))
}

fn json(frame: &str) -> serde_json::Value {
    serde_json::from_str(frame).expect("a JSON frame")
}

/// Connects and identifies as `token`; returns the connection and the session id.
fn login<D: Dialect>(d: &mut Driver<Chat<D>>, token: &str) -> (ConnId, u64) {
    let id = d.connect("/").expect("upgraded");
    d.send(id, &format!(r#"{{"f":110,"cnf":{{"token":"{token}"}}}}"#));
    let frames = d.take_frames(id);
    let ready = json(frames.last().expect("READY"));
    assert_eq!(ready["f"], 140, "{frames:?}");
    (
        id,
        ready["cnf"]["session_id"].as_u64().expect("a session id"),
    )
}

fn resume(d: &mut Driver<Chat>, token: &str, sid: u64, seen: u64) -> ConnId {
    let id = d.connect("/").expect("upgraded");
    let _hello = d.take_frames(id);
    let cnf = format!(r#"{{"token":"{token}","session_id":{sid},"s":{seen}}}"#);
    d.send(id, &format!(r#"{{"f":110,"cnf":{cnf}}}"#));
    id
}

fn say(d: &mut Driver<Chat>, id: ConnId, n: u64) {
    d.send(id, &format!(r#"{{"f":130,"t":"SAY","cnf":{{"n":{n}}}}}"#));
}

/// The sequence numbers of the dispatches among `frames`.
fn seqs(frames: &[String]) -> Vec<u64> {
    let dispatches = frames.iter().map(|f| json(f)).filter(|v| v["f"] == 130);
    dispatches.map(|v| v["s"].as_u64().expect("s")).collect()
}

/// The error code of the last 150 frame, and whether it was fatal.
fn error_of(frames: &[String]) -> Option<(u64, bool)> {
    let v = frames.iter().map(|f| json(f)).rfind(|v| v["f"] == 150)?;
    Some((v["cnf"]["c"].as_u64()?, v["cnf"]["d"].as_bool()?))
}

#[test]
fn hello_identify_ready_and_sequenced_dispatches() {
    let mut d = driver(config());
    let id = d.connect("/").unwrap();
    assert_eq!(d.take_frames(id), [r#"{"f":100,"cnf":{"hb_int":1000}}"#]);
    d.send(id, r#"{"f":110,"cnf":{"token":"a"}}"#);
    assert_eq!(json(&d.take_frames(id)[0])["f"], 140);
    for n in 0..3 {
        say(&mut d, id, n);
    }
    assert_eq!(seqs(&d.take_frames(id)), [1, 2, 3]);
    d.send(id, r#"{"f":120}"#);
    assert_eq!(d.take_frames(id), [r#"{"f":120}"#]);
}

#[test]
fn resume_within_the_window_replays_exactly_what_was_missed() {
    let mut d = driver(config());
    let (a, sid) = login(&mut d, "a");
    let (b, _) = login(&mut d, "b");
    say(&mut d, b, 1);
    assert_eq!(seqs(&d.take_frames(a)), [1]);
    d.disconnect(a);
    say(&mut d, b, 2);
    say(&mut d, b, 3);
    d.advance(Millis(2_000));
    let a2 = resume(&mut d, "a", sid, 1);
    let frames = d.take_frames(a2);
    let ready = json(&frames[0]);
    assert_eq!(
        (ready["f"].as_u64(), ready["cnf"]["resumed"].as_bool()),
        (Some(140), Some(true))
    );
    assert_eq!(seqs(&frames), [2, 3]);
    say(&mut d, b, 4);
    assert_eq!(seqs(&d.take_frames(a2)), [4]);
}

#[test]
fn resume_beyond_the_window_is_an_invalid_session() {
    let mut d = driver(config());
    let (a, sid) = login(&mut d, "a");
    d.disconnect(a);
    d.advance(Millis(10_000));
    assert_eq!(d.gateway.session_count(), 0, "the window ended the session");
    assert_eq!(d.gateway.handler().ended, ["a"]);
    let a2 = resume(&mut d, "a", sid, 0);
    let frames = d.take_frames(a2);
    assert_eq!(
        error_of(&frames),
        Some((u64::from(code::INVALID_SESSION.0), false))
    );
    assert!(
        d.is_open(a2),
        "invalid session is not fatal in this dialect"
    );
}

#[test]
fn a_replay_gap_is_an_invalid_session() {
    let mut c = config();
    c.replay_events = 2;
    let mut d = driver(c);
    let (a, sid) = login(&mut d, "a");
    let (b, _) = login(&mut d, "b");
    d.disconnect(a);
    for n in 0..4 {
        say(&mut d, b, n);
    }
    // Seen 0, but only 3 and 4 are held: a gap.
    let a2 = resume(&mut d, "a", sid, 0);
    assert_eq!(
        error_of(&d.take_frames(a2)),
        Some((u64::from(code::INVALID_SESSION.0), false))
    );
    // From 2, all that is missed is held.
    let a3 = resume(&mut d, "a", sid, 2);
    assert_eq!(seqs(&d.take_frames(a3)), [3, 4]);
}

#[test]
fn taking_over_a_live_session_closes_the_old_connection() {
    let mut d = driver(config());
    let (a, sid) = login(&mut d, "a");
    let a2 = resume(&mut d, "a", sid, 0);
    assert_eq!(json(&d.take_frames(a2)[0])["cnf"]["resumed"], true);
    assert_eq!(d.close_of(a).map(|(c, _)| c), Some(code::SESSION_REPLACED));
    assert_eq!(
        d.gateway.registry().get(SessionId::new(sid)).unwrap().conn,
        Some(a2)
    );
    assert_eq!(d.gateway.handler().ended, Vec::<String>::new());
}

#[test]
fn refuse_new_keeps_the_live_connection() {
    let mut c = config();
    c.duplicate = DuplicatePolicy::RefuseNew;
    let mut d = driver(c);
    let (a, sid) = login(&mut d, "a");
    let a2 = resume(&mut d, "a", sid, 0);
    assert_eq!(
        d.close_of(a2).map(|(c, _)| c),
        Some(code::ALREADY_CONNECTED)
    );
    assert!(d.is_open(a));
}

#[test]
fn max_sessions_evicts_a_detached_session() {
    let mut c = config();
    c.max_sessions = 3;
    let mut d = driver(c);
    let (a, sid_a) = login(&mut d, "a");
    let (_a2, _) = login(&mut d, "a");
    let (_b, _) = login(&mut d, "b");
    d.disconnect(a);
    // a holds 2 of 3 sessions, over its fair share (1 of 3 among a, b and c).
    let (_c, _) = login(&mut d, "c");
    assert_eq!(d.gateway.session_count(), 3);
    assert_eq!(
        d.gateway.handler().ended,
        ["a"],
        "the detached session made room"
    );
    let a2 = resume(&mut d, "a", sid_a, 0);
    assert_eq!(
        error_of(&d.take_frames(a2)),
        Some((u64::from(code::INVALID_SESSION.0), false))
    );
    // With every session live, a newcomer is refused.
    let id = d.connect("/").unwrap();
    d.send(id, r#"{"f":110,"cnf":{"token":"d"}}"#);
    let refused = Some(code::TOO_MANY_SESSIONS);
    assert_eq!(d.close_of(id).map(|(c, _)| c), refused);
}

#[test]
fn the_per_owner_quota_evicts_the_owners_own_detached_session_only() {
    let mut c = config();
    c.max_sessions_per_owner = 1;
    let mut d = driver(c);
    let (a, _) = login(&mut d, "a");
    // All of a's sessions live: refused.
    let id = d.connect("/").unwrap();
    d.send(id, r#"{"f":110,"cnf":{"token":"a"}}"#);
    let refused = Some(code::TOO_MANY_SESSIONS);
    assert_eq!(d.close_of(id).map(|(c, _)| c), refused);
    let (_b, _) = login(&mut d, "b");
    // a's detached session gives way to a's new one; b's is untouched.
    d.disconnect(a);
    let (_a2, _) = login(&mut d, "a");
    assert_eq!(d.gateway.handler().ended, ["a"]);
    assert_eq!(d.gateway.session_count(), 2);
}

#[test]
fn an_upgrade_that_opens_a_session_is_refused_over_the_quota_with_429() {
    /// Identifies at the upgrade from `?token=`.
    struct AtUpgrade;
    impl Handler for AtUpgrade {
        type Dialect = I386;
        type Session = String;
        type Timer = ();
        type Command = ();
        fn on_upgrade(
            &mut self,
            _: &mut Gw<'_, '_, Self>,
            _: ConnId,
            request: &crate::http::Request<'_, '_>,
        ) -> Admit<String> {
            Admit::Identified(request.query_param("token").unwrap_or_default().into())
        }
        fn identify(
            &mut self,
            _: &mut Gw<'_, '_, Self>,
            _: ConnId,
            _: &RawValue,
        ) -> Result<String, GatewayError> {
            Err(GatewayError::AlreadyIdentified)
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
    }
    let mut c = config();
    c.max_sessions_per_owner = 1;
    let mut d = Driver::new(Gateway::new(AtUpgrade, I386, c));
    let peer: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    let first = d.connect_from(peer, "/?token=x").unwrap();
    assert_eq!(json(&d.take_frames(first)[1])["f"], 140);
    let refused = d.connect_from(peer, "/?token=y").unwrap_err();
    assert_eq!(refused.status, 429);
    // Another address is another owner.
    assert!(d.connect("/?token=z").is_ok());
}

#[test]
fn a_silent_client_is_closed_at_interval_plus_grace_after_it_was_last_heard() {
    let mut d = driver(config()); // interval 1000, grace 1500
    let (id, _) = login(&mut d, "a");
    let t0 = d.now();
    d.advance(Millis(2_000));
    d.send(id, r#"{"f":120}"#);
    let heard = d.now();
    d.advance(Millis(2_499));
    assert!(
        d.is_open(id),
        "still within 2.5 intervals of the last message"
    );
    assert!(d.step());
    assert_eq!(d.now(), heard + Millis(2_500));
    assert!(d.now() > t0 + Millis(2_500));
    let closed = d.close_of(id).map(|(c, _)| c);
    assert_eq!(closed, Some(code::SESSION_TIMED_OUT));
    assert_eq!(d.gateway.registry().len(), 1, "detached, resumable");
}

#[test]
fn the_identify_deadline_closes_a_client_that_never_identifies() {
    let mut d = driver(config());
    let t0 = d.now();
    let id = d.connect("/").unwrap();
    assert!(d.step());
    assert_eq!(d.now(), t0 + Millis(5_000));
    let closed = d.close_of(id).map(|(c, _)| c);
    assert_eq!(closed, Some(code::NOT_AUTHENTICATED));
    assert_eq!(d.drive(), 0, "nothing left pending");
}

#[test]
fn a_probe_goes_out_after_the_silence_and_an_unanswered_one_closes() {
    let mut c = config();
    c.heartbeat_required = false;
    c.probe = Some(ProbePolicy {
        after_silence: Millis(1_000),
        answer_within: Millis(400),
    });
    let mut d = probing(c);
    let (quiet, _) = login(&mut d, "q");
    let (answers, _) = login(&mut d, "a");
    let t0 = d.now();
    d.advance(Millis(999));
    assert!(d.frames(quiet).is_empty() && d.frames(answers).is_empty());
    assert!(d.step());
    assert_eq!(d.now(), t0 + Millis(1_000));
    assert_eq!(d.take_frames(quiet), [PROBE]);
    assert_eq!(d.take_frames(answers), [PROBE]);
    // Any message answers a probe; the next one comes after another silence.
    d.advance(Millis(100));
    d.send(answers, r#"{"f":130,"t":"ME"}"#);
    d.advance(Millis(299));
    assert!(d.is_open(quiet));
    assert!(d.step());
    assert_eq!(d.now(), t0 + Millis(1_400));
    assert_eq!(
        d.close_of(quiet).map(|(c, _)| c),
        Some(code::SESSION_TIMED_OUT)
    );
    assert!(d.is_open(answers));
    d.advance_to(t0 + Millis(2_099));
    assert_eq!(
        seqs(&d.take_frames(answers)),
        [1],
        "only its own event so far"
    );
    assert!(d.step());
    assert_eq!(d.now(), t0 + Millis(2_100));
    assert_eq!(d.take_frames(answers), [PROBE]);
}

#[test]
fn probes_never_close_a_client_that_keeps_talking() {
    let mut c = config();
    c.heartbeat_required = false;
    c.probe = Some(ProbePolicy::per_interval(Millis(1_000)));
    let mut d = probing(c);
    let (talker, _) = login(&mut d, "t");
    for _ in 0..10 {
        d.advance(Millis(900));
        d.send(talker, r#"{"f":120}"#);
    }
    assert!(d.is_open(talker));
    let frames = d.take_frames(talker);
    assert!(!frames.iter().any(|f| f == PROBE), "{frames:?}");
}

#[test]
fn the_rate_limit_answers_then_closes_the_abuser() {
    let mut c = config();
    c.rate_limit = RateLimit::new(2, Millis(60_000));
    c.rate_limit_slack = 1;
    let mut d = driver(c);
    let id = d.connect("/").unwrap();
    d.send(id, r#"{"f":110,"cnf":{"token":"a"}}"#); // 1
    d.send(id, r#"{"f":130,"t":"ME"}"#); // 2
    let _ = d.take_frames(id);
    d.send(id, r#"{"f":130,"t":"ME"}"#); // refused, within the slack
    let rate = u64::from(code::RATE_LIMITED.0);
    assert_eq!(error_of(&d.take_frames(id)), Some((rate, false)));
    assert!(d.is_open(id));
    d.send(id, r#"{"f":130,"t":"ME"}"#); // refused twice in a row: closed
    assert_eq!(error_of(&d.take_frames(id)), Some((rate, true)));
    assert_eq!(d.close_of(id).map(|(c, _)| c), Some(code::RATE_LIMITED));
}

#[test]
fn graceful_shutdown_says_goodbye_closes_and_ends_every_session() {
    let mut d = driver(config());
    let (a, _) = login(&mut d, "a");
    let (b, _) = login(&mut d, "b");
    d.disconnect(b);
    let pending = d.connect("/").unwrap();
    d.shutdown();
    let frames = d.take_frames(a);
    assert_eq!(json(&frames[0])["t"], "GATEWAY_DOWN");
    assert_eq!(seqs(&frames), [1]);
    assert_eq!(d.close_of(a).map(|(c, _)| c), Some(CloseCode::GOING_AWAY));
    assert_eq!(
        d.close_of(pending).map(|(c, _)| c),
        Some(CloseCode::GOING_AWAY)
    );
    // The live session ended with its connection; the detached one waits out its window.
    assert_eq!(d.gateway.handler().ended, ["a"]);
    assert_eq!(d.gateway.session_count(), 1);
}

/// The slow reader is evicted by the outbox (the reactor's, copied by the driver), not by
/// the engine: the engine's part is that the eviction detaches the session, which then
/// resumes with everything it missed, and that nobody else is held up.
#[test]
fn a_slow_member_is_evicted_and_its_session_resumes() {
    let mut d = driver(config());
    let (fast, _) = login(&mut d, "fast");
    let (slow, sid) = login(&mut d, "slow");
    d.stall(slow, 200);
    for n in 0..10 {
        say(&mut d, fast, n);
        let _ = d.take_frames(fast);
        d.send(fast, r#"{"f":120}"#);
    }
    assert_eq!(d.close_of(slow).map(|(c, _)| c), Some(CloseCode::POLICY));
    let read = seqs(&d.take_frames(slow));
    let last = *read.last().expect("read some");
    let again = resume(&mut d, "slow", sid, last);
    let replayed = seqs(&d.take_frames(again));
    assert_eq!(replayed, (last + 1..=10).collect::<Vec<_>>());
    assert!(d.is_open(fast));
}

#[test]
fn a_binary_message_is_a_decode_error() {
    let mut d = driver(config());
    let id = d.connect("/").unwrap();
    d.send_binary(id);
    let closed = d.close_of(id).map(|(c, _)| c);
    assert_eq!(closed, Some(code::DECODE_ERROR));
}

#[test]
fn commands_dispatch_and_end_sessions() {
    let mut d = driver(config());
    let (a, sid) = login(&mut d, "a");
    let sid = SessionId::new(sid);
    d.command(GwCommand::Dispatch(sid, "X".into(), "{}".into()));
    assert_eq!(seqs(&d.take_frames(a)), [1]);
    let error = GatewayError::app(4010, true, "banned");
    d.command(GwCommand::EndSession(sid, error));
    assert_eq!(d.close_of(a).map(|(c, _)| c), Some(CloseCode(4010)));
    assert_eq!(d.gateway.session_count(), 0);
    assert_eq!(d.gateway.handler().ended, ["a"]);
}
