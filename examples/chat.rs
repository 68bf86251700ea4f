//! The i386chat gateway (seed 004) on postern: present with a token, chat in channels,
//! heartbeats, sequence numbers, resume with replay, bans, GATEWAY_DOWN on shutdown.
//!
//! ```text
//! cargo run --release --example chat -- --user alice:TOKEN_A --admin root:TOKEN_R
//! ```
//!
//! The protocol, every event and every error code: docs/protocols/chat.md.

#[path = "support/chat_channels.rs"]
mod chat_channels;
#[path = "support/chat_roster.rs"]
mod chat_roster;
#[path = "support/chat_users.rs"]
mod chat_users;
#[path = "support/chat_web.rs"]
mod chat_web;
#[path = "support/serve.rs"]
mod serve;
#[path = "support/wall_clock.rs"]
mod wall_clock;

use chat_channels::{ChannelLimits, Channels, Refusal};
use chat_roster::Roster;
use chat_users::{User, Users};

use clap::{ArgMatches, Parser};
use postern::gateway::dialects::i386::I386;
use postern::gateway::{
    random_hex, write_json_str, Gateway, GatewayConfig, GatewayError, Gw, Handler, SessionId,
};
use postern::{Config, Millis, OriginPolicy, Request, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet, VecDeque};
use std::process::ExitCode;

/// Error codes this server adds to the dialect's (see docs/protocols/chat.md).
const UNKNOWN_EVENT: u16 = 4010;
const INVALID_EVENT: u16 = 4011;
/// The dialect's "rate limited", also answered to a user creating channels too fast.
const RATE_LIMITED: u16 = 4008;
const FORBIDDEN: u16 = 4012;
const BANNED: u16 = 4013;
const UNKNOWN_TARGET: u16 = 4016;
/// Channel every session starts in.
const DEFAULT_CHANNEL: &str = "general";
/// The longest heartbeat interval `--heartbeat-ms` takes: a day (`hb_int` stays far below
/// 2^53, like every integer the server sends).
const MAX_HEARTBEAT_MS: u64 = 86_400_000;
/// Messages remembered for MESSAGE_DELETE.
const MESSAGE_MEMORY: usize = 10_000;

/// Per-session state.
struct Chatter {
    user: String,
    admin: bool,
    channel: String,
    enc_key: String,
    /// Whether the session has joined its first channel (its READY was sent): a resume's
    /// READY carries no member list.
    joined: bool,
}

/// The chat server.
struct Chat {
    users: Users,
    banned: HashSet<String>,
    channels: Channels,
    /// Recent messages: id → (author, channel), oldest first in `order`.
    messages: HashMap<u64, (String, String)>,
    order: VecDeque<u64>,
    next_message: u64,
    /// Channels with more members than this get no ROOM_USER_ADD/REMOVE.
    large_threshold: usize,
    /// Who is in each channel, for the member lists.
    roster: Roster,
}

fn invalid(why: &'static str) -> GatewayError {
    GatewayError::app(INVALID_EVENT, false, why)
}

fn json_str(s: &str) -> String {
    let mut out = String::new();
    write_json_str(&mut out, s);
    out
}

#[derive(Deserialize)]
struct Present<'a> {
    #[serde(borrow)]
    token: std::borrow::Cow<'a, str>,
}

impl Chat {
    fn user_for(&self, payload: &RawValue) -> Result<&User, GatewayError> {
        let present: Present<'_> = serde_json::from_str(payload.get()).map_err(|e| {
            GatewayError::Decode(postern::gateway::DecodeError::Malformed(e.to_string()))
        })?;
        self.users
            .find(&present.token)
            .ok_or(GatewayError::AuthenticationFailed)
    }

    fn remember(&mut self, id: u64, author: &str, channel: &str) {
        self.messages
            .insert(id, (author.to_owned(), channel.to_owned()));
        self.order.push_back(id);
        while self.order.len() > MESSAGE_MEMORY {
            if let Some(old) = self.order.pop_front() {
                self.messages.remove(&old);
            }
        }
    }

    /// Announces a join or leave (`event`) of `user` to `channel`, unless the channel is
    /// large: like Discord's large threshold, presence is not broadcast in channels of more
    /// than `large_threshold` members, which would cost N² events as N sessions join.
    fn presence(&self, gw: &mut Gw<'_, '_, Self>, channel: &str, event: &str, user: &str) {
        self.presence_but(gw, channel, event, user, None);
    }

    /// [`Chat::presence`] to everyone in `channel` but `except`.
    fn presence_but(
        &self,
        gw: &mut Gw<'_, '_, Self>,
        channel: &str,
        event: &str,
        user: &str,
        except: Option<SessionId>,
    ) {
        if gw.room_size(channel) > self.large_threshold {
            return;
        }
        let data = format!(
            "{{\"user\":{},\"channel\":{}}}",
            json_str(user),
            json_str(channel)
        );
        let _ = gw.dispatch_room(channel, event, &data, except);
    }

    /// Moves `session` of `user` from `from` to `to`: ROOM_USER_REMOVE to those left in
    /// `from`, ROOM_USER_ADD to `to`'s members, the mover's own carrying `to`'s member list.
    fn move_to(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        session: SessionId,
        user: &str,
        from: &str,
        to: &str,
    ) {
        gw.leave(session, from);
        self.roster.leave(from, user);
        self.presence(gw, from, "ROOM_USER_REMOVE", user);
        gw.join(session, to);
        self.roster.join(to, user);
        if let Some(me) = gw.session(session) {
            me.channel = to.to_owned();
        }
        self.presence_but(gw, to, "ROOM_USER_ADD", user, Some(session));
        if gw.room_size(to) <= self.large_threshold {
            let data = format!(
                "{{\"user\":{},\"channel\":{}{}}}",
                json_str(user),
                json_str(to),
                self.roster.members_field(to, self.large_threshold)
            );
            let _ = gw.dispatch(session, "ROOM_USER_ADD", &data);
        }
    }

    fn data<'a, T: Deserialize<'a>>(data: Option<&'a RawValue>) -> Result<T, GatewayError> {
        let raw = data.map_or("{}", |d| d.get());
        serde_json::from_str(raw).map_err(|_| invalid("invalid event payload"))
    }
}

#[derive(Deserialize)]
struct Content {
    #[serde(alias = "message", alias = "text", alias = "body")]
    content: String,
}
#[derive(Deserialize)]
struct MessageRef {
    #[serde(alias = "message_id", deserialize_with = "id_from_number_or_string")]
    id: u64,
}
#[derive(Deserialize)]
struct BanTarget {
    #[serde(
        alias = "user_id",
        alias = "username",
        alias = "name",
        alias = "target"
    )]
    user: String,
}
#[derive(Deserialize)]
struct ChannelName {
    #[serde(alias = "name", alias = "channel_id", alias = "to")]
    channel: String,
}

/// Message ids are numbers; accept them as strings of digits too.
fn id_from_number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(u64),
        Text(String),
    }
    match Id::deserialize(d)? {
        Id::Number(n) => Ok(n),
        Id::Text(t) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
            t.parse().map_err(serde::de::Error::custom)
        }
        Id::Text(_) => Err(serde::de::Error::custom("id is not a string of digits")),
    }
}

fn valid_channel(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Handler for Chat {
    type Dialect = I386;
    type Session = Chatter;
    type Timer = ();
    type Command = ();

    fn identify(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: postern::ConnId,
        payload: &RawValue,
    ) -> Result<Chatter, GatewayError> {
        let user = self.user_for(payload)?;
        if self.banned.contains(&user.name) {
            return Err(GatewayError::app(BANNED, true, "banned"));
        }
        let enc_key = random_hex(16).map_err(|_| GatewayError::app(4000, true, "no randomness"))?;
        Ok(Chatter {
            user: user.name.clone(),
            admin: user.admin,
            channel: DEFAULT_CHANNEL.into(),
            enc_key,
            joined: false,
        })
    }

    fn resume(&mut self, session: &Chatter, payload: &RawValue) -> bool {
        matches!(self.user_for(payload), Ok(user) if user.name == session.user)
            && !self.banned.contains(&session.user)
    }

    /// Sessions count against their user's quota (`--max-sessions-per-owner`): one user
    /// opening sessions fast only ever evicts its own detached ones.
    fn owner(&self, session: &Chatter) -> Option<postern::gateway::Owner> {
        Some(postern::gateway::Owner::user(&session.user))
    }

    /// READY's fields; a new session's also lists every channel and its channel's members
    /// before it joins (its first event, ROOM_USER_ADD, adds it), up to the large threshold.
    fn ready_fields(&self, session: &Chatter) -> String {
        let members = if session.joined {
            String::new()
        } else {
            let members = self
                .roster
                .members_field(&session.channel, self.large_threshold.saturating_sub(1));
            format!(",\"channels\":{}{members}", self.channels.names_json())
        };
        format!(
            "\"enc_key\":\"{}\",\"user\":{},\"channel\":{}{members}",
            session.enc_key,
            json_str(&session.user),
            json_str(&session.channel)
        )
    }

    fn on_ready(&mut self, gw: &mut Gw<'_, '_, Self>, session: SessionId, resumed: bool) {
        if resumed {
            return;
        }
        let Some(c) = gw.session(session) else { return };
        c.joined = true;
        let (user, channel) = (c.user.clone(), c.channel.clone());
        gw.join(session, &channel);
        self.roster.join(&channel, &user);
        self.presence(gw, &channel, "ROOM_USER_ADD", &user);
    }

    fn on_event(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        session: SessionId,
        event: &str,
        data: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        let Some(me) = gw.session(session) else {
            return Ok(());
        };
        let (user, admin, channel) = (me.user.clone(), me.admin, me.channel.clone());
        match event {
            "MESSAGE_CREATE" => {
                let msg: Content = Self::data(data)?;
                if msg.content.is_empty() || msg.content.chars().count() > 2000 {
                    return Err(invalid("content must be 1-2000 characters"));
                }
                self.next_message += 1;
                let id = self.next_message;
                self.remember(id, &user, &channel);
                let out = format!(
                    "{{\"id\":{id},\"channel\":{},\"author\":{},\"content\":{},\"timestamp\":{}}}",
                    json_str(&channel),
                    json_str(&user),
                    json_str(&msg.content),
                    wall_clock::unix_ms()
                );
                let _ = gw.dispatch_room(&channel, "MESSAGE_CREATE", &out, None);
            }
            "MESSAGE_DELETE" => {
                let target: MessageRef = Self::data(data)?;
                let Some((author, in_channel)) = self.messages.get(&target.id).cloned() else {
                    return Err(GatewayError::app(UNKNOWN_TARGET, false, "unknown message"));
                };
                if author != user && !admin {
                    return Err(GatewayError::app(FORBIDDEN, false, "not your message"));
                }
                self.messages.remove(&target.id);
                let out = format!(
                    "{{\"id\":{},\"channel\":{}}}",
                    target.id,
                    json_str(&in_channel)
                );
                let _ = gw.dispatch_room(&in_channel, "MESSAGE_DELETE", &out, None);
            }
            "START_TYPING" => {
                let out = format!(
                    "{{\"user\":{},\"channel\":{}}}",
                    json_str(&user),
                    json_str(&channel)
                );
                let _ = gw.dispatch_room(&channel, "START_TYPING", &out, Some(session));
            }
            "CHANNEL_ADD" => {
                let add: ChannelName = Self::data(data)?;
                if !valid_channel(&add.channel) {
                    return Err(invalid("channel names are 1-32 of a-z 0-9 - _"));
                }
                self.channels
                    .add(gw.now(), &user, &add.channel)
                    .map_err(refusal)?;
                let out = format!(
                    "{{\"channel\":{},\"by\":{}}}",
                    json_str(&add.channel),
                    json_str(&user)
                );
                let _ = gw.dispatch_all("CHANNEL_ADD", &out);
            }
            "CHANNEL_MOVE" => {
                let to: ChannelName = Self::data(data)?;
                if !self.channels.contains(&to.channel) {
                    return Err(GatewayError::app(UNKNOWN_TARGET, false, "unknown channel"));
                }
                if to.channel != channel {
                    self.move_to(gw, session, &user, &channel, &to.channel);
                }
            }
            "SYSTEM_BAN_ADD" => {
                if !admin {
                    return Err(GatewayError::app(FORBIDDEN, false, "admins only"));
                }
                let ban: BanTarget = Self::data(data)?;
                self.banned.insert(ban.user.clone());
                let out = format!(
                    "{{\"user\":{},\"by\":{}}}",
                    json_str(&ban.user),
                    json_str(&user)
                );
                let _ = gw.dispatch_all("SYSTEM_BAN_ADD", &out);
                let theirs: Vec<SessionId> = gw
                    .sessions()
                    .into_iter()
                    .filter(|&s| gw.session(s).is_some_and(|c| c.user == ban.user))
                    .collect();
                for s in theirs {
                    if let Some(c) = gw.end_session(s, &GatewayError::app(BANNED, true, "banned")) {
                        self.roster.leave(&c.channel, &c.user);
                        self.presence(gw, &c.channel, "ROOM_USER_REMOVE", &c.user);
                    }
                }
            }
            _ => return Err(GatewayError::app(UNKNOWN_EVENT, false, "unknown event")),
        }
        Ok(())
    }

    fn on_session_end(&mut self, gw: &mut Gw<'_, '_, Self>, _: SessionId, c: Chatter) {
        self.roster.leave(&c.channel, &c.user);
        self.presence(gw, &c.channel, "ROOM_USER_REMOVE", &c.user);
    }

    /// The browser client (examples/chat_web/) at `/`.
    fn on_http(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        request: &Request<'_, '_>,
        _: &[u8],
    ) -> Response {
        chat_web::answer(request)
    }
}

/// The answer to a CHANNEL_ADD a bound refused (docs/protocols/chat.md, CHANNEL_ADD).
fn refusal(why: Refusal) -> GatewayError {
    match why {
        Refusal::Exists => invalid("channel exists"),
        Refusal::TableFull => invalid("too many channels"),
        Refusal::UserQuota => invalid("too many channels of yours"),
        Refusal::UserRate => GatewayError::app(RATE_LIMITED, false, "channels created too fast"),
    }
}

/// The i386chat gateway (seed 004): docs/protocols/chat.md.
#[derive(Parser, Debug)]
#[command(name = "chat")]
struct Cli {
    /// A user, NAME:TOKEN (repeatable). Without any --user/--admin, a user `demo` with a
    /// random token, printed on stderr
    #[arg(long = "user", value_name = "NAME:TOKEN", value_parser = credential,
          allow_hyphen_values = true)]
    users: Vec<Credential>,
    /// An admin user, NAME:TOKEN (repeatable)
    #[arg(long = "admin", value_name = "NAME:TOKEN", value_parser = credential,
          allow_hyphen_values = true)]
    admins: Vec<Credential>,
    /// hb_int, 1 to 86400000 (a day; larger values are taken as a day); the silence allowed
    /// is 2.5 × N
    #[arg(long = "heartbeat-ms", value_name = "N", default_value_t = 20_000)]
    heartbeat: u64,
    /// How long a session outlives its connection
    #[arg(long = "resume-window-ms", value_name = "N", default_value_t = 60_000)]
    resume_window: u64,
    /// Largest client message (1 to 16 MiB)
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    max_payload: usize,
    /// Channels with more members get no ROOM_USER_ADD / ROOM_USER_REMOVE
    #[arg(long, value_name = "N", default_value_t = 250)]
    large_threshold: usize,
    /// Sessions held, live or awaiting resume (0 is taken as 1)
    #[arg(long, value_name = "N", default_value_t = GatewayConfig::default().max_sessions)]
    max_sessions: usize,
    /// Sessions one user holds, live or awaiting resume (0 is taken as 1)
    #[arg(long, value_name = "N",
          default_value_t = GatewayConfig::default().max_sessions_per_owner)]
    max_sessions_per_owner: usize,
    /// Channels that may exist, `general` included (0 is taken as 1)
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_channels: usize,
    /// Channels one user may create (0: users create none)
    #[arg(long, value_name = "N", default_value_t = 100)]
    channels_per_user: usize,
    /// Channels one user may create per minute (0 is taken as 1)
    #[arg(long, value_name = "N", default_value_t = 10)]
    channel_adds_per_minute: u64,
    /// A page origin (`scheme://host[:port]`) besides the server's own that may open the
    /// gateway; any other Origin is refused 403 (repeatable)
    #[arg(long = "allowed-origin", value_name = "ORIGIN", value_parser = origin)]
    allowed_origins: Vec<String>,
    #[command(flatten)]
    serve: serve::ServeOptions,
}

/// A `NAME:TOKEN` of `--user` or `--admin`.
#[derive(Clone, Debug)]
struct Credential {
    name: String,
    token: String,
}

/// Parses `NAME:TOKEN`, both non-empty (the token may contain `:`).
fn credential(value: &str) -> Result<Credential, String> {
    match value.split_once(':') {
        Some((name, token)) if !name.is_empty() && !token.is_empty() => Ok(Credential {
            name: name.into(),
            token: token.into(),
        }),
        _ => Err("want NAME:TOKEN".into()),
    }
}

/// Checks an `--allowed-origin`: `scheme://host[:port]`, nothing after it.
fn origin(value: &str) -> Result<String, String> {
    let value = value.trim_end_matches('/');
    match value.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty() && !rest.is_empty() && !rest.contains(['/', '?', '#', '@']) =>
        {
            Ok(value.to_owned())
        }
        _ => Err("want scheme://host[:port], e.g. https://chat.example".into()),
    }
}

/// `--listen`'s default.
const LISTEN: &str = "127.0.0.1:9004";

/// The users of `--user` and `--admin` in command-line order (a token given twice belongs
/// to the last), or else the demo user with a random token (printed); `Err` with the status
/// to exit with.
fn users(cli: &Cli, matches: &ArgMatches) -> Result<Users, ExitCode> {
    let at = |id: &str| matches.indices_of(id).into_iter().flatten();
    let users = at("users").zip(&cli.users).map(|(i, c)| (i, c, false));
    let mut given: Vec<_> = users
        .chain(at("admins").zip(&cli.admins).map(|(i, c)| (i, c, true)))
        .collect();
    given.sort_by_key(|&(index, ..)| index);
    let mut users = Users::new();
    for (_, c, admin) in given {
        let user = User {
            name: c.name.clone(),
            token: c.token.clone(),
            admin,
        };
        if let Err(e) = users.add(user) {
            let flag = if admin { "--admin" } else { "--user" };
            serve::usage_error::<Cli>(LISTEN, format!("{flag} {}: {e}", c.name));
        }
    }
    if users.is_empty() {
        let what = "token of the demo user `demo`";
        let Some(token) = serve::secret_or_random(None, "--user", what, 12) else {
            eprintln!("chat: no randomness for a token");
            return Err(ExitCode::FAILURE);
        };
        let demo = User {
            name: "demo".into(),
            token,
            admin: false,
        };
        if let Err(e) = users.add(demo) {
            eprintln!("{e}");
            return Err(ExitCode::FAILURE);
        }
    }
    Ok(users)
}

fn main() -> ExitCode {
    let (cli, matches) = serve::parse_matches::<Cli>(LISTEN);
    let users = match users(&cli, &matches) {
        Ok(users) => users,
        Err(status) => return status,
    };
    let heartbeat = Millis(cli.heartbeat.clamp(1, MAX_HEARTBEAT_MS));
    let mut gateway_config = GatewayConfig::with_heartbeat(heartbeat);
    gateway_config.resume_window = Millis(cli.resume_window);
    gateway_config.max_sessions = cli.max_sessions.max(1);
    gateway_config.max_sessions_per_owner = cli.max_sessions_per_owner.max(1);
    let channels = ChannelLimits {
        max_channels: cli.max_channels.max(1),
        per_user: cli.channels_per_user,
        per_minute: u32::try_from(cli.channel_adds_per_minute.max(1)).unwrap_or(u32::MAX),
    };
    let chat = Chat {
        users,
        banned: HashSet::new(),
        channels: Channels::new(DEFAULT_CHANNEL, channels),
        messages: HashMap::new(),
        order: VecDeque::new(),
        next_message: 0,
        large_threshold: cli.large_threshold,
        roster: Roster::default(),
    };
    let config = Config {
        max_payload: cli.max_payload,
        origin_policy: OriginPolicy::SameOrigin(cli.allowed_origins.clone()),
        ..cli.serve.config(Config::default())
    };
    let gateway = Gateway::new(chat, I386, gateway_config);
    serve::serve("chat", &cli.serve, config, gateway)
}
