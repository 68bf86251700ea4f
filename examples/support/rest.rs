//! Helpers shared by the `nexus` and `nightingale` examples: JSON objects written in a fixed
//! key order, REST answers and routing, credentials, and start-up (options, password, bind,
//! run).
#![allow(dead_code)]

use postern::gateway::write_json_str;
use postern::{Request, Response};
use std::net::SocketAddr;

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

/// Reads `--name value` pairs from the command line, handing each to `set`.
pub fn options(
    args: impl Iterator<Item = String>,
    mut set: impl FnMut(&str, String) -> Result<(), String>,
) -> Result<(), String> {
    let mut args = args;
    while let Some(name) = args.next() {
        let value = args
            .next()
            .filter(|v| !v.is_empty())
            .ok_or(format!("{name} needs a value"))?;
        set(&name, value)?;
    }
    Ok(())
}

/// Parses `--listen`'s value.
pub fn listen(value: &str) -> Result<SocketAddr, String> {
    value.parse().map_err(|e| format!("--listen: {e}"))
}
