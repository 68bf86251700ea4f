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
#[path = "support/chat_users.rs"]
mod chat_users;
#[path = "support/serve.rs"]
mod serve;

use chat_channels::{ChannelLimits, Channels, Refusal};
use chat_users::{User, Users};

use postern::gateway::dialects::i386::I386;
use postern::gateway::{
    random_hex, write_json_str, Gateway, GatewayConfig, GatewayError, Gw, Handler, SessionId,
};
use postern::{Config, Millis};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
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
        if gw.room_size(channel) > self.large_threshold {
            return;
        }
        let data = format!(
            "{{\"user\":{},\"channel\":{}}}",
            json_str(user),
            json_str(channel)
        );
        gw.dispatch_room(channel, event, &data, None);
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

    fn ready_fields(&self, session: &Chatter) -> String {
        format!(
            "\"enc_key\":\"{}\",\"user\":{},\"channel\":{}",
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
        let (user, channel) = (c.user.clone(), c.channel.clone());
        gw.join(session, &channel);
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
                let out =
                    format!(
                    "{{\"id\":{id},\"channel\":{},\"author\":{},\"content\":{},\"timestamp\":{}}}",
                    json_str(&channel), json_str(&user), json_str(&msg.content), unix_ms()
                );
                gw.dispatch_room(&channel, "MESSAGE_CREATE", &out, None);
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
                gw.dispatch_room(&in_channel, "MESSAGE_DELETE", &out, None);
            }
            "START_TYPING" => {
                let out = format!(
                    "{{\"user\":{},\"channel\":{}}}",
                    json_str(&user),
                    json_str(&channel)
                );
                gw.dispatch_room(&channel, "START_TYPING", &out, Some(session));
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
                gw.dispatch_all("CHANNEL_ADD", &out);
            }
            "CHANNEL_MOVE" => {
                let to: ChannelName = Self::data(data)?;
                if !self.channels.contains(&to.channel) {
                    return Err(GatewayError::app(UNKNOWN_TARGET, false, "unknown channel"));
                }
                if to.channel != channel {
                    gw.leave(session, &channel);
                    self.presence(gw, &channel, "ROOM_USER_REMOVE", &user);
                    gw.join(session, &to.channel);
                    if let Some(me) = gw.session(session) {
                        me.channel = to.channel.clone();
                    }
                    self.presence(gw, &to.channel, "ROOM_USER_ADD", &user);
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
                gw.dispatch_all("SYSTEM_BAN_ADD", &out);
                let theirs: Vec<SessionId> = gw
                    .sessions()
                    .into_iter()
                    .filter(|&s| gw.session(s).is_some_and(|c| c.user == ban.user))
                    .collect();
                for s in theirs {
                    if let Some(c) = gw.end_session(s, &GatewayError::app(BANNED, true, "banned")) {
                        self.presence(gw, &c.channel, "ROOM_USER_REMOVE", &c.user);
                    }
                }
            }
            _ => return Err(GatewayError::app(UNKNOWN_EVENT, false, "unknown event")),
        }
        Ok(())
    }

    fn on_session_end(&mut self, gw: &mut Gw<'_, '_, Self>, _: SessionId, c: Chatter) {
        self.presence(gw, &c.channel, "ROOM_USER_REMOVE", &c.user);
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

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

struct Options {
    listen: SocketAddr,
    users: Users,
    heartbeat: Millis,
    resume_window: Millis,
    max_payload: usize,
    large_threshold: usize,
    max_sessions: usize,
    max_sessions_per_owner: usize,
    channels: ChannelLimits,
    limits: Config,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        listen: ([127, 0, 0, 1], 9004).into(),
        users: Users::new(),
        heartbeat: Millis(20_000),
        resume_window: Millis(60_000),
        max_payload: 4096,
        large_threshold: 250,
        max_sessions: GatewayConfig::default().max_sessions,
        max_sessions_per_owner: GatewayConfig::default().max_sessions_per_owner,
        channels: ChannelLimits {
            max_channels: 10_000,
            per_user: 100,
            per_minute: 10,
        },
        limits: Config::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if serve::switch_option(&mut o.limits, &arg) {
            continue;
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        if serve::limit_option(&mut o.limits, &arg, &value)? {
            continue;
        }
        let number = || value.parse::<u64>().map_err(|e| format!("{arg}: {e}"));
        match arg.as_str() {
            "--listen" => o.listen = value.parse().map_err(|e| format!("--listen: {e}"))?,
            "--user" | "--admin" => {
                let (name, token) = value
                    .split_once(':')
                    .ok_or(format!("{arg} takes NAME:TOKEN"))?;
                if name.is_empty() || token.is_empty() {
                    return Err(format!("{arg} takes NAME:TOKEN"));
                }
                o.users
                    .add(User {
                        name: name.into(),
                        token: token.into(),
                        admin: arg == "--admin",
                    })
                    .map_err(|e| format!("{arg}: {e}"))?;
            }
            "--heartbeat-ms" => o.heartbeat = Millis(number()?.clamp(1, MAX_HEARTBEAT_MS)),
            "--resume-window-ms" => o.resume_window = Millis(number()?),
            "--max-payload" => o.max_payload = number()? as usize,
            "--large-threshold" => o.large_threshold = number()? as usize,
            "--max-sessions" => o.max_sessions = number()?.max(1) as usize,
            "--max-sessions-per-owner" => o.max_sessions_per_owner = number()?.max(1) as usize,
            "--max-channels" => o.channels.max_channels = number()?.max(1) as usize,
            "--channels-per-user" => o.channels.per_user = number()? as usize,
            "--channel-adds-per-minute" => {
                o.channels.per_minute = u32::try_from(number()?.max(1)).unwrap_or(u32::MAX);
            }
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let mut options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\nusage: chat [--listen ADDR] [--user NAME:TOKEN]... [--admin NAME:TOKEN]... [--heartbeat-ms N] [--resume-window-ms N] [--max-payload BYTES] [--large-threshold N] [--max-sessions N] [--max-sessions-per-owner N] [--max-channels N] [--channels-per-user N] [--channel-adds-per-minute N] {}", serve::LIMIT_USAGE);
            return ExitCode::from(2);
        }
    };
    if options.users.is_empty() {
        let token = random_hex(12).unwrap_or_else(|_| "demo-token".into());
        eprintln!("no --user given: demo user `demo` with token {token}");
        let demo = User {
            name: "demo".into(),
            token,
            admin: false,
        };
        if let Err(e) = options.users.add(demo) {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    }
    let mut gateway_config = GatewayConfig::with_heartbeat(options.heartbeat);
    gateway_config.resume_window = options.resume_window;
    gateway_config.max_sessions = options.max_sessions;
    gateway_config.max_sessions_per_owner = options.max_sessions_per_owner;
    let chat = Chat {
        users: options.users,
        banned: HashSet::new(),
        channels: Channels::new(DEFAULT_CHANNEL, options.channels),
        messages: HashMap::new(),
        order: VecDeque::new(),
        next_message: 0,
        large_threshold: options.large_threshold,
    };
    let config = Config {
        max_payload: options.max_payload,
        ..options.limits
    };
    let gateway = Gateway::new(chat, I386, gateway_config);
    serve::serve("chat", options.listen, config, gateway)
}
