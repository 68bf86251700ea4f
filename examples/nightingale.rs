//! The Nightingale music-player gateway (seed 001) on postern: a bot opens `/ws?shards=N&
//! user_id=ID`, gets a session UUID in `ready`, and is sent `forward`, `update_state` and
//! `event` payloads while it drives a simulated player through the REST API on the same
//! port. A lost connection can be resumed at `/ws/resume` within the resume window: every
//! payload produced meanwhile is replayed after `ready`.
//!
//! ```text
//! cargo run --release --example nightingale -- --password PW [--listen ADDR] [--resume-window-ms N]
//! ```
//!
//! The protocol, every payload, status and REST route: docs/protocols/nightingale.md.

#[path = "support/player.rs"]
mod player;
#[path = "support/rest.rs"]
mod rest;
#[path = "support/serve.rs"]
mod serve;

use player::{EndReason, Event, Player, Refusal, Track, Voice, VoiceChange, VoicePayload, Wake};
use postern::gateway::dialects::nightingale::Nightingale;
use postern::gateway::{
    random_uuid, secret_eq, Admit, DecodeError, Gateway, GatewayConfig, GatewayError, Gw, Handler,
    SessionId,
};
use postern::{Config, ConnId, Millis, Request, Response};
use rest::{error, ok, Obj};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::process::ExitCode;

/// Players held at once, all sessions together.
const MAX_GUILDS: usize = 10_000;

/// A bot's session (the engine keeps it through disconnects, for the resume window).
struct Bot {
    uuid: String,
    user_id: u64,
}

/// One guild's player in one session.
struct Guild {
    channel: Option<u64>,
    self_mute: bool,
    self_deaf: bool,
    voice: Voice,
    ssrc: u32,
    player: Player,
    wake: Wake,
}

/// Payloads for a session, in order: (op, data).
type Payloads = Vec<(&'static str, String)>;
type Answer = Result<Response, Response>;

/// The server.
struct NightingaleServer {
    password: String,
    /// Session UUID → engine session.
    uuids: HashMap<String, SessionId>,
    guilds: HashMap<(SessionId, u64), Guild>,
    next_track: u64,
}

/// The seed's track object: eight fields, null where unknown. `track` is the server's
/// handle `"<guild_id>:<n>"`; `duration` is the length in milliseconds, as a string.
fn track_object(guild: u64, t: &Track) -> String {
    let s = &t.spec;
    Obj::new()
        .str("track", &format!("{guild}:{}", t.id))
        .opt_str("artist", s.artist.as_deref())
        .opt_str("album", s.album.as_deref())
        .opt_str("channel", s.channel.as_deref())
        .str("duration", &s.duration_ms.to_string())
        .opt_str("source_url", s.url.as_deref())
        .opt_str("title", s.title.as_deref())
        .opt_str("thumbnail", s.thumbnail.as_deref())
        .done()
}

/// The player object of the REST answers.
fn state_json(guild: u64, g: &Guild, now: Millis) -> String {
    let object = |t: &Track| track_object(guild, t);
    Obj::new()
        .num("guild_id", guild)
        .opt_num("channel_id", g.channel)
        .bool("connected", g.voice.is_connected())
        .bool("paused", g.player.is_paused())
        .num("position_ms", g.player.position(now).0)
        .raw("current", &g.player.current().map_or("null".into(), object))
        .raw("queue", &rest::array(g.player.queue().map(object)))
        .done()
}

/// `forward`'s data: the Discord gateway's voice state update (op 4).
fn forward(guild: u64, g: &Guild) -> String {
    let d = Obj::new()
        .opt_id("channel_id", g.channel)
        .opt_id("guild_id", Some(guild))
        .bool("self_deaf", g.self_deaf)
        .bool("self_mute", g.self_mute)
        .done();
    Obj::new().num("op", 4).raw("d", &d).done()
}

fn typed(kind: &str, data: &str) -> String {
    Obj::new().str("type", kind).raw("data", data).done()
}

/// The `event` payloads of the player's events, in order.
fn track_events(guild: u64, events: Vec<Event>, out: &mut Payloads) {
    for event in events {
        let data = match event {
            Event::Started(t) => typed("track_start", &track_object(guild, &t)),
            Event::Ended(track, EndReason::Failed(e)) | Event::Refused(track, e) => {
                let data = Obj::new()
                    .str("error", &e)
                    .raw("track", &track_object(guild, &track));
                typed("track_errored", &data.done())
            }
            Event::Ended(track, reason) => {
                let stopped = reason != EndReason::Finished;
                let data = Obj::new()
                    .bool("stopped", stopped)
                    .raw("track", &track_object(guild, &track));
                typed("track_end", &data.done())
            }
            Event::Paused(..) | Event::Resumed(..) | Event::QueueChanged => continue,
        };
        out.push(("event", data));
    }
}

/// The `update_state` payload of a voice change (`before`: the voice as it was).
fn voice_state(guild: u64, g: &mut Guild, before: &Voice, change: VoiceChange, out: &mut Payloads) {
    let kind = match change {
        VoiceChange::Unchanged => return,
        VoiceChange::Disconnected => {
            let session = before.session.as_deref();
            let data = Obj::new()
                .opt_num("channel", before.channel)
                .num("guild", guild)
                .opt_str("session", session);
            out.push(("update_state", typed("disconnect_gateway", &data.done())));
            return;
        }
        VoiceChange::Connected => "connect_gateway",
        VoiceChange::Reconnected => "reconnect_gateway",
    };
    let mut b = [0u8; 4];
    if postern::gateway::session::os_random(&mut b).is_ok() {
        g.ssrc = u32::from_le_bytes(b).max(1);
    }
    let data = Obj::new()
        .opt_num("channel", g.voice.channel)
        .num("guild", guild)
        .opt_str("session", g.voice.session.as_deref())
        .opt_str("server", g.voice.endpoint.as_deref())
        .num("ssrc", u64::from(g.ssrc))
        .done();
    out.push(("update_state", typed(kind, &data)));
}

fn guild_param(request: &Request<'_, '_>) -> Result<u64, Response> {
    let guild = request
        .query_param("guild_id")
        .and_then(|g| player::snowflake(&g));
    guild.ok_or_else(|| error(400, "the guild_id query parameter must be an integer"))
}

fn no_player() -> Response {
    error(404, "no player for this guild: connect first")
}

/// Dispatches payloads to a session (kept for replay while it is detached).
fn send(gw: &mut Gw<'_, '_, NightingaleServer>, sid: SessionId, out: Payloads) {
    for (op, data) in out {
        let _ = gw.dispatch(sid, op, &data);
    }
}

impl NightingaleServer {
    fn route(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        request: &Request<'_, '_>,
        body: &[u8],
    ) -> Answer {
        let segments = rest::segments(request.path());
        let ["api", "v1", route @ ..] = segments.as_slice() else {
            return Err(error(404, "not found"));
        };
        if !rest::credential(request)
            .is_some_and(|c| secret_eq(c.as_bytes(), self.password.as_bytes()))
        {
            return Err(error(401, "missing or wrong password in Authorization"));
        }
        let uuid = request.query_param("session").map(|s| s.into_owned());
        let uuid = uuid.or_else(|| request.header_str("session").map(str::to_owned));
        let uuid =
            uuid.ok_or_else(|| error(400, "the session query parameter (or header) is required"))?;
        let sid = *self
            .uuids
            .get(&uuid.to_ascii_lowercase())
            .ok_or_else(|| error(404, "unknown or expired session"))?;
        match (route, request.method()) {
            (["connect"], "PUT" | "POST") => self.connect(gw, sid, request),
            (["disconnect"], "DELETE" | "POST") => self.disconnect(gw, sid, guild_param(request)?),
            (["voice", kind @ ("state" | "server")], "POST") => self.voice(gw, sid, kind, body),
            (["playback", how @ ("play" | "enqueue")], "POST") => {
                self.queue(gw, sid, guild_param(request)?, how, body)
            }
            (["playback", action @ ("skip" | "stop" | "pause" | "resume")], "POST" | "PATCH") => {
                self.act(gw, sid, guild_param(request)?, action)
            }
            (["player"], "GET") => {
                let guild = guild_param(request)?;
                let g = self.guilds.get(&(sid, guild)).ok_or_else(no_player)?;
                Ok(ok(state_json(guild, g, gw.now())))
            }
            (["connect"], _) => Err(rest::method_not_allowed("PUT, POST")),
            (["disconnect"], _) => Err(rest::method_not_allowed("DELETE, POST")),
            (["voice", "state" | "server"] | ["playback", "play" | "enqueue"], _) => {
                Err(rest::method_not_allowed("POST"))
            }
            (["playback", "skip" | "stop" | "pause" | "resume"], _) => {
                Err(rest::method_not_allowed("POST, PATCH"))
            }
            (["player"], _) => Err(rest::method_not_allowed("GET")),
            _ => Err(error(404, "not found")),
        }
    }

    fn connect(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        sid: SessionId,
        request: &Request<'_, '_>,
    ) -> Answer {
        let guild = guild_param(request)?;
        let channel = request
            .query_param("channel_id")
            .and_then(|c| player::snowflake(&c));
        let channel = channel
            .ok_or_else(|| error(400, "the channel_id query parameter must be an integer"))?;
        let deaf = rest::bool_param(request, "self_deaf", true).map_err(|e| error(400, &e))?;
        let mute = rest::bool_param(request, "self_mute", false).map_err(|e| error(400, &e))?;
        if !self.guilds.contains_key(&(sid, guild)) && self.guilds.len() >= MAX_GUILDS {
            return Err(error(503, "too many players"));
        }
        let g = self.guilds.entry((sid, guild)).or_insert_with(|| Guild {
            channel: None,
            self_mute: mute,
            self_deaf: deaf,
            voice: Voice::default(),
            ssrc: 0,
            player: Player::new(),
            wake: Wake::default(),
        });
        (g.channel, g.self_deaf, g.self_mute) = (Some(channel), deaf, mute);
        let (state, out) = (
            state_json(guild, g, gw.now()),
            vec![("forward", forward(guild, g))],
        );
        send(gw, sid, out);
        Ok(ok(state))
    }

    fn disconnect(&mut self, gw: &mut Gw<'_, '_, Self>, sid: SessionId, guild: u64) -> Answer {
        let mut g = self.guilds.remove(&(sid, guild)).ok_or_else(no_player)?;
        g.wake.cancel(gw);
        g.channel = None; // Leaving: the payload to forward has a null channel.
        let mut out = vec![("forward", forward(guild, &g))];
        let now = gw.now();
        track_events(guild, g.player.stop(now), &mut out);
        let before = g.voice.clone();
        if g.voice.leave() {
            voice_state(guild, &mut g, &before, VoiceChange::Disconnected, &mut out);
        }
        send(gw, sid, out);
        Ok(ok(state_json(guild, &g, now)))
    }

    /// The bot's VOICE_STATE_UPDATE or VOICE_SERVER_UPDATE (Discord's `d`, as received).
    fn voice(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        sid: SessionId,
        kind: &str,
        body: &[u8],
    ) -> Answer {
        let d = serde_json::from_slice(body)
            .map_err(|e| error(400, &format!("body is not JSON: {e}")))?;
        let payload = VoicePayload::parse(kind == "state", &d).map_err(|e| error(400, e))?;
        let me = gw.session(sid).map(|b| b.user_id.to_string());
        if payload.user.is_some() && payload.user != me {
            return Ok(ok(Obj::new().bool("applied", false).done())); // Another member's.
        }
        let update = payload.update.map_err(|e| error(400, e))?;
        let guild = payload.guild;
        let g = self.guilds.get_mut(&(sid, guild)).ok_or_else(no_player)?;
        let before = g.voice.clone();
        let change = g.voice.apply(update);
        let mut out = Vec::new();
        voice_state(guild, g, &before, change, &mut out);
        let answer = Obj::new()
            .bool("applied", true)
            .bool("connected", g.voice.is_connected());
        send(gw, sid, out);
        Ok(ok(answer.done()))
    }

    /// Play (now) or enqueue.
    fn queue(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        sid: SessionId,
        guild: u64,
        how: &str,
        body: &[u8],
    ) -> Answer {
        let specs = if how == "play" {
            let value = serde_json::from_slice(body)
                .map_err(|e| error(400, &format!("body is not JSON: {e}")))?;
            vec![player::parse_track(value).map_err(|e| error(400, &e))?]
        } else {
            player::parse_tracks(body).map_err(|e| error(400, &e))?
        };
        if !self.guilds.contains_key(&(sid, guild)) {
            return Err(no_player());
        }
        let mut tracks = Vec::new();
        for spec in specs {
            self.next_track += 1;
            tracks.push(Track {
                id: self.next_track,
                spec,
            });
        }
        self.run(gw, sid, guild, |player, now| match how {
            "play" => match tracks.pop() {
                Some(track) => player.play_now(now, track),
                None => Ok(Vec::new()),
            },
            _ => player.enqueue(now, tracks),
        })
    }

    fn act(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        sid: SessionId,
        guild: u64,
        action: &str,
    ) -> Answer {
        self.run(gw, sid, guild, |player, now| match action {
            "skip" => player.skip(now),
            "stop" => Ok(player.stop(now)),
            "pause" => player.pause(now),
            _ => player.resume(now),
        })
    }

    /// Runs a player operation on a guild: its events, the timer, the answer.
    fn run(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        sid: SessionId,
        guild: u64,
        op: impl FnOnce(&mut Player, Millis) -> Result<Vec<Event>, Refusal>,
    ) -> Answer {
        let now = gw.now();
        let g = self.guilds.get_mut(&(sid, guild)).ok_or_else(no_player)?;
        let events = op(&mut g.player, now).map_err(|refusal| match refusal {
            Refusal::NothingPlaying => error(409, "nothing is playing"),
            Refusal::QueueFull => error(409, "the queue is full"),
        })?;
        g.wake.sync(gw, g.player.wake_at(), || (sid, guild));
        let state = state_json(guild, g, now);
        let mut out = Vec::new();
        track_events(guild, events, &mut out);
        send(gw, sid, out);
        Ok(ok(state))
    }
}

impl Handler for NightingaleServer {
    type Dialect = Nightingale;
    type Session = Bot;
    type Timer = (SessionId, u64);
    type Command = ();

    fn on_upgrade(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        request: &Request<'_, '_>,
    ) -> Admit<Bot> {
        match request.path() {
            "/ws" => {
                let integer = |name: &str| {
                    request
                        .query_param(name)
                        .and_then(|v| v.parse::<u64>().ok())
                };
                // `shards` is checked but unused: the simulator's `forward` carries no shard.
                let (Some(_), Some(user_id)) =
                    (integer("shards").filter(|&s| s >= 1), integer("user_id"))
                else {
                    let why = "shards (1 or more) and user_id must be integer query parameters";
                    return Admit::Reject(error(400, why));
                };
                let mut uuid = random_uuid();
                while uuid.as_ref().is_ok_and(|u| self.uuids.contains_key(u)) {
                    uuid = random_uuid();
                }
                match uuid {
                    Ok(uuid) => Admit::Identified(Bot { uuid, user_id }),
                    Err(_) => Admit::Reject(error(500, "no randomness")),
                }
            }
            "/ws/resume" => match request.header_str("session").filter(|s| !s.is_empty()) {
                None => Admit::Reject(error(400, "the session header is required")),
                Some(uuid) => match self.uuids.get(&uuid.to_ascii_lowercase()) {
                    // A live session is taken over: the engine closes the old connection
                    // (1000) and replays nothing; a detached one gets what it missed.
                    Some(&sid) => Admit::Resume(sid),
                    None => Admit::Reject(error(404, "unknown or expired session")),
                },
            },
            _ => Admit::Reject(error(404, "the gateway is at /ws and /ws/resume")),
        }
    }

    fn identify(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        _: &RawValue,
    ) -> Result<Bot, GatewayError> {
        Err(GatewayError::NotIdentified) // Unreachable: the dialect decodes no identify.
    }

    /// `/ws` is unauthenticated and `user_id` only claimed: sessions count against the
    /// peer address (IPv4, or the IPv6 /64), so one address opening sessions fast only
    /// ever evicts its own detached ones (`--max-sessions-per-owner`).
    fn owner(&self, _: &Bot) -> Option<postern::gateway::Owner> {
        None
    }

    fn ready_fields(&self, bot: &Bot) -> String {
        Obj::new().str("session", &bot.uuid).members()
    }

    fn on_ready(&mut self, gw: &mut Gw<'_, '_, Self>, sid: SessionId, resumed: bool) {
        if let (false, Some(bot)) = (resumed, gw.session(sid)) {
            let uuid = bot.uuid.clone();
            self.uuids.insert(uuid, sid);
        }
    }

    fn on_event(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: SessionId,
        event: &str,
        _: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        Err(GatewayError::Decode(DecodeError::UnknownOp(
            event.to_owned(),
        )))
    }

    fn on_session_end(&mut self, gw: &mut Gw<'_, '_, Self>, sid: SessionId, bot: Bot) {
        self.uuids.remove(&bot.uuid);
        let owned: Vec<(SessionId, u64)> =
            self.guilds.keys().filter(|k| k.0 == sid).copied().collect();
        for key in owned {
            if let Some(mut g) = self.guilds.remove(&key) {
                g.wake.cancel(gw);
            }
        }
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

    fn on_timer(&mut self, gw: &mut Gw<'_, '_, Self>, (sid, guild): (SessionId, u64)) {
        let now = gw.now();
        let Some(g) = self.guilds.get_mut(&(sid, guild)) else {
            return;
        };
        g.wake.fired();
        let mut out = Vec::new();
        track_events(guild, g.player.tick(now), &mut out);
        g.wake.sync(gw, g.player.wake_at(), || (sid, guild));
        send(gw, sid, out);
    }
}

fn main() -> ExitCode {
    let mut listen = ([127, 0, 0, 1], 9005).into();
    let (mut password, mut window) = (None, Millis(60_000));
    let mut quotas = GatewayConfig::default();
    let mut limits = Config::default();
    let parsed = rest::options(std::env::args().skip(1), |name, value| {
        if serve::limit_option(&mut limits, name, &value)? {
            return Ok(());
        }
        match name {
            "--listen" => listen = rest::listen(&value)?,
            "--password" => password = Some(value),
            "--resume-window-ms" => {
                window = Millis(
                    value
                        .parse()
                        .map_err(|e| format!("--resume-window-ms: {e}"))?,
                )
            }
            "--max-sessions" | "--max-sessions-per-owner" => {
                let n: usize = value.parse().map_err(|e| format!("{name}: {e}"))?;
                match name {
                    "--max-sessions" => quotas.max_sessions = n.max(1),
                    _ => quotas.max_sessions_per_owner = n.max(1),
                }
            }
            _ => return Err(format!("unknown option {name}")),
        }
        Ok(())
    });
    if let Err(e) = parsed {
        eprintln!(
            "{e}\nusage: nightingale [--listen ADDR] [--password PW] [--resume-window-ms N] \
             [--max-sessions N] [--max-sessions-per-owner N] {}",
            serve::LIMIT_USAGE
        );
        return ExitCode::from(2);
    }
    let Some(password) = serve::secret_or_random(password, "--password", "password", 12) else {
        eprintln!("nightingale: no randomness for a password");
        return ExitCode::FAILURE;
    };
    let gateway_config = GatewayConfig {
        heartbeat_required: false,
        resume_window: window,
        max_sessions: quotas.max_sessions,
        max_sessions_per_owner: quotas.max_sessions_per_owner,
        ..GatewayConfig::default()
    };
    let server = NightingaleServer {
        password,
        uuids: HashMap::new(),
        guilds: HashMap::new(),
        next_track: 0,
    };
    let gateway = Gateway::new(server, Nightingale, gateway_config);
    serve::serve("nightingale", listen, limits, gateway)
}
