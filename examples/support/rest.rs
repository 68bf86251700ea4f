//! Helpers shared by the `nexus` and `nightingale` examples: JSON objects written in a fixed
//! key order, REST answers and routing, credentials, and the options both take (liveness,
//! bounds on players and queues).
#![allow(dead_code)]

use crate::bounds::Limits;
use crate::serve::at_least_one;
use clap::Args;
use postern::gateway::write_json_str;
use postern::{Config, Millis, Request, Response};

/// A JSON object written member by member, in the order given.
#[derive(Debug, Default)]
pub struct Obj(String);

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj(String::from("{"))
    }

    /// A member whose value is JSON text already.
    pub fn raw(mut self, key: &str, json: &str) -> Obj {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        write_json_str(&mut self.0, key);
        self.0.push(':');
        self.0.push_str(json);
        self
    }

    /// A string member.
    pub fn str(self, key: &str, value: &str) -> Obj {
        let mut quoted = String::with_capacity(value.len() + 2);
        write_json_str(&mut quoted, value);
        self.raw(key, &quoted)
    }

    /// A string member, or `null`.
    pub fn opt_str(self, key: &str, value: Option<&str>) -> Obj {
        match value {
            Some(v) => self.str(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// A snowflake written as a string of digits (Discord's way), or `null`.
    pub fn opt_id(self, key: &str, value: Option<u64>) -> Obj {
        self.opt_str(key, value.map(|v| v.to_string()).as_deref())
    }

    /// An unsigned integer member.
    pub fn num(self, key: &str, value: u64) -> Obj {
        self.raw(key, &value.to_string())
    }

    /// An unsigned integer member, or `null`.
    pub fn opt_num(self, key: &str, value: Option<u64>) -> Obj {
        match value {
            Some(v) => self.num(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// A boolean member.
    pub fn bool(self, key: &str, value: bool) -> Obj {
        self.raw(key, if value { "true" } else { "false" })
    }

    /// The object's text.
    pub fn done(mut self) -> String {
        self.0.push('}');
        self.0
    }

    /// The members' text without the braces (for `Handler::ready_fields`).
    pub fn members(self) -> String {
        self.0[1..].to_owned()
    }
}

/// A JSON array of JSON texts.
pub fn array(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(","))
}

/// `200 OK` with a JSON body.
pub fn ok(json: String) -> Response {
    Response::json(200, json)
}

/// An error answer: `{"error": message}` with `status`.
pub fn error(status: u16, message: &str) -> Response {
    Response::json(status, Obj::new().str("error", message).done())
}

/// `405 Method Not Allowed` with the methods the route takes.
pub fn method_not_allowed(allow: &str) -> Response {
    error(405, "method not allowed").header("Allow", allow)
}

/// The path's non-empty segments (`/api//x/` gives `["api", "x"]`).
pub fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// The credential of an `Authorization` header: its value, without a `Bearer ` prefix.
pub fn credential<'b>(request: &Request<'_, 'b>) -> Option<&'b str> {
    let value = request.header_str("authorization")?;
    Some(value.strip_prefix("Bearer ").map_or(value, str::trim))
}

/// A JSON object body (an empty body counts as `{}`).
pub fn object_body(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("body must be a JSON object".into()),
        Err(e) => Err(format!("body is not JSON: {e}")),
    }
}

/// An optional boolean member of a body: absent or null gives `default`.
pub fn bool_member(
    map: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    default: bool,
) -> Result<bool, String> {
    match map.get(key) {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("`{key}` must be a boolean")),
    }
}

/// An optional boolean query parameter (`true`/`false`/`1`/`0`): absent gives `default`.
pub fn bool_param(request: &Request<'_, '_>, key: &str, default: bool) -> Result<bool, String> {
    match request.query_param(key).as_deref() {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(format!("`{key}` must be true or false")),
    }
}

/// A page of a listing: `offset` (default 0) and `limit` (default `default`, at most `max`)
/// query parameters. Errors are messages for a 400 answer.
pub fn page(request: &Request<'_, '_>, default: usize, max: usize) -> Result<Page, String> {
    let number = |name: &str| -> Result<Option<usize>, String> {
        match request.query_param(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<usize>()
                .map(Some)
                .map_err(|_| format!("`{name}` must be a whole number")),
        }
    };
    let offset = number("offset")?.unwrap_or(0);
    let limit = number("limit")?.unwrap_or(default);
    if limit > max {
        return Err(format!("`limit` is at most {max}"));
    }
    Ok(Page { offset, limit })
}

/// Which part of a listing to answer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// Items skipped from the start.
    pub offset: usize,
    /// Items answered at most.
    pub limit: usize,
}

/// The liveness of a protocol without heartbeats: the reactor Pings a connection silent for
/// `--ping-interval-ms` and closes one silent (no frame at all, Pongs included) for
/// `--idle-timeout-ms` with 1001 `idle timeout`. Each is taken between 10 ms and 24 h. A ping
/// interval at or above the idle timeout is raised to it by the reactor's arithmetic (a Ping
/// then never goes out before the close), so keep it below.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Liveness")]
pub struct Liveness {
    /// A WebSocket Ping to a connection silent this long, and again each N while silent
    #[arg(long = "ping-interval-ms", value_name = "N", default_value_t = 20_000)]
    pub ping_interval: u64,
    /// A connection from which no frame (Pongs included) arrived this long is closed with
    /// 1001; keep it above the ping interval
    #[arg(long = "idle-timeout-ms", value_name = "N", default_value_t = 60_000)]
    pub idle_timeout: u64,
}

impl Liveness {
    /// `config` with this liveness.
    pub fn config(&self, config: Config) -> Config {
        let ms = |ms: u64| Some(Millis(ms.clamp(10, 86_400_000)));
        Config {
            ping_interval: ms(self.ping_interval),
            idle_timeout: ms(self.idle_timeout),
            ..config
        }
    }
}

/// The bounds on players and queued tracks ([`Limits`]) as options; each is a whole number,
/// 0 taken as 1.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Players and queues")]
pub struct Bounds {
    /// Tracks waiting in one player
    #[arg(long = "max-queue", value_name = "N", value_parser = at_least_one,
          default_value_t = Limits::default().queue)]
    pub queue: usize,
    /// Players one client owns
    #[arg(long = "max-client-players", value_name = "N", value_parser = at_least_one,
          default_value_t = Limits::default().client_players)]
    pub client_players: usize,
    /// Tracks waiting in all of one client's players
    #[arg(long = "max-client-tracks", value_name = "N", value_parser = at_least_one,
          default_value_t = Limits::default().client_tracks)]
    pub client_tracks: usize,
    /// Players on the server
    #[arg(long = "max-players", value_name = "N", value_parser = at_least_one,
          default_value_t = Limits::default().players)]
    pub players: usize,
    /// Tracks waiting on the server
    #[arg(long = "max-tracks", value_name = "N", value_parser = at_least_one,
          default_value_t = Limits::default().tracks)]
    pub tracks: usize,
}

impl Bounds {
    /// The limits these options set.
    pub fn limits(&self) -> Limits {
        Limits {
            queue: self.queue,
            client_players: self.client_players,
            client_tracks: self.client_tracks,
            players: self.players,
            tracks: self.tracks,
        }
    }
}
