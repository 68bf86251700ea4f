//! The Nexus music-player gateway (seed 000) on postern: a bot connects with a password and
//! its client id, identifies, gets an access token for the REST API on the same port, and is
//! sent voice payloads to forward to Discord and the events of a simulated player.
//!
//! ```text
//! cargo run --release --example nexus -- --password PW [--listen ADDR] [--heartbeat-ms N]
//!     [--player-window-ms N] [--ping-interval-ms N] [--idle-timeout-ms N] [--max-queue N] ...
//! ```
//!
//! An identified client is never expired for silence (WebSocket Ping/Pong finds dead
//! sockets); a new socket with the same `client-id` replaces the old one (4006) and keeps the
//! client's players, which outlive its last socket for the player window.
//!
//! The protocol, every payload, close code and REST route: docs/protocols/nexus.md.

#[path = "support/bounds.rs"]
mod bounds;
#[path = "support/nexus_json.rs"]
mod nexus_json;
#[path = "support/player.rs"]
mod player;
#[path = "support/rest.rs"]
mod rest;
#[path = "support/serve.rs"]
mod serve;

use bounds::{Held, Limits, Over, DEFAULT_PAGE, MAX_PAGE};
use clap::builder::NonEmptyStringValueParser;
use clap::Parser;
use nexus_json::{emit, state_json, track_json, voice_op, Change, Guild};
use player::{Player, Refusal, Track, Voice, VoiceChange, VoicePayload, Wake};
use postern::gateway::dialects::nexus::{code, reason, Nexus};
use postern::gateway::{
    random_hex, secret_eq, Admit, DecodeError, Gateway, GatewayConfig, GatewayError, Gw, Handler,
    SessionId,
};
use postern::timer::TimerId;
use postern::{Config, ConnId, Millis, Request, Response};
use rest::{error, ok, Obj, Page};
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use std::process::ExitCode;

/// How long a client's players outlive its last socket by default (`--player-window-ms`).
const PLAYER_WINDOW_MS: u64 = 60_000;

/// An identified socket's session: its client id and access token.
struct Client {
    client_id: String,
    token: String,
}

/// What a client id holds across its sockets: its live session, if any, and its players.
#[derive(Default)]
struct Owner {
    /// The identified socket's session (`None` between sockets).
    session: Option<SessionId>,
    /// The guilds whose players it owns.
    guilds: HashSet<u64>,
    /// Tracks waiting in those players.
    tracks: usize,
    /// While it has no socket: the timer that drops its players.
    expiry: Option<TimerId>,
}

/// The server's timers.
enum Due {
    /// A guild's player must tick.
    Player(u64),
    /// A client id's window without a socket has passed: its players go.
    Forget(String),
}

/// The server.
struct NexusServer {
    password: String,
    /// Upgraded connections that have not identified yet, with their client id.
    pending: HashMap<ConnId, String>,
    /// Client id → what it holds (kept while it has a socket or players).
    owners: HashMap<String, Owner>,
    /// Access token → its client id.
    tokens: HashMap<String, String>,
    guilds: HashMap<u64, Guild>,
    /// Tracks waiting in all players.
    tracks: usize,
    limits: Limits,
    /// How long players outlive their client's last socket.
    window: Millis,
    next_track: u64,
}

type Answer = Result<Response, Response>;

fn fail(c: postern::CloseCode) -> GatewayError {
    GatewayError::app(c, true, reason(c))
}

fn decode_error(why: &str) -> GatewayError {
    GatewayError::Decode(DecodeError::Malformed(why.to_owned()))
}

impl NexusServer {
    /// The live session of `client`, if it has a socket.
    fn session_of(&self, client: &str) -> Option<SessionId> {
        self.owners.get(client).and_then(|o| o.session)
    }

    /// What `client` and the server hold now.
    fn held(&self, client: &str) -> Held {
        let owner = self.owners.get(client);
        Held {
            client_players: owner.map_or(0, |o| o.guilds.len()),
            client_tracks: owner.map_or(0, |o| o.tracks),
            players: self.guilds.len(),
            tracks: self.tracks,
        }
    }

    /// Books a change of a player's queue length from `before` to `after` to its owner and
    /// the server.
    fn book(&mut self, client: &str, before: usize, after: usize) {
        self.tracks = (self.tracks + after).saturating_sub(before);
        if let Some(o) = self.owners.get_mut(client) {
            o.tracks = (o.tracks + after).saturating_sub(before);
        }
    }

    /// A session ended (its socket closed, or it was replaced): its token is revoked and,
    /// unless another socket of the client took over, the client's players wait the window.
    fn detached(&mut self, gw: &mut Gw<'_, '_, Self>, sid: SessionId, client: Client) {
        self.tokens.remove(&client.token);
        let Some(owner) = self.owners.get_mut(&client.client_id) else {
            return;
        };
        if owner.session != Some(sid) {
            return; // Replaced: the new session holds the players.
        }
        owner.session = None;
        if owner.guilds.is_empty() {
            self.owners.remove(&client.client_id);
            return;
        }
        let at = gw.now() + self.window;
        owner.expiry = Some(gw.set_timer(at, Due::Forget(client.client_id)));
    }

    /// The window passed without a new socket: the client's players are dropped.
    fn forget(&mut self, gw: &mut Gw<'_, '_, Self>, client: &str) {
        let Some(owner) = self.owners.get(client) else {
            return;
        };
        if owner.session.is_some() {
            return;
        }
        let Some(owner) = self.owners.remove(client) else {
            return;
        };
        for key in owner.guilds {
            if let Some(mut g) = self.guilds.remove(&key) {
                g.wake.cancel(gw);
                self.tracks = self.tracks.saturating_sub(g.player.len());
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
        let mine = |g: &&mut Guild| Some(&g.owner) == me.as_ref();
        let Some(g) = self.guilds.get_mut(&guild).filter(mine) else {
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
        let client = rest::credential(request)
            .and_then(|t| self.tokens.get(t))
            .cloned()
            .ok_or_else(|| error(401, "missing or unknown access token"))?;
        let guild = player::snowflake(guild)
            .ok_or_else(|| error(400, "the guild id must be a snowflake"))?;
        let page = rest::page(request, DEFAULT_PAGE, MAX_PAGE).map_err(|e| error(400, &e))?;
        let c = &client;
        match (*kind, rest, request.method()) {
            ("subscription", [channel], "POST") => {
                let channel = player::snowflake(channel)
                    .ok_or_else(|| error(400, "the channel id must be a snowflake"))?;
                self.join(gw, c, guild, channel, body, page)
            }
            ("subscription", [], "POST") => {
                Err(error(400, "POST /api/subscription/{guild_id}/{channel_id}"))
            }
            ("subscription", [] | [_], "DELETE") => self.leave(gw, c, guild, page),
            ("subscription", [] | [_], _) => Err(rest::method_not_allowed("POST, DELETE")),
            ("player", [] | ["queue"], "GET") => {
                Ok(ok(state_json(guild, self.owned(c, guild)?, gw.now(), page)))
            }
            ("player", [], _) => Err(rest::method_not_allowed("GET")),
            ("player", ["queue"], "POST") => self.act(gw, c, guild, "queue", body, page),
            ("player", ["queue"], _) => Err(rest::method_not_allowed("GET, POST")),
            ("player", [a @ ("skip" | "stop" | "pause" | "resume")], "POST") => {
                self.act(gw, c, guild, a, body, page)
            }
            ("player", ["skip" | "stop" | "pause" | "resume"], _) => {
                Err(rest::method_not_allowed("POST"))
            }
            _ => Err(error(404, "not found")),
        }
    }

    /// The guild's player if `client` owns it; else the 404 or 403 answer.
    fn owned(&mut self, client: &str, guild: u64) -> Result<&mut Guild, Response> {
        match self.guilds.get_mut(&guild) {
            None => Err(error(
                404,
                "no player for this guild: join a voice channel first",
            )),
            Some(g) if g.owner != client => {
                Err(error(403, "this guild's player belongs to another client"))
            }
            Some(g) => Ok(g),
        }
    }

    /// The answer to a request over one of the bounds.
    fn over(&self, over: Over) -> Response {
        let (status, message) = self.limits.refusal(over);
        error(status, &message)
    }

    fn join(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        client: &str,
        guild: u64,
        channel: u64,
        body: &[u8],
        page: Page,
    ) -> Answer {
        let options = rest::object_body(body).map_err(|e| error(400, &e))?;
        let mute = rest::bool_member(&options, "self_mute", false).map_err(|e| error(400, &e))?;
        let deaf = rest::bool_member(&options, "self_deaf", true).map_err(|e| error(400, &e))?;
        if self.guilds.get(&guild).is_some_and(|g| g.owner != client) {
            return Err(error(403, "this guild's player belongs to another client"));
        }
        if !self.guilds.contains_key(&guild) {
            let held = self.held(client);
            self.limits
                .admit_player(held)
                .map_err(|over| self.over(over))?;
            if let Some(o) = self.owners.get_mut(client) {
                o.guilds.insert(guild);
            }
        }
        let queue = self.limits.queue;
        let g = self.guilds.entry(guild).or_insert_with(|| Guild {
            owner: client.to_owned(),
            channel: None,
            self_mute: mute,
            self_deaf: deaf,
            voice: Voice::default(),
            player: Player::with_limit(queue),
            wake: Wake::default(),
        });
        (g.channel, g.self_mute, g.self_deaf) = (Some(channel), mute, deaf);
        let op = voice_op(guild, g);
        let answer = state_json(guild, g, gw.now(), page);
        if let Some(sid) = self.session_of(client) {
            let _ = gw.send_raw_to(sid, &op);
        }
        Ok(ok(answer))
    }

    fn leave(&mut self, gw: &mut Gw<'_, '_, Self>, client: &str, guild: u64, page: Page) -> Answer {
        self.owned(client, guild)?;
        let mut g = self
            .guilds
            .remove(&guild)
            .ok_or_else(|| error(404, "no player for this guild"))?;
        if let Some(o) = self.owners.get_mut(client) {
            o.guilds.remove(&guild);
        }
        g.wake.cancel(gw);
        let now = gw.now();
        let change = Change::before(guild, &g, now);
        let left = g.channel.take();
        let to = self.session_of(client);
        if let Some(sid) = to {
            let _ = gw.send_raw_to(sid, &voice_op(guild, &g));
        }
        let before = g.player.len();
        let events = g.player.stop(now);
        self.book(client, before, g.player.len());
        emit(gw, to, guild, &g, events, &change);
        g.voice.leave();
        let data = Obj::new()
            .opt_id("guild_id", Some(guild))
            .opt_id("channel_id", left)
            .done();
        if let Some(sid) = to {
            let _ = gw.dispatch(sid, "VOICE_CONNECTION_DISCONNECT", &data);
        }
        Ok(ok(state_json(guild, &g, now, page)))
    }

    /// Parses an enqueue body into tracks with fresh ids, checked against the bounds.
    fn new_tracks(
        &mut self,
        client: &str,
        guild: u64,
        body: &[u8],
    ) -> Result<Vec<Track>, Response> {
        let specs = player::parse_tracks(body).map_err(|e| error(400, &e))?;
        let queued = self.owned(client, guild)?.player.len();
        let held = self.held(client);
        self.limits
            .admit_tracks(queued, held, specs.len())
            .map_err(|over| self.over(over))?;
        let mut tracks = Vec::with_capacity(specs.len());
        for spec in specs {
            self.next_track += 1;
            tracks.push(Track {
                id: self.next_track,
                spec,
            });
        }
        Ok(tracks)
    }

    /// Enqueue, skip, stop, pause or resume on a guild's player.
    fn act(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        client: &str,
        guild: u64,
        action: &str,
        body: &[u8],
        page: Page,
    ) -> Answer {
        let now = gw.now();
        let tracks = match action {
            "queue" => self.new_tracks(client, guild, body)?,
            _ => Vec::new(),
        };
        let to = self.session_of(client);
        let limits = self.limits;
        let g = self.owned(client, guild)?;
        let mut change = Change::before(guild, g, now);
        change.added = rest::array(tracks.iter().map(track_json));
        let before = g.player.len();
        let result = match action {
            "queue" => g.player.enqueue(now, tracks),
            "skip" => g.player.skip(now),
            "stop" => Ok(g.player.stop(now)),
            "pause" => g.player.pause(now),
            _ => g.player.resume(now),
        };
        let events = result.map_err(|refusal| match refusal {
            Refusal::NothingPlaying => error(409, "nothing is playing"),
            Refusal::QueueFull => error(409, &limits.refusal(Over::Queue).1),
        })?;
        let after = g.player.len();
        emit(gw, to, guild, g, events, &change);
        g.wake.sync(gw, g.player.wake_at(), || Due::Player(guild));
        let answer = state_json(guild, g, now, page);
        self.book(client, before, after);
        Ok(ok(answer))
    }
}

impl Handler for NexusServer {
    type Dialect = Nexus;
    type Session = Client;
    type Timer = Due;
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
        // A socket of a client id that has one already is served: its IDENTIFY replaces
        // the old socket (a bot whose link died silently comes back at once).
        self.pending.insert(id, client_id.to_owned());
        Admit::Accept
    }

    fn identify(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        id: ConnId,
        _: &RawValue,
    ) -> Result<Client, GatewayError> {
        let client_id = self
            .pending
            .remove(&id)
            .ok_or(GatewayError::NotIdentified)?;
        let token = random_hex(32).map_err(|_| fail(code::UNKNOWN))?;
        if let Some(old) = self.session_of(&client_id) {
            // The newcomer wins, as on the real Nexus server: the old socket gets 4006 and
            // its token is revoked; the players stay with the client id.
            if let Some(gone) = gw.end_session(old, &fail(code::SESSION_EXPIRED)) {
                self.tokens.remove(&gone.token);
            }
            if let Some(o) = self.owners.get_mut(&client_id) {
                o.session = None;
            }
        }
        Ok(Client { client_id, token })
    }

    fn ready_fields(&self, c: &Client) -> String {
        Obj::new()
            .str("client_id", &c.client_id)
            .str("access_token", &c.token)
            .members()
    }

    fn on_ready(&mut self, gw: &mut Gw<'_, '_, Self>, sid: SessionId, _resumed: bool) {
        let Some(c) = gw.session(sid) else {
            return;
        };
        let (client_id, token) = (c.client_id.clone(), c.token.clone());
        self.tokens.insert(token, client_id.clone());
        let owner = self.owners.entry(client_id).or_default();
        owner.session = Some(sid);
        if let Some(t) = owner.expiry.take() {
            gw.cancel_timer(t);
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
        // Nexus has no resume: a lost connection ends the session and its token; the
        // client's players wait the window for its next socket.
        if let Some(client) = gw.end_session(sid, &fail(code::SESSION_EXPIRED)) {
            self.detached(gw, sid, client);
        }
    }

    fn on_session_end(&mut self, gw: &mut Gw<'_, '_, Self>, sid: SessionId, client: Client) {
        self.detached(gw, sid, client);
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

    fn on_timer(&mut self, gw: &mut Gw<'_, '_, Self>, due: Due) {
        let guild = match due {
            Due::Player(guild) => guild,
            Due::Forget(client) => return self.forget(gw, &client),
        };
        let now = gw.now();
        let Some(g) = self.guilds.get_mut(&guild) else {
            return;
        };
        g.wake.fired();
        let change = Change::before(guild, g, now);
        let before = g.player.len();
        let events = g.player.tick(now);
        let (owner, after) = (g.owner.clone(), g.player.len());
        let to = self.owners.get(&owner).and_then(|o| o.session);
        let Some(g) = self.guilds.get_mut(&guild) else {
            return;
        };
        emit(gw, to, guild, g, events, &change);
        g.wake.sync(gw, g.player.wake_at(), || Due::Player(guild));
        self.book(&owner, before, after);
    }
}

/// The Nexus music-player gateway (seed 000): docs/protocols/nexus.md.
#[derive(Parser, Debug)]
#[command(name = "nexus")]
struct Cli {
    /// The upgrade password [default: random, printed on stderr]
    #[arg(long, value_name = "PW", value_parser = NonEmptyStringValueParser::new(),
          allow_hyphen_values = true)]
    password: Option<String>,
    /// HELLO's interval (10 to 86400000); the IDENTIFY deadline is 2.5 × N
    #[arg(long = "heartbeat-ms", value_name = "N", default_value_t = 30_000)]
    heartbeat: u64,
    /// How long a client's players outlive its last identified socket (10 to 86400000)
    #[arg(long = "player-window-ms", value_name = "N", default_value_t = PLAYER_WINDOW_MS)]
    window: u64,
    #[command(flatten)]
    liveness: rest::Liveness,
    #[command(flatten)]
    bounds: rest::Bounds,
    #[command(flatten)]
    serve: serve::ServeOptions,
}

fn main() -> ExitCode {
    let cli: Cli = serve::parse("127.0.0.1:9000");
    let Some(password) = serve::secret_or_random(cli.password, "--password", "password", 12) else {
        eprintln!("nexus: no randomness for a password");
        return ExitCode::FAILURE;
    };
    let ms = |ms: u64| Millis(ms.clamp(10, 86_400_000));
    let heartbeat = ms(cli.heartbeat);
    let mut gateway_config = GatewayConfig::with_heartbeat(heartbeat);
    // PING is there for clients that want it: an identified client is never expired for
    // silence. Dead sockets are found by the reactor's WebSocket Pings (`--idle-timeout-ms`).
    gateway_config.heartbeat_required = false;
    gateway_config.identify_timeout = heartbeat + gateway_config.heartbeat_grace;
    gateway_config.replay_events = 0; // No resume: nothing is kept.
    gateway_config.rate_limit = postern::gateway::RateLimit::new(2400, Millis(60_000));
    let server = NexusServer {
        password,
        pending: HashMap::new(),
        owners: HashMap::new(),
        tokens: HashMap::new(),
        guilds: HashMap::new(),
        tracks: 0,
        limits: cli.bounds.limits(),
        window: ms(cli.window),
        next_track: 0,
    };
    // Discord's voice state payloads (with a member object) can pass 4 KiB.
    let config = Config {
        max_payload: 64 * 1024,
        ..cli.liveness.config(cli.serve.config(Config::default()))
    };
    let gateway = Gateway::new(server, Nexus, gateway_config);
    serve::serve("nexus", &cli.serve, config, gateway)
}
