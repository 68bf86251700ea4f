//! Helpers of the Nexus end-to-end tests (`tests/nexus.rs`, `tests/nexus_bounds.rs`): the
//! server started with the test password, login, REST with the access token, events.
//! Include with `#[path = "support_music/nexus_helpers.rs"] mod nexus_helpers;` after
//! `mod support_music;` (the nightingale tests have their own `impl Server`).
#![allow(dead_code)]

use crate::support_music::{example_binary, Client, Server, PASSWORD};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Heartbeat interval of the tests that do not test heartbeats.
pub const CALM: u64 = 2000;

pub fn binary() -> PathBuf {
    example_binary("nexus", "POSTERN_NEXUS_BIN")
}

impl Server {
    pub fn start(heartbeat_ms: u64) -> Server {
        let hb = heartbeat_ms.to_string();
        Server::start_with(&["--heartbeat-ms", &hb])
    }

    /// A server with the test password on a free port, the heartbeat `CALM`, and `more`.
    pub fn start_with(more: &[&str]) -> Server {
        let calm = CALM.to_string();
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--password",
            PASSWORD,
            "--heartbeat-ms",
            &calm,
        ];
        args.extend_from_slice(more);
        Server::spawn(binary(), &args).expect("listening")
    }

    /// An upgrade on `/` with `headers` (it always succeeds: refusals are closes).
    pub fn ws(&self, headers: &[(&str, &str)]) -> Client {
        self.try_ws("/", headers).expect("WebSocket handshake")
    }

    /// Upgrades with the password and `client_id`, and reads HELLO.
    pub fn connect(&self, client_id: &str) -> Client {
        let mut c = self.ws(&[("Authorization", PASSWORD), ("client-id", client_id)]);
        assert_eq!(c.recv()["op"], 0, "HELLO first");
        c
    }

    /// Connects and identifies: the client and its access token.
    pub fn login(&self, client_id: &str) -> (Client, String) {
        let mut c = self.connect(client_id);
        c.send(json!({"op": 10, "d": {}}));
        let token = c.event("READY")["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        (c, token)
    }

    /// A REST request with the access token `token`: the status and the JSON body.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.http_as(method, path, token, body)
    }

    pub fn status(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> u16 {
        self.http(method, path, token, body).0
    }
}

impl Client {
    /// The next payload, which must be the event `t`: its `d`.
    pub fn event(&mut self, t: &str) -> Value {
        let v = self.recv();
        assert_eq!(v["t"], t, "expected {t}, got {v}");
        v["d"].clone()
    }

    pub fn ping(&mut self) {
        self.send(json!({"op": 11}));
        assert_eq!(self.recv(), json!({"op": 12}));
    }
}

pub fn track(title: &str, ms: u64) -> Value {
    json!({"title": title, "duration_ms": ms})
}

/// The op 1 payload joining (or, with `None`, leaving) `guild`'s voice channel.
pub fn voice_op(guild: &str, channel: Option<&str>) -> Value {
    let d =
        json!({"guild_id": guild, "channel_id": channel, "self_mute": false, "self_deaf": true});
    json!({"op": 1, "d": {"op": 4, "d": d}})
}

/// Joins `guild`'s `channel` over REST and checks the op 1 payload to forward.
pub fn join(server: &Server, c: &mut Client, token: &str, guild: &str, channel: &str) {
    let path = format!("/api/subscription/{guild}/{channel}");
    let (status, body) = server.http("POST", &path, Some(token), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(c.recv(), voice_op(guild, Some(channel)));
}

/// Sends the bot's voice state and server for `guild`, expecting VOICE_CONNECTION_READY.
pub fn voice_ready(c: &mut Client, me: &str, guild: &str, channel: &str) {
    let state =
        json!({"guild_id": guild, "channel_id": channel, "user_id": me, "session_id": "abc"});
    c.send(json!({"t": "VOICE_STATE_UPDATE", "d": state}));
    let server = json!({"token": "vtok", "guild_id": guild, "endpoint": "voice.example:443"});
    c.send(json!({"t": "VOICE_SERVER_UPDATE", "d": server}));
    let ready = c.event("VOICE_CONNECTION_READY");
    assert_eq!(ready, json!({"guild_id": guild, "channel_id": channel}));
}
