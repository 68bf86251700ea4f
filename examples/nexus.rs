//! The Nexus music-player gateway (seed 000) on postern: a bot connects with a password and
//! its client id, identifies, gets an access token for the REST API on the same port, and is
//! sent voice payloads to forward to Discord and the events of a simulated player.
//!
//! ```text
//! cargo run --release --example nexus -- --password PW [--listen ADDR] [--heartbeat-ms N]
//! ```
//!
//! The protocol, every payload, close code and REST route: docs/protocols/nexus.md.

#[path = "support/player.rs"]
mod player;
#[path = "support/rest.rs"]
mod rest;
#[path = "support/serve.rs"]
mod serve;

use player::{EndReason, Event, Player, Refusal, Track, Voice, VoiceChange, VoicePayload, Wake};
use postern::gateway::dialects::nexus::{code, reason, Nexus};
use postern::gateway::{
    random_hex, secret_eq, Admit, DecodeError, Gateway, GatewayConfig, GatewayError, Gw, Handler,
    SessionId,
};
use postern::{Config, ConnId, Millis, Request, Response};
use rest::{error, ok, Obj};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::process::ExitCode;

/// Players held at once, all clients together.
const MAX_GUILDS: usize = 10_000;

/// An identified client (the session state).
struct Client {
    client_id: String,
    token: String,
}

/// One guild's player, owned by the client that joined its voice channel.
struct Guild {
    owner: SessionId,
    channel: Option<u64>,
    self_mute: bool,
    self_deaf: bool,
    voice: Voice,
    player: Player,
    wake: Wake,
}

/// The server.
struct NexusServer {
    password: String,
    /// Upgraded connections that have not identified yet, with their client id.
    pending: HashMap<ConnId, String>,
    /// Client id → its session.
    clients: HashMap<String, SessionId>,
    /// Access token → its session.
    tokens: HashMap<String, SessionId>,
    guilds: HashMap<u64, Guild>,
    next_track: u64,
}

type Answer = Result<Response, Response>;

fn fail(c: postern::CloseCode) -> GatewayError {
    GatewayError::app(c, true, reason(c))
}

fn decode_error(why: &str) -> GatewayError {
    GatewayError::Decode(DecodeError::Malformed(why.to_owned()))
}

fn track_json(t: &Track) -> String {
    let s = &t.spec;
    Obj::new()
        .num("id", t.id)
        .opt_str("title", s.title.as_deref())
        .opt_str("artist", s.artist.as_deref())
        .opt_str("album", s.album.as_deref())
        .opt_str("channel", s.channel.as_deref())
        .opt_str("url", s.url.as_deref())
        .opt_str("thumbnail", s.thumbnail.as_deref())
        .num("duration_ms", s.duration_ms)
        .done()
}

/// The player object: REST answers and QUEUE_STATE_UPDATE.
fn state_json(guild: u64, g: &Guild, now: Millis) -> String {
    let current = g.player.current().map_or("null".into(), track_json);
    Obj::new()
        .opt_id("guild_id", Some(guild))
        .opt_id("channel_id", g.channel)
        .bool("self_mute", g.self_mute)
        .bool("self_deaf", g.self_deaf)
        .bool("connected", g.voice.is_connected())
        .bool("paused", g.player.is_paused())
        .num("position_ms", g.player.position(now).0)
        .raw("current", &current)
        .raw("tracks", &rest::array(g.player.queue().map(track_json)))
        .done()
}

/// The op 1 payload: the Discord gateway's voice state update (op 4) to forward.
fn voice_op(guild: u64, g: &Guild) -> String {
    let d = Obj::new()
        .opt_id("guild_id", Some(guild))
        .opt_id("channel_id", g.channel)
        .bool("self_mute", g.self_mute)
        .bool("self_deaf", g.self_deaf)
        .done();
    let op4 = Obj::new().num("op", 4).raw("d", &d).done();
    Obj::new().num("op", 1).raw("d", &op4).done()
}

/// Dispatches the payloads of the player's events, in order.
fn emit(gw: &mut Gw<'_, '_, NexusServer>, guild: u64, g: &Guild, events: Vec<Event>) {
    let now = gw.now();
    let with_track = |t: &Track| {
        Obj::new()
            .opt_id("guild_id", Some(guild))
            .raw("track", &track_json(t))
    };
    for event in events {
        let (name, data) = match event {
            Event::Started(t) => ("TRACK_START", with_track(&t).done()),
            Event::Ended(track, reason) => {
                let why = match reason {
                    EndReason::Finished => "finished",
                    EndReason::Skipped => "skipped",
                    EndReason::Stopped => "stopped",
                    EndReason::Failed(e) => {
                        let data = with_track(&track).str("error", &e).done();
                        let _ = gw.dispatch(g.owner, "AUDIO_PLAYER_ERROR", &data);
                        "error"
                    }
                };
                ("TRACK_FINISH", with_track(&track).str("reason", why).done())
            }
            Event::Refused(track, error) => (
                "TRACK_ERROR",
                with_track(&track).str("error", &error).done(),
            ),
            Event::Paused(track, position) | Event::Resumed(track, position) => {
                let status = Obj::new()
                    .opt_id("guild_id", Some(guild))
                    .bool("paused", g.player.is_paused());
                let data = status
                    .num("position_ms", position.0)
                    .raw("track", &track_json(&track));
                ("AUDIO_PLAYER_STATUS", data.done())
            }
            Event::QueueChanged => ("QUEUE_STATE_UPDATE", state_json(guild, g, now)),
        };
        let _ = gw.dispatch(g.owner, name, &data);
    }
}

impl NexusServer {
    /// Whether `client_id` has an identified socket open (a closed one's session is ended
    /// at once, in `on_detach`).
    fn live(&self, client_id: &str) -> bool {
        self.clients.contains_key(client_id)
    }

    /// Drops a client's session: its token, and its players (no events: it is gone).
    fn forget(&mut self, gw: &mut Gw<'_, '_, Self>, sid: SessionId, client: Client) {
        if self.clients.get(&client.client_id) == Some(&sid) {
            self.clients.remove(&client.client_id);
        }
        self.tokens.remove(&client.token);
        let owned: Vec<u64> = self
            .guilds
            .iter()
            .filter(|(_, g)| g.owner == sid)
            .map(|(&k, _)| k)
            .collect();
        for key in owned {
            if let Some(mut g) = self.guilds.remove(&key) {
                g.wake.cancel(gw);
            }
        }
    }

    /// The bot's VOICE_STATE_UPDATE or VOICE_SERVER_UPDATE.
    fn voice(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        sid: SessionId,
        event: &str,
        data: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        let d = serde_json::from_str(data.map_or("null", |d| d.get()))
            .map_err(|e| decode_error(&e.to_string()))?;
        let payload =
            VoicePayload::parse(event == "VOICE_STATE_UPDATE", &d).map_err(decode_error)?;
        let me = gw.session(sid).map(|c| c.client_id.clone());
        if payload.user.is_some() && payload.user != me {
            return Ok(()); // Another member's voice state: not ours to act on.
        }
        let guild = payload.guild;
        let Some(g) = self.guilds.get_mut(&guild).filter(|g| g.owner == sid) else {
            return Err(fail(code::NO_GUILD));
        };
        let was = g.voice.channel;
        let (name, channel) = match payload.update.map(|u| g.voice.apply(u)) {
            Err(message) => {
                let data = Obj::new()
                    .opt_id("guild_id", Some(guild))
                    .str("error", message)
                    .done();
                let _ = gw.dispatch(sid, "VOICE_CONNECTION_ERROR", &data);
                return Ok(());
            }
            Ok(VoiceChange::Connected | VoiceChange::Reconnected) => {
                ("VOICE_CONNECTION_READY", g.voice.channel)
            }
            Ok(VoiceChange::Disconnected) => ("VOICE_CONNECTION_DISCONNECT", was),
            Ok(VoiceChange::Unchanged) => return Ok(()),
        };
        let data = Obj::new()
            .opt_id("guild_id", Some(guild))
            .opt_id("channel_id", channel)
            .done();
        let _ = gw.dispatch(sid, name, &data);
        Ok(())
    }

    fn route(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        request: &Request<'_, '_>,
        body: &[u8],
    ) -> Answer {
        let segments = rest::segments(request.path());
        let ["api", kind @ ("subscription" | "player"), guild, rest @ ..] = segments.as_slice()
        else {
            return Err(error(404, "not found"));
        };
        let sid = rest::credential(request)
            .and_then(|t| self.tokens.get(t))
            .copied()
            .ok_or_else(|| error(401, "missing or unknown access token"))?;
        let guild = player::snowflake(guild)
            .ok_or_else(|| error(400, "the guild id must be a snowflake"))?;
        match (*kind, rest, request.method()) {
            ("subscription", [channel], "POST") => {
                let channel = player::snowflake(channel)
                    .ok_or_else(|| error(400, "the channel id must be a snowflake"))?;
                self.join(gw, sid, guild, channel, body)
            }
            ("subscription", [], "POST") => {
                Err(error(400, "POST /api/subscription/{guild_id}/{channel_id}"))
            }
            ("subscription", [] | [_], "DELETE") => self.leave(gw, sid, guild),
            ("subscription", [] | [_], _) => Err(rest::method_not_allowed("POST, DELETE")),
            ("player", [] | ["queue"], "GET") => {
                Ok(ok(state_json(guild, self.owned(sid, guild)?, gw.now())))
            }
            ("player", [], _) => Err(rest::method_not_allowed("GET")),
            ("player", ["queue"], "POST") => self.act(gw, sid, guild, "queue", body),
            ("player", ["queue"], _) => Err(rest::method_not_allowed("GET, POST")),
            ("player", [a @ ("skip" | "stop" | "pause" | "resume")], "POST") => {
                self.act(gw, sid, guild, a, body)
            }
            ("player", ["skip" | "stop" | "pause" | "resume"], _) => {
                Err(rest::method_not_allowed("POST"))
            }
            _ => Err(error(404, "not found")),
        }
    }

    /// The guild's player if `sid` owns it; else the 404 or 403 answer.
    fn owned(&mut self, sid: SessionId, guild: u64) -> Result<&mut Guild, Response> {
        match self.guilds.get_mut(&guild) {
            None => Err(error(
                404,
                "no player for this guild: join a voice channel first",
            )),
            Some(g) if g.owner != sid => {
                Err(error(403, "this guild's player belongs to another client"))
            }
            Some(g) => Ok(g),
        }
    }

    fn join(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        sid: SessionId,
        guild: u64,
        channel: u64,
        body: &[u8],
    ) -> Answer {
        let options = rest::object_body(body).map_err(|e| error(400, &e))?;
        let mute = rest::bool_member(&options, "self_mute", false).map_err(|e| error(400, &e))?;
        let deaf = rest::bool_member(&options, "self_deaf", true).map_err(|e| error(400, &e))?;
        if self.guilds.get(&guild).is_some_and(|g| g.owner != sid) {
            return Err(error(403, "this guild's player belongs to another client"));
        }
        if !self.guilds.contains_key(&guild) && self.guilds.len() >= MAX_GUILDS {
            return Err(error(503, "too many players"));
        }
        let g = self.guilds.entry(guild).or_insert_with(|| Guild {
            owner: sid,
            channel: None,
            self_mute: mute,
            self_deaf: deaf,
            voice: Voice::default(),
            player: Player::new(),
            wake: Wake::default(),
        });
        (g.channel, g.self_mute, g.self_deaf) = (Some(channel), mute, deaf);
        let _ = gw.send_raw_to(sid, &voice_op(guild, g));
        Ok(ok(state_json(guild, g, gw.now())))
    }

    fn leave(&mut self, gw: &mut Gw<'_, '_, Self>, sid: SessionId, guild: u64) -> Answer {
        self.owned(sid, guild)?;
        let mut g = self
            .guilds
            .remove(&guild)
            .ok_or_else(|| error(404, "no player for this guild"))?;
        g.wake.cancel(gw);
        let left = g.channel.take();
        let _ = gw.send_raw_to(sid, &voice_op(guild, &g));
        let now = gw.now();
        let events = g.player.stop(now);
        emit(gw, guild, &g, events);
        g.voice.leave();
        let data = Obj::new()
            .opt_id("guild_id", Some(guild))
            .opt_id("channel_id", left)
            .done();
        let _ = gw.dispatch(sid, "VOICE_CONNECTION_DISCONNECT", &data);
        Ok(ok(state_json(guild, &g, now)))
    }

    /// Enqueue, skip, stop, pause or resume on a guild's player.
    fn act(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        sid: SessionId,
        guild: u64,
        action: &str,
        body: &[u8],
    ) -> Answer {
        let now = gw.now();
        let mut tracks = Vec::new();
        if action == "queue" {
            for spec in player::parse_tracks(body).map_err(|e| error(400, &e))? {
                self.next_track += 1;
                tracks.push(Track {
                    id: self.next_track,
                    spec,
                });
            }
        }
        let g = self.owned(sid, guild)?;
        let result = match action {
            "queue" => g.player.enqueue(now, tracks),
            "skip" => g.player.skip(now),
            "stop" => Ok(g.player.stop(now)),
            "pause" => g.player.pause(now),
            _ => g.player.resume(now),
        };
        let events = result.map_err(|refusal| match refusal {
            Refusal::NothingPlaying => error(409, "nothing is playing"),
            Refusal::QueueFull => error(409, "the queue is full"),
        })?;
        emit(gw, guild, g, events);
        g.wake.sync(gw, g.player.wake_at(), || guild);
        Ok(ok(state_json(guild, g, now)))
    }
}

impl Handler for NexusServer {
    type Dialect = Nexus;
    type Session = Client;
    type Timer = u64;
    type Command = ();

    fn on_upgrade(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        id: ConnId,
        request: &Request<'_, '_>,
    ) -> Admit<Client> {
        let client_id = request
            .header_str("client-id")
            .filter(|c| !c.is_empty() && c.len() <= 64);
        let Some(client_id) = client_id else {
            return Admit::Fail(fail(code::NO_CLIENT_ID));
        };
        let password = request.header_str("authorization");
        if !password.is_some_and(|p| secret_eq(p.as_bytes(), self.password.as_bytes())) {
            return Admit::Fail(fail(code::NO_AUTH));
        }
        if self.live(client_id) || self.pending.values().any(|c| c == client_id) {
            return Admit::Fail(fail(code::ALREADY_CONNECTED));
        }
        self.pending.insert(id, client_id.to_owned());
        Admit::Accept
    }

    fn identify(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        id: ConnId,
        _: &RawValue,
    ) -> Result<Client, GatewayError> {
        let client_id = self
            .pending
            .remove(&id)
            .ok_or(GatewayError::NotIdentified)?;
        if self.live(&client_id) {
            return Err(fail(code::ALREADY_CONNECTED));
        }
        let token = random_hex(32).map_err(|_| fail(code::UNKNOWN))?;
        Ok(Client { client_id, token })
    }

    fn ready_fields(&self, c: &Client) -> String {
        Obj::new()
            .str("client_id", &c.client_id)
            .str("access_token", &c.token)
            .members()
    }

    fn on_ready(&mut self, gw: &mut Gw<'_, '_, Self>, sid: SessionId, _resumed: bool) {
        if let Some(c) = gw.session(sid) {
            let (client_id, token) = (c.client_id.clone(), c.token.clone());
            self.clients.insert(client_id, sid);
            self.tokens.insert(token, sid);
        }
    }

    fn on_event(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        sid: SessionId,
        event: &str,
        data: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        match event {
            "VOICE_STATE_UPDATE" | "VOICE_SERVER_UPDATE" => self.voice(gw, sid, event, data),
            other => Err(GatewayError::Decode(DecodeError::UnknownOp(
                other.to_owned(),
            ))),
        }
    }

    fn on_conn_close(&mut self, _: &mut Gw<'_, '_, Self>, id: ConnId, _: Option<SessionId>) {
        self.pending.remove(&id); // A socket that closed before identifying.
    }

    fn on_detach(&mut self, gw: &mut Gw<'_, '_, Self>, sid: SessionId) {
        // Nexus has no resume: a lost connection ends the session, its token and players.
        if let Some(client) = gw.end_session(sid, &fail(code::SESSION_EXPIRED)) {
            self.forget(gw, sid, client);
        }
    }

    fn on_session_end(&mut self, gw: &mut Gw<'_, '_, Self>, sid: SessionId, client: Client) {
        self.forget(gw, sid, client);
    }

    fn on_http(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        request: &Request<'_, '_>,
        body: &[u8],
    ) -> Response {
        self.route(gw, request, body)
            .unwrap_or_else(|refused| refused)
    }

    fn on_timer(&mut self, gw: &mut Gw<'_, '_, Self>, guild: u64) {
        let now = gw.now();
        let Some(g) = self.guilds.get_mut(&guild) else {
            return;
        };
        g.wake.fired();
        let events = g.player.tick(now);
        emit(gw, guild, g, events);
        g.wake.sync(gw, g.player.wake_at(), || guild);
    }
}

fn main() -> ExitCode {
    let mut listen = ([127, 0, 0, 1], 9000).into();
    let (mut password, mut heartbeat) = (None, Millis(30_000));
    let mut limits = Config::default();
    let parsed = rest::options(std::env::args().skip(1), |name, value| {
        if serve::limit_option(&mut limits, name, &value)? {
            return Ok(());
        }
        match name {
            "--listen" => listen = rest::listen(&value)?,
            "--password" => password = Some(value),
            "--heartbeat-ms" => {
                let ms: u64 = value.parse().map_err(|e| format!("--heartbeat-ms: {e}"))?;
                heartbeat = Millis(ms.clamp(10, 86_400_000));
            }
            _ => return Err(format!("unknown option {name}")),
        }
        Ok(())
    });
    if let Err(e) = parsed {
        eprintln!(
            "{e}\nusage: nexus [--listen ADDR] [--password PW] [--heartbeat-ms N] {}",
            serve::LIMIT_USAGE
        );
        return ExitCode::from(2);
    }
    let Some(password) = serve::secret_or_random(password, "--password", "password", 12) else {
        eprintln!("nexus: no randomness for a password");
        return ExitCode::FAILURE;
    };
    let mut gateway_config = GatewayConfig::with_heartbeat(heartbeat);
    gateway_config.identify_timeout = heartbeat + gateway_config.heartbeat_grace;
    gateway_config.replay_events = 0; // No resume: nothing is kept.
    gateway_config.rate_limit = postern::gateway::RateLimit::new(2400, Millis(60_000));
    let server = NexusServer {
        password,
        pending: HashMap::new(),
        clients: HashMap::new(),
        tokens: HashMap::new(),
        guilds: HashMap::new(),
        next_track: 0,
    };
    // Discord's voice state payloads (with a member object) can pass 4 KiB.
    let config = Config {
        max_payload: 64 * 1024,
        ..limits
    };
    let gateway = Gateway::new(server, Nexus, gateway_config);
    serve::serve("nexus", listen, config, gateway)
}
