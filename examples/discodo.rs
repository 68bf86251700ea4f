//! The Discodo gateway (seed 002) on postern: a password on the upgrade, HELLO with the
//! heartbeat interval in seconds, echoed heartbeats, IDENTIFY binding an audio manager per
//! `user_id` + `shard_id`, voice clients recorded from forwarded Discord voice events, and
//! RESUMED for a manager reclaimed before VC_TIMEOUT.
//!
//! ```text
//! cargo run --release --example discodo -- --listen 127.0.0.1:9002 --password hellodiscodo
//! ```
//!
//! Options (`--help` lists them with their defaults): `--password PW` (default: a random
//! password, printed), `--heartbeat-ms N` (default 15000), `--vc-timeout-ms N` (default
//! 300000), the node's bounds (see [`Limits`]): `--max-managers N` (default 1000),
//! `--max-voice-clients N` (default 10000), `--max-voice-clients-per-manager N` (default
//! 2500), and what every example takes (`--listen ADDR`, default 127.0.0.1:9002, and the
//! connection limits; see `examples/support/serve.rs`). Prints `listening on ADDR` on
//! stderr when ready. The protocol, every op and every error: docs/protocols/discodo.md.

#[path = "support/serve.rs"]
mod serve;

use clap::builder::NonEmptyStringValueParser;
use clap::Parser;
use postern::gateway::dialects::discodo::{code, write_heartbeat_ack, write_payload, Discodo};
use postern::gateway::secret::{random_hex, secret_eq};
use postern::gateway::{
    write_json_str, Admit, Gateway, GatewayConfig, GatewayError, Gw, Handler, SessionId,
};
use postern::timer::TimerId;
use postern::{Config, ConnId, Millis, Request};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;

/// An audio manager's identity: normalised `user_id` and `shard_id`.
type Key = (String, Option<String>);

/// A connection's state: the manager it identified for, if any.
struct Conn {
    bot: Option<Key>,
}

/// One guild's voice client. Ids are kept as the JSON the client first sent.
struct VoiceClient {
    id: String,
    guild: String,
    channel: String,
}

/// A bot's audio manager; it outlives its connection by VC_TIMEOUT.
struct Manager {
    user_id: String,
    voice: BTreeMap<String, VoiceClient>,
    owner: Option<SessionId>,
    expiry: Option<TimerId>,
}

impl Manager {
    /// RESUMED's `d`: every voice client as `[guild_id, channel_id]`.
    fn resumed(&self) -> String {
        let pairs: Vec<String> = self
            .voice
            .values()
            .map(|vc| format!("[{},{}]", vc.guild, vc.channel))
            .collect();
        format!("{{\"voice_clients\":[{}]}}", pairs.join(","))
    }
}

/// What the node may hold, so that no client can make it grow without end. Managers
/// waiting out VC_TIMEOUT count: the seed promises them their full VC_TIMEOUT, so they are
/// never evicted early; past a bound, creating is refused with `LIMIT_REACHED`.
struct Limits {
    /// Audio managers, live or waiting out VC_TIMEOUT (one per connection at most).
    managers: usize,
    /// Voice clients of every manager together.
    voice_clients: usize,
    /// Voice clients of one manager: Discord puts at most 2,500 guilds on a shard, and a
    /// manager is one shard's.
    per_manager: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            managers: 1_000,
            voice_clients: 10_000,
            per_manager: 2_500,
        }
    }
}

impl Limits {
    /// `LIMIT_REACHED` if a manager holding `of_manager` voice clients, on a node holding
    /// `of_node`, may not have one more.
    fn room_for_voice_client(&self, of_manager: usize, of_node: usize) -> Result<(), GatewayError> {
        if of_manager >= self.per_manager {
            let bound = "this audio manager's bound on voice clients";
            return Err(limit(bound, self.per_manager));
        }
        if of_node >= self.voice_clients {
            return Err(limit(
                "this node's bound on voice clients",
                self.voice_clients,
            ));
        }
        Ok(())
    }
}

/// The Discodo node.
struct Node {
    password: String,
    vc_timeout: Millis,
    managers: HashMap<Key, Manager>,
    /// Voice clients of every manager together.
    voice_clients: usize,
    limits: Limits,
    next_vc: u64,
}

fn app(c: postern::CloseCode, fatal: bool, why: impl Into<Cow<'static, str>>) -> GatewayError {
    GatewayError::app(c, fatal, why)
}

fn bad(why: impl Into<Cow<'static, str>>) -> GatewayError {
    app(code::BAD_REQUEST, false, why)
}

/// `LIMIT_REACHED` (not fatal): `bound` (e.g. "this node's bound on voice clients") of
/// `most` is reached.
fn limit(bound: &str, most: usize) -> GatewayError {
    let why = format!("{bound} ({most}) is reached");
    app(code::LIMIT_REACHED, false, why)
}

/// A Discord id (snowflake) as a JSON string or integer: (lookup key, JSON as sent).
/// `"123"` and `123` name the same thing.
fn snowflake(raw: &RawValue, field: &str) -> Result<(String, String), GatewayError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id<'a> {
        Int(u64),
        Text(#[serde(borrow)] Cow<'a, str>),
    }
    let why = || {
        bad(format!(
            "{field} must be a non-empty string or a non-negative integer"
        ))
    };
    match serde_json::from_str::<Id<'_>>(raw.get()).map_err(|_| why())? {
        Id::Int(n) => Ok((n.to_string(), n.to_string())),
        Id::Text(s) if !s.is_empty() && s.len() <= 64 => {
            let mut json = String::new();
            write_json_str(&mut json, &s);
            Ok((s.into_owned(), json))
        }
        Id::Text(_) => Err(why()),
    }
}

/// Parses an op's `d` as `T`, or BAD_REQUEST naming the op.
fn data<'a, T: Deserialize<'a>>(op: &str, d: Option<&'a RawValue>) -> Result<T, GatewayError> {
    let raw = d.ok_or_else(|| bad(format!("{op} needs d")))?;
    serde_json::from_str(raw.get()).map_err(|e| bad(format!("{op}: {e}")))
}

#[derive(Deserialize)]
struct Identify<'a> {
    #[serde(borrow)]
    user_id: &'a RawValue,
    #[serde(borrow, default)]
    shard_id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct DiscordEvent<'a> {
    #[serde(borrow)]
    t: Cow<'a, str>,
    #[serde(borrow, default)]
    d: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct VoiceState<'a> {
    #[serde(borrow)]
    guild_id: &'a RawValue,
    #[serde(borrow, default)]
    channel_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    user_id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Guild<'a> {
    #[serde(borrow)]
    guild_id: &'a RawValue,
}

fn send(gw: &mut Gw<'_, '_, Node>, session: SessionId, op: &str, d: &str) {
    let mut out = String::with_capacity(op.len() + d.len() + 16);
    write_payload(&mut out, op, d);
    let _ = gw.send_raw_to(session, &out);
}

impl Node {
    fn identify_op(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        session: SessionId,
        d: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        if gw.session(session).is_some_and(|c| c.bot.is_some()) {
            return Err(app(
                code::ALREADY_IDENTIFIED,
                false,
                "this connection is already identified",
            ));
        }
        let id: Identify<'_> = data("IDENTIFY", d)?;
        let (user_id, _) = snowflake(id.user_id, "user_id")?;
        let shard = match id.shard_id {
            Some(raw) => match snowflake(raw, "shard_id")?.0 {
                n if n.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => return Err(bad("shard_id must be null or a non-negative integer")),
            },
            None => None,
        };
        let key = (user_id.clone(), shard);
        let full = self.managers.len() >= self.limits.managers;
        let resumed = match self.managers.get_mut(&key) {
            Some(m) => {
                if let Some(t) = m.expiry.take() {
                    gw.cancel_timer(t);
                }
                if let Some(old) = m.owner.replace(session).filter(|&old| old != session) {
                    let why = "the same user_id and shard_id identified on another connection";
                    gw.end_session(old, &app(code::SESSION_REPLACED, true, why));
                }
                Some(m.resumed())
            }
            None if full => {
                let most = self.limits.managers;
                return Err(limit("this node's bound on audio managers", most));
            }
            None => {
                let m = Manager {
                    user_id,
                    voice: BTreeMap::new(),
                    owner: Some(session),
                    expiry: None,
                };
                self.managers.insert(key.clone(), m);
                None
            }
        };
        if let Some(c) = gw.session(session) {
            c.bot = Some(key);
        }
        if let Some(d) = resumed {
            send(gw, session, "RESUMED", &d);
        }
        Ok(())
    }

    fn discord_event(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        session: SessionId,
        key: &Key,
        d: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        let event: DiscordEvent<'_> = data("DISCORD_EVENT", d)?;
        let (guild, channel) = match &*event.t {
            "VOICE_STATE_UPDATE" => {
                let state: VoiceState<'_> = data("VOICE_STATE_UPDATE", event.d)?;
                if let Some(user) = state.user_id {
                    let mine = self.managers.get(key).map(|m| m.user_id.as_str());
                    if Some(snowflake(user, "user_id")?.0.as_str()) != mine {
                        return Ok(()); // another member's voice state
                    }
                }
                let channel = match state.channel_id {
                    Some(raw) => Some(snowflake(raw, "channel_id")?.1),
                    None => Some("null".to_owned()),
                };
                (snowflake(state.guild_id, "guild_id")?, channel)
            }
            "VOICE_SERVER_UPDATE" => {
                let server: Guild<'_> = data("VOICE_SERVER_UPDATE", event.d)?;
                (snowflake(server.guild_id, "guild_id")?, None)
            }
            _ => return Ok(()), // READY, RESUMED, ...: nothing to record
        };
        let Some(m) = self.managers.get_mut(key) else {
            return Ok(());
        };
        let ((guild_key, guild_json), channel) = (guild, channel);
        if let Some(vc) = m.voice.get_mut(&guild_key) {
            if let Some(channel) = channel {
                vc.channel = channel;
            }
            return Ok(());
        }
        if channel.as_deref() == Some("null") {
            return Ok(()); // left a channel it had no voice client for
        }
        self.limits
            .room_for_voice_client(m.voice.len(), self.voice_clients)?;
        self.voice_clients += 1;
        self.next_vc += 1;
        let vc = VoiceClient {
            id: random_hex(8).unwrap_or_else(|_| format!("{:016x}", self.next_vc)),
            guild: guild_json,
            channel: channel.unwrap_or_else(|| "null".to_owned()),
        };
        let d = format!(
            "{{\"guild_id\":{},\"id\":\"{}\",\"channel_id\":{}}}",
            vc.guild, vc.id, vc.channel
        );
        m.voice.insert(guild_key, vc);
        send(gw, session, "VC_CREATED", &d);
        Ok(())
    }

    fn voice_client<'m>(
        &'m mut self,
        key: &Key,
        op: &str,
        d: Option<&RawValue>,
    ) -> Result<(&'m mut Manager, String), GatewayError> {
        let guild: Guild<'_> = data(op, d)?;
        let (guild_key, _) = snowflake(guild.guild_id, "guild_id")?;
        let m = self
            .managers
            .get_mut(key)
            .ok_or_else(|| app(code::INTERNAL_ERROR, true, "audio manager lost"))?;
        if !m.voice.contains_key(&guild_key) {
            let why = format!("no voice client for guild {guild_key}");
            return Err(app(code::VOICE_CLIENT_NOT_FOUND, false, why));
        }
        Ok((m, guild_key))
    }
}

impl Handler for Node {
    type Dialect = Discodo;
    type Session = Conn;
    /// VC_TIMEOUT of a manager left without a connection.
    type Timer = Key;
    type Command = ();

    fn on_upgrade(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        request: &Request<'_, '_>,
    ) -> Admit<Conn> {
        let refuse = |why: &'static str| Admit::Fail(app(code::FORBIDDEN, true, why));
        match request.header("Authorization") {
            None => refuse("missing Authorization header"),
            Some(given) if secret_eq(given, self.password.as_bytes()) => {
                Admit::Identified(Conn { bot: None })
            }
            Some(_) => refuse("password mismatch"),
        }
    }

    fn identify(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        _: &RawValue,
    ) -> Result<Conn, GatewayError> {
        // The dialect decodes IDENTIFY as an application op (see on_event).
        Err(GatewayError::NotIdentified)
    }

    fn on_event(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        session: SessionId,
        op: &str,
        d: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        match op {
            "HEARTBEAT" => {
                let mut out = String::new();
                write_heartbeat_ack(&mut out, d);
                let _ = gw.send_raw_to(session, &out);
                return Ok(());
            }
            "IDENTIFY" => return self.identify_op(gw, session, d),
            _ => {}
        }
        let Some(key) = gw.session(session).and_then(|c| c.bot.clone()) else {
            return Err(app(
                code::NOT_IDENTIFIED,
                true,
                format!("{op} before IDENTIFY"),
            ));
        };
        match op {
            "DISCORD_EVENT" => self.discord_event(gw, session, &key, d),
            "VC_DESTROY" => {
                let (m, guild) = self.voice_client(&key, op, d)?;
                if let Some(vc) = m.voice.remove(&guild) {
                    self.voice_clients -= 1;
                    send(
                        gw,
                        session,
                        "VC_DESTROYED",
                        &format!("{{\"guild_id\":{}}}", vc.guild),
                    );
                }
                Ok(())
            }
            "getState" => {
                let (m, guild) = self.voice_client(&key, op, d)?;
                if let Some(vc) = m.voice.get(&guild) {
                    let d = format!(
                        "{{\"id\":\"{}\",\"guild_id\":{},\"channel_id\":{}}}",
                        vc.id, vc.guild, vc.channel
                    );
                    send(gw, session, "getState", &d);
                }
                Ok(())
            }
            _ => Err(app(code::UNKNOWN_OP, false, format!("unknown op {op}"))),
        }
    }

    fn on_detach(&mut self, gw: &mut Gw<'_, '_, Self>, session: SessionId) {
        // The engine session is the connection; what survives it is the audio manager.
        let Some(Conn { bot: Some(key) }) =
            gw.end_session(session, &GatewayError::HeartbeatTimeout)
        else {
            return;
        };
        if let Some(m) = self
            .managers
            .get_mut(&key)
            .filter(|m| m.owner == Some(session))
        {
            m.owner = None;
            let at = gw.now() + self.vc_timeout;
            m.expiry = Some(gw.set_timer(at, key));
        }
    }

    fn on_timer(&mut self, _: &mut Gw<'_, '_, Self>, key: Key) {
        if self.managers.get(&key).is_some_and(|m| m.owner.is_none()) {
            if let Some(m) = self.managers.remove(&key) {
                self.voice_clients -= m.voice.len();
            }
        }
    }
}

/// The Discodo gateway (seed 002): docs/protocols/discodo.md.
#[derive(Parser, Debug)]
#[command(name = "discodo")]
struct Cli {
    /// The Authorization value [default: random, printed on stderr]
    #[arg(long, value_name = "PW", value_parser = NonEmptyStringValueParser::new(),
          allow_hyphen_values = true)]
    password: Option<String>,
    /// The heartbeat interval in ms (10 to 86400000; values outside are taken as the nearer
    /// bound), announced in seconds
    #[arg(long = "heartbeat-ms", value_name = "N", default_value_t = 15_000)]
    heartbeat: u64,
    /// VC_TIMEOUT in ms
    #[arg(long = "vc-timeout-ms", value_name = "N", default_value_t = 300_000)]
    vc_timeout: u64,
    /// Audio managers the node holds, live or waiting out VC_TIMEOUT
    #[arg(long, value_name = "N", default_value_t = Limits::default().managers)]
    max_managers: usize,
    /// Voice clients the node holds, all managers together
    #[arg(long, value_name = "N", default_value_t = Limits::default().voice_clients)]
    max_voice_clients: usize,
    /// Voice clients one audio manager (one connection) holds
    #[arg(long, value_name = "N", default_value_t = Limits::default().per_manager)]
    max_voice_clients_per_manager: usize,
    #[command(flatten)]
    serve: serve::ServeOptions,
}

fn main() -> ExitCode {
    let cli: Cli = serve::parse("127.0.0.1:9002");
    let Some(password) = serve::secret_or_random(cli.password, "--password", "password", 12) else {
        eprintln!("discodo: no randomness for a password");
        return ExitCode::FAILURE;
    };
    let heartbeat = Millis(cli.heartbeat.clamp(10, 86_400_000));
    let mut gateway_config = GatewayConfig::with_heartbeat(heartbeat);
    // Heartbeats are ops here (see the dialect): a generous command allowance.
    gateway_config.rate_limit = postern::gateway::RateLimit::new(1000, Millis(10_000));
    let node = Node {
        password,
        vc_timeout: Millis(cli.vc_timeout),
        managers: HashMap::new(),
        voice_clients: 0,
        limits: Limits {
            managers: cli.max_managers,
            voice_clients: cli.max_voice_clients,
            per_manager: cli.max_voice_clients_per_manager,
        },
        next_vc: 0,
    };
    let config = Config {
        // Forwarded Discord events can be large.
        max_payload: 1024 * 1024,
        ..cli.serve.config(Config::default())
    };
    let gateway = Gateway::new(node, Discodo, gateway_config);
    serve::serve("discodo", &cli.serve, config, gateway)
}
