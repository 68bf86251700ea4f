//! The Nightingale music-player gateway (seed 001) on postern: a bot opens `/ws?shards=N&
//! user_id=ID`, gets a session UUID in `ready`, and is sent `forward`, `update_state` and
//! `event` payloads while it drives a simulated player through the REST API on the same
//! port. A lost connection can be resumed at `/ws/resume` within the resume window: every
//! payload produced meanwhile is replayed after `ready`.
//!
//! ```text
//! cargo run --release --example nightingale -- --password PW [--listen ADDR] [--resume-window-ms N]
//!     [--ping-interval-ms N] [--idle-timeout-ms N] [--max-queue N] ...
//! ```
//!
//! The seed has no heartbeat: dead peers are found by WebSocket Ping/Pong (closed with 1001
//! after 60 s without any frame, by default).
//!
//! The protocol, every payload, status and REST route: docs/protocols/nightingale.md.

#[path = "support/bounds.rs"]
mod bounds;
#[path = "support/nightingale_json.rs"]
mod nightingale_json;
#[path = "support/player.rs"]
mod player;
#[path = "support/rest.rs"]
mod rest;
#[path = "support/serve.rs"]
mod serve;

use bounds::{Held, Limits, Over, DEFAULT_PAGE, MAX_PAGE};
use clap::builder::NonEmptyStringValueParser;
use clap::Parser;
use nightingale_json::{forward, state_json, track_events, voice_state, Guild, Payloads};
use player::{Event, Player, Refusal, Track, Voice, VoiceChange, VoicePayload, Wake};
use postern::gateway::dialects::nightingale::Nightingale;
use postern::gateway::{
    random_uuid, secret_eq, Admit, DecodeError, Gateway, GatewayConfig, GatewayError, Gw, Handler,
    SessionId,
};
use postern::{Config, ConnId, Millis, Request, Response};
use rest::{error, ok, Obj, Page};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::process::ExitCode;

/// A bot's session (the engine keeps it through disconnects, for the resume window).
struct Bot {
    uuid: String,
    user_id: u64,
}

type Answer = Result<Response, Response>;

/// The server.
struct NightingaleServer {
    password: String,
    /// Session UUID → engine session.
    uuids: HashMap<String, SessionId>,
    guilds: HashMap<(SessionId, u64), Guild>,
    /// Players and waiting tracks of each session that has any.
    held: HashMap<SessionId, Tally>,
    /// Tracks waiting in all players.
    tracks: usize,
    limits: Limits,
    next_track: u64,
}

/// What one session holds.
#[derive(Copy, Clone, Debug, Default)]
struct Tally {
    players: usize,
    tracks: usize,
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
        // The session UUID is a bearer credential: it belongs in the `session` header (the
        // documented form). A `session` query parameter is still read when the header is
        // absent, so clients written against the earlier docs keep working; it is no longer
        // documented, as proxies log query strings.
        let uuid = request.header_str("session").map(str::to_owned);
        let uuid = uuid.or_else(|| request.query_param("session").map(|s| s.into_owned()));
        let uuid = uuid.ok_or_else(|| error(400, "the session header is required"))?;
        let sid = *self
            .uuids
            .get(&uuid.to_ascii_lowercase())
            .ok_or_else(|| error(404, "unknown or expired session"))?;
        let page = rest::page(request, DEFAULT_PAGE, MAX_PAGE).map_err(|e| error(400, &e))?;
        match (route, request.method()) {
            (["connect"], "PUT" | "POST") => self.connect(gw, sid, request, page),
            (["disconnect"], "DELETE" | "POST") => {
                self.disconnect(gw, sid, guild_param(request)?, page)
            }
            (["voice", kind @ ("state" | "server")], "POST") => self.voice(gw, sid, kind, body),
            (["playback", how @ ("play" | "enqueue")], "POST") => {
                self.queue(gw, sid, guild_param(request)?, how, body, page)
            }
            (["playback", action @ ("skip" | "stop" | "pause" | "resume")], "POST" | "PATCH") => {
                self.act(gw, sid, guild_param(request)?, action, page)
            }
            (["player"], "GET") => {
                let guild = guild_param(request)?;
                let g = self.guilds.get(&(sid, guild)).ok_or_else(no_player)?;
                Ok(ok(state_json(guild, g, gw.now(), page)))
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
        page: Page,
    ) -> Answer {
        let guild = guild_param(request)?;
        let channel = request
            .query_param("channel_id")
            .and_then(|c| player::snowflake(&c));
        let channel = channel
            .ok_or_else(|| error(400, "the channel_id query parameter must be an integer"))?;
        let deaf = rest::bool_param(request, "self_deaf", true).map_err(|e| error(400, &e))?;
        let mute = rest::bool_param(request, "self_mute", false).map_err(|e| error(400, &e))?;
        if !self.guilds.contains_key(&(sid, guild)) {
            let held = self.held(sid);
            self.limits
                .admit_player(held)
                .map_err(|over| self.over(over))?;
            self.held.entry(sid).or_default().players += 1;
        }
        let queue = self.limits.queue;
        let g = self.guilds.entry((sid, guild)).or_insert_with(|| Guild {
            channel: None,
            self_mute: mute,
            self_deaf: deaf,
            voice: Voice::default(),
            ssrc: 0,
            player: Player::with_limit(queue),
            wake: Wake::default(),
        });
        (g.channel, g.self_deaf, g.self_mute) = (Some(channel), deaf, mute);
        let (state, out) = (
            state_json(guild, g, gw.now(), page),
            vec![("forward", forward(guild, g))],
        );
        send(gw, sid, out);
        Ok(ok(state))
    }

    fn disconnect(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        sid: SessionId,
        guild: u64,
        page: Page,
    ) -> Answer {
        let mut g = self.guilds.remove(&(sid, guild)).ok_or_else(no_player)?;
        self.book(sid, g.player.len(), 0);
        if let Some(t) = self.held.get_mut(&sid) {
            t.players = t.players.saturating_sub(1);
        }
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
        Ok(ok(state_json(guild, &g, now, page)))
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
        page: Page,
    ) -> Answer {
        let specs = if how == "play" {
            let value = serde_json::from_slice(body)
                .map_err(|e| error(400, &format!("body is not JSON: {e}")))?;
            vec![player::parse_track(value).map_err(|e| error(400, &e))?]
        } else {
            player::parse_tracks(body).map_err(|e| error(400, &e))?
        };
        let queued = self
            .guilds
            .get(&(sid, guild))
            .ok_or_else(no_player)?
            .player
            .len();
        if how == "enqueue" {
            let held = self.held(sid);
            self.limits
                .admit_tracks(queued, held, specs.len())
                .map_err(|over| self.over(over))?;
        }
        let mut tracks = Vec::new();
        for spec in specs {
            self.next_track += 1;
            tracks.push(Track {
                id: self.next_track,
                spec,
            });
        }
        self.run(gw, sid, guild, page, |player, now| match how {
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
        page: Page,
    ) -> Answer {
        self.run(gw, sid, guild, page, |player, now| match action {
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
        page: Page,
        op: impl FnOnce(&mut Player, Millis) -> Result<Vec<Event>, Refusal>,
    ) -> Answer {
        let now = gw.now();
        let limits = self.limits;
        let g = self.guilds.get_mut(&(sid, guild)).ok_or_else(no_player)?;
        let before = g.player.len();
        let events = op(&mut g.player, now).map_err(|refusal| match refusal {
            Refusal::NothingPlaying => error(409, "nothing is playing"),
            Refusal::QueueFull => error(409, &limits.refusal(Over::Queue).1),
        })?;
        g.wake.sync(gw, g.player.wake_at(), || (sid, guild));
        let state = state_json(guild, g, now, page);
        let after = g.player.len();
        let mut out = Vec::new();
        track_events(guild, events, &mut out);
        send(gw, sid, out);
        self.book(sid, before, after);
        Ok(ok(state))
    }

    /// What session `sid` and the server hold now.
    fn held(&self, sid: SessionId) -> Held {
        let tally = self.held.get(&sid).copied().unwrap_or_default();
        Held {
            client_players: tally.players,
            client_tracks: tally.tracks,
            players: self.guilds.len(),
            tracks: self.tracks,
        }
    }

    /// Books a change of a player's queue length from `before` to `after`.
    fn book(&mut self, sid: SessionId, before: usize, after: usize) {
        self.tracks = (self.tracks + after).saturating_sub(before);
        if let Some(t) = self.held.get_mut(&sid) {
            t.tracks = (t.tracks + after).saturating_sub(before);
        }
    }

    /// The answer to a request over one of the bounds.
    fn over(&self, over: Over) -> Response {
        let (status, message) = self.limits.refusal(over);
        error(status, &message)
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
                self.tracks = self.tracks.saturating_sub(g.player.len());
            }
        }
        self.held.remove(&sid);
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
        let before = g.player.len();
        let mut out = Vec::new();
        track_events(guild, g.player.tick(now), &mut out);
        g.wake.sync(gw, g.player.wake_at(), || (sid, guild));
        let after = g.player.len();
        send(gw, sid, out);
        self.book(sid, before, after);
    }
}

/// The Nightingale music-player gateway (seed 001): docs/protocols/nightingale.md.
#[derive(Parser, Debug)]
#[command(name = "nightingale")]
struct Cli {
    /// The REST password [default: random, printed on stderr]
    #[arg(long, value_name = "PW", value_parser = NonEmptyStringValueParser::new(),
          allow_hyphen_values = true)]
    password: Option<String>,
    /// How long a session outlives its connection
    #[arg(long = "resume-window-ms", value_name = "N", default_value_t = 60_000)]
    resume_window: u64,
    /// Sessions held, connected or awaiting resume (0 is taken as 1)
    #[arg(long, value_name = "N", default_value_t = GatewayConfig::default().max_sessions)]
    max_sessions: usize,
    /// Sessions one source address (IPv4, or IPv6 /64) holds (0 is taken as 1)
    #[arg(long, value_name = "N",
          default_value_t = GatewayConfig::default().max_sessions_per_owner)]
    max_sessions_per_owner: usize,
    #[command(flatten)]
    liveness: rest::Liveness,
    #[command(flatten)]
    bounds: rest::Bounds,
    #[command(flatten)]
    serve: serve::ServeOptions,
}

fn main() -> ExitCode {
    let cli: Cli = serve::parse("127.0.0.1:9005");
    let Some(password) = serve::secret_or_random(cli.password, "--password", "password", 12) else {
        eprintln!("nightingale: no randomness for a password");
        return ExitCode::FAILURE;
    };
    // The seed has no heartbeat: dead peers are found by the reactor's WebSocket Pings
    // (`--ping-interval-ms`, `--idle-timeout-ms`).
    let gateway_config = GatewayConfig {
        heartbeat_required: false,
        resume_window: Millis(cli.resume_window),
        max_sessions: cli.max_sessions.max(1),
        max_sessions_per_owner: cli.max_sessions_per_owner.max(1),
        ..GatewayConfig::default()
    };
    let server = NightingaleServer {
        password,
        uuids: HashMap::new(),
        guilds: HashMap::new(),
        held: HashMap::new(),
        tracks: 0,
        limits: cli.bounds.limits(),
        next_track: 0,
    };
    let gateway = Gateway::new(server, Nightingale, gateway_config);
    let config = cli.liveness.config(cli.serve.config(Config::default()));
    serve::serve("nightingale", &cli.serve, config, gateway)
}
