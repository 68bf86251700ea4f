//! The chat-rooms gateway (seed 003) on postern: participants connect to
//! `/gateway?roomId=R&participantId=P`, heartbeat, answer probes, and receive the room's
//! events, which an admin creates through a small REST API on the same port.
//!
//! ```text
//! cargo run --release --example rooms -- --listen 127.0.0.1:9003 --admin-token SECRET
//! ```
//!
//! Options (`--help` lists them with their defaults): `--admin-token T` (default: a random
//! token, printed), `--heartbeat-ms N` (default 30000), `--max-closed-rooms N` (default
//! 100000: closed rooms remembered, the oldest forgotten first), and what every example
//! takes (`--listen ADDR`, default 127.0.0.1:9003, and the connection limits; see
//! `examples/support/serve.rs`). Prints `listening on ADDR`
//! on stderr when ready. The protocol, the REST API and every close code:
//! docs/protocols/rooms.md.

#[path = "support/serve.rs"]
mod serve;
#[path = "support/wall_clock.rs"]
mod wall_clock;

use clap::builder::NonEmptyStringValueParser;
use clap::Parser;
use postern::gateway::dialects::rooms::{code, event, write_packet, Rooms, SERVER_HEARTBEAT};
use postern::gateway::secret::secret_eq;
use postern::gateway::SessionId;
use postern::gateway::{
    Admit, DecodeError, Gateway, GatewayConfig, GatewayError, Gw, Handler, ProbePolicy,
};
use postern::http::percent_decode;
use postern::{Config, ConnId, Millis, Request, Response};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::process::ExitCode;
use std::rc::Rc;

/// The WebSocket endpoint.
const GATEWAY_PATH: &str = "/gateway";
/// Longest room or participant id, in bytes.
const MAX_ID: usize = 256;

/// Who a connection is (the engine session's state).
struct Participant {
    room: String,
    id: String,
}

/// One room: its settings, who is online (one session per socket), who may not come back.
#[derive(Default)]
struct Room {
    chat_locked: bool,
    room_locked: bool,
    /// 0: no limit.
    max_participants: u32,
    webhook: Option<String>,
    online: BTreeMap<String, Vec<SessionId>>,
    kicked: BTreeSet<String>,
    banned: BTreeSet<String>,
    /// Whether the admin changed the room (an untouched room is forgotten once empty).
    touched: bool,
}

impl Room {
    fn forgettable(&self) -> bool {
        self.online.is_empty() && !self.touched && self.kicked.is_empty() && self.banned.is_empty()
    }
}

/// The rooms closed by the admin, remembered so that they stay closed (410): the last
/// `most` of them, the oldest forgotten first (a forgotten room can be joined again, as a
/// new room). Without the bound every room ever closed would be kept for good.
struct ClosedRooms {
    set: HashSet<Rc<str>>,
    order: VecDeque<Rc<str>>,
    most: usize,
}

impl ClosedRooms {
    fn new(most: usize) -> Self {
        ClosedRooms {
            set: HashSet::new(),
            order: VecDeque::new(),
            most,
        }
    }

    fn contains(&self, room: &str) -> bool {
        self.set.contains(room)
    }

    /// Remembers `room` as closed, forgetting the oldest closed room past the bound.
    fn insert(&mut self, room: &str) {
        if self.set.contains(room) {
            return;
        }
        let room: Rc<str> = Rc::from(room);
        self.set.insert(Rc::clone(&room));
        self.order.push_back(room);
        while self.order.len() > self.most {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }
}

/// The rooms server.
struct RoomsServer {
    admin_token: String,
    /// How often the server heartbeats: 0.85 of the announced interval, so that a client
    /// timing out after exactly one silent interval never trips on jitter.
    heartbeat: Millis,
    rooms: HashMap<String, Room>,
    closed: ClosedRooms,
}

/// The server's own heartbeat, per session.
struct Beat(SessionId);

fn text(status: u16, body: &str) -> Response {
    Response::text(status, format!("{body}\n"))
}

fn reject(status: u16, body: &str) -> Admit<Participant> {
    Admit::Reject(text(status, body))
}

/// Dispatches packet `id` with `data` to the room; the REST answer is the same packet.
fn broadcast(
    gw: &mut Gw<'_, '_, RoomsServer>,
    room: &str,
    id: u8,
    data: &impl Serialize,
) -> Response {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    let _ = gw.dispatch_room(room, &id.to_string(), &data, None);
    let mut packet = String::new();
    write_packet(&mut packet, id, &data);
    Response::json(200, packet)
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| text(400, &format!("invalid body: {e}")))
}

/// `POST /rooms/R/messages` body; with `sentAt`, the message_create data.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Message {
    author_id: String,
    content: String,
    #[serde(skip_deserializing)]
    sent_at: u64,
}

/// `PATCH /rooms/R` body and room_update data: the settings given, in this order.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RoomChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    chat_locked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    room_locked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_participants: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discord_webhook_link: Option<String>,
}

/// `PATCH /rooms/R/participants/P` body; with `userId`, the participant_update data.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ParticipantChanges {
    #[serde(skip_deserializing, rename = "userId")]
    user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    banned: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin: Option<bool>,
}

impl RoomsServer {
    /// Why `who` may not join `room` now: (status, reason).
    fn refusal(&self, room: &str, who: &str) -> Option<(u16, &'static str)> {
        if self.closed.contains(room) {
            return Some((410, "room is closed"));
        }
        let r = self.rooms.get(room)?;
        let present = r.online.contains_key(who);
        let full = r.max_participants > 0 && r.online.len() >= r.max_participants as usize;
        if r.banned.contains(who) {
            Some((403, "banned from this room"))
        } else if r.kicked.contains(who) {
            Some((403, "kicked from this room"))
        } else if r.room_locked && !present {
            Some((403, "room is locked"))
        } else if full && !present {
            Some((409, "room is full"))
        } else {
            None
        }
    }

    /// Forgets a session that ended.
    fn forget(&mut self, session: SessionId, p: &Participant) {
        let Some(room) = self.rooms.get_mut(&p.room) else {
            return;
        };
        if let Some(sessions) = room.online.get_mut(&p.id) {
            sessions.retain(|&s| s != session);
            if sessions.is_empty() {
                room.online.remove(&p.id);
            }
        }
        if room.forgettable() {
            self.rooms.remove(&p.room);
        }
    }

    /// Closes every socket of `who` in `room` (all of them when `who` is `None`).
    fn disconnect(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        room: &str,
        who: Option<&str>,
        c: postern::CloseCode,
        why: &'static str,
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        let sessions = match who {
            Some(who) => r.online.remove(who).unwrap_or_default(),
            None => std::mem::take(&mut r.online)
                .into_values()
                .flatten()
                .collect(),
        };
        for s in sessions {
            gw.end_session(s, &GatewayError::app(c, true, why));
        }
        if r.forgettable() {
            self.rooms.remove(room);
        }
    }

    fn authorized(&self, request: &Request<'_, '_>) -> bool {
        let auth = request
            .header_str("Authorization")
            .and_then(|v| v.split_once(' '));
        auth.is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("Bearer")
                && secret_eq(token.trim().as_bytes(), self.admin_token.as_bytes())
        })
    }

    /// The REST API below `/rooms/`, authorised, on an open room.
    fn rest(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        method: &str,
        path: &[&str],
        body: &[u8],
    ) -> Result<Response, Response> {
        let not_allowed = |allow: &str| Err(text(405, "method not allowed").header("Allow", allow));
        let Some((&room, route)) = path.split_first() else {
            return Err(text(404, "not found"));
        };
        Ok(match (method, route) {
            ("GET", []) => {
                let r = self
                    .rooms
                    .get(room)
                    .ok_or_else(|| text(404, "no such room"))?;
                let state = serde_json::json!({
                    "roomId": room, "chatLocked": r.chat_locked, "roomLocked": r.room_locked,
                    "maxParticipants": r.max_participants, "discordWebhookLink": r.webhook,
                    "participants": r.online.keys().collect::<Vec<_>>(),
                    "kicked": r.kicked, "banned": r.banned,
                });
                Response::json(200, state.to_string())
            }
            ("POST", ["messages"]) => {
                let mut m: Message = parse(body)?;
                if m.author_id.is_empty() {
                    return Err(text(400, "authorId must not be empty"));
                }
                m.sent_at = wall_clock::unix_ms();
                broadcast(gw, room, event::MESSAGE_CREATE, &m)
            }
            ("PATCH", []) => {
                let c: RoomChanges = parse(body)?;
                if c.chat_locked.or(c.room_locked).is_none()
                    && c.max_participants.is_none()
                    && c.discord_webhook_link.is_none()
                {
                    return Err(text(400, "nothing to update: give chatLocked, roomLocked, maxParticipants or discordWebhookLink"));
                }
                let r = self.rooms.entry(room.to_owned()).or_default();
                r.touched = true;
                r.chat_locked = c.chat_locked.unwrap_or(r.chat_locked);
                r.room_locked = c.room_locked.unwrap_or(r.room_locked);
                r.max_participants = c.max_participants.unwrap_or(r.max_participants);
                r.webhook = c.discord_webhook_link.clone().or(r.webhook.take());
                broadcast(gw, room, event::ROOM_UPDATE, &c)
            }
            ("DELETE", []) => {
                self.closed.insert(room);
                let sent = broadcast(gw, room, event::ROOM_CLOSE, &serde_json::json!({}));
                self.disconnect(gw, room, None, code::ROOM_CLOSED, "room closed");
                self.rooms.remove(room);
                sent
            }
            ("PATCH", ["participants", who]) => {
                let mut c: ParticipantChanges = parse(body)?;
                if c.banned.or(c.color).or(c.admin).is_none() {
                    return Err(text(400, "nothing to update: give banned, color or admin"));
                }
                c.user_id = (*who).to_owned();
                let r = self.rooms.entry(room.to_owned()).or_default();
                match c.banned {
                    Some(true) => r.banned.insert(c.user_id.clone()),
                    Some(false) => r.banned.remove(*who),
                    None => false,
                };
                let sent = broadcast(gw, room, event::PARTICIPANT_UPDATE, &c);
                if c.banned == Some(true) {
                    self.disconnect(gw, room, Some(who), code::BANNED, "banned");
                }
                sent
            }
            ("DELETE", ["participants", who]) => {
                let r = self.rooms.entry(room.to_owned()).or_default();
                r.kicked.insert((*who).to_owned());
                let sent = broadcast(
                    gw,
                    room,
                    event::PARTICIPANT_KICK,
                    &serde_json::json!({"userId": who}),
                );
                self.disconnect(gw, room, Some(who), code::KICKED, "kicked");
                sent
            }
            (_, []) => return not_allowed("GET, PATCH, DELETE"),
            (_, ["messages"]) => return not_allowed("POST"),
            (_, ["participants", _]) => return not_allowed("PATCH, DELETE"),
            _ => return Err(text(404, "not found")),
        })
    }
}

impl Handler for RoomsServer {
    type Dialect = Rooms;
    type Session = Participant;
    type Timer = Beat;
    type Command = ();

    fn on_upgrade(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        request: &Request<'_, '_>,
    ) -> Admit<Participant> {
        if request.path() != GATEWAY_PATH {
            return reject(404, "not found");
        }
        let param = |name| request.query_param(name).filter(|v| !v.is_empty());
        let (Some(room), Some(who)) = (param("roomId"), param("participantId")) else {
            let names = ["roomId", "participantId"];
            let missing: Vec<&str> = names.into_iter().filter(|n| param(n).is_none()).collect();
            let s = if missing.len() > 1 { "s" } else { "" };
            let why = format!(
                "missing or empty query parameter{s}: {}",
                missing.join(", ")
            );
            return reject(400, &why);
        };
        let (room, who) = (room.into_owned(), who.into_owned());
        if room.len() > MAX_ID || who.len() > MAX_ID {
            return reject(400, "roomId and participantId are at most 256 bytes");
        }
        match self.refusal(&room, &who) {
            Some((status, why)) => reject(status, why),
            None => Admit::Identified(Participant { room, id: who }),
        }
    }

    fn identify(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        _: &serde_json::value::RawValue,
    ) -> Result<Participant, GatewayError> {
        // The dialect never decodes an identify: the upgrade's query identifies.
        Err(GatewayError::NotIdentified)
    }

    fn on_ready(&mut self, gw: &mut Gw<'_, '_, Self>, session: SessionId, _: bool) {
        let Some(p) = gw.session(session) else { return };
        let (room, who) = (p.room.clone(), p.id.clone());
        gw.join(session, &room);
        let r = self.rooms.entry(room).or_default();
        r.online.entry(who).or_default().push(session);
        let at = gw.now() + self.heartbeat;
        gw.set_timer(at, Beat(session));
    }

    fn on_event(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: SessionId,
        event: &str,
        _: Option<&serde_json::value::RawValue>,
    ) -> Result<(), GatewayError> {
        // The dialect decodes no client event besides heartbeats.
        Err(GatewayError::Decode(DecodeError::UnknownOp(
            event.to_owned(),
        )))
    }

    fn on_detach(&mut self, gw: &mut Gw<'_, '_, Self>, session: SessionId) {
        // No resume in this protocol: a lost connection ends its session at once.
        if let Some(p) = gw.end_session(session, &GatewayError::HeartbeatTimeout) {
            self.forget(session, &p);
        }
    }

    fn on_session_end(&mut self, _: &mut Gw<'_, '_, Self>, session: SessionId, p: Participant) {
        self.forget(session, &p);
    }

    fn on_timer(&mut self, gw: &mut Gw<'_, '_, Self>, Beat(session): Beat) {
        if gw.send_raw_to(session, SERVER_HEARTBEAT).is_ok() {
            let at = gw.now() + self.heartbeat;
            gw.set_timer(at, Beat(session));
        }
    }

    fn on_http(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        request: &Request<'_, '_>,
        body: &[u8],
    ) -> Response {
        let path = request.path();
        if path == GATEWAY_PATH {
            return text(426, "this endpoint speaks WebSocket").header("Upgrade", "websocket");
        }
        let Some(rest) = path.strip_prefix("/rooms/") else {
            return text(404, "not found");
        };
        if !self.authorized(request) {
            return text(401, "missing or wrong admin token").header("WWW-Authenticate", "Bearer");
        }
        // The reactor refuses (400) a target that does not decode to UTF-8 before it gets
        // here; checked again so that two ids can never decode to the same one.
        let decoded: Result<Vec<String>, _> = rest
            .split('/')
            .map(|s| percent_decode(s).map(Cow::into_owned))
            .collect();
        let Ok(decoded) = decoded else {
            return text(400, "path segment is not UTF-8 once percent-decoded");
        };
        let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
        match segments[..] {
            [room, ..] if room.is_empty() || room.len() > MAX_ID => text(404, "not found"),
            [_, "participants", who] if who.is_empty() || who.len() > MAX_ID => {
                text(404, "not found")
            }
            [room] | [room, "messages"] | [room, "participants", _]
                if self.closed.contains(room) =>
            {
                text(410, "room is closed")
            }
            _ => self
                .rest(gw, request.method(), &segments, body)
                .unwrap_or_else(|refusal| refusal),
        }
    }
}

/// The chat-rooms gateway (seed 003): docs/protocols/rooms.md.
#[derive(Parser, Debug)]
#[command(name = "rooms")]
struct Cli {
    /// The REST API's bearer token [default: random, printed on stderr]
    #[arg(long, value_name = "T", value_parser = NonEmptyStringValueParser::new(),
          allow_hyphen_values = true)]
    admin_token: Option<String>,
    /// The heartbeat interval (10 to 86400000; values outside are taken as the nearer bound)
    #[arg(long = "heartbeat-ms", value_name = "N", default_value_t = 30_000)]
    heartbeat: u64,
    /// Closed rooms remembered (they answer 410); the oldest is forgotten first
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_closed_rooms: usize,
    #[command(flatten)]
    serve: serve::ServeOptions,
}

fn main() -> ExitCode {
    let cli: Cli = serve::parse("127.0.0.1:9003");
    let Some(admin_token) =
        serve::secret_or_random(cli.admin_token, "--admin-token", "admin token", 16)
    else {
        eprintln!("rooms: no randomness for an admin token");
        return ExitCode::FAILURE;
    };
    let interval = Millis(cli.heartbeat.clamp(10, 86_400_000));
    let mut gateway_config = GatewayConfig::with_heartbeat(interval);
    // Liveness (docs/protocols/rooms.md): any message is proof of life; a probe after a
    // whole interval of silence, answered (by any message) within one more; so a silent
    // peer is closed with 4009 two intervals after the last thing it sent.
    gateway_config.heartbeat_grace = interval;
    gateway_config.probe = Some(ProbePolicy::per_interval(interval));
    let server = RoomsServer {
        admin_token,
        heartbeat: gateway_config.server_heartbeat_period(),
        rooms: HashMap::new(),
        closed: ClosedRooms::new(cli.max_closed_rooms),
    };
    let gateway = Gateway::new(server, Rooms, gateway_config);
    let config = cli.serve.config(Config::default());
    serve::serve("rooms", &cli.serve, config, gateway)
}
