//! The simulated music player shared by the `nexus` and `nightingale` examples, sans-IO.
//!
//! postern plays no audio: a [`Player`] is one guild's queue whose "playback" of a track
//! lasts the track's duration. The player never reads a clock: every call takes `now`, and
//! the caller must call [`Player::tick`] once `now` reaches [`Player::wake_at`] (the examples
//! arm a timer on the engine's wheel with [`Wake`]). Every call returns the [`Event`]s it
//! produced, in order, which each example turns into its protocol's payloads.
//!
//! Rules:
//! - A track starts when it reaches the head of the queue and nothing is playing; the next
//!   one starts exactly when the previous one ended (so a late tick does not shift the
//!   schedule, and several tracks may end in one tick).
//! - A track with `error` set, or with a zero duration, is refused when its turn comes
//!   ([`Event::Refused`]); the player moves on to the next one at once.
//! - A track with `fail_after_ms` below its duration breaks after that much playback
//!   ([`EndReason::Failed`]).
//! - Skip ends the current track (the next starts); stop ends it and clears the queue;
//!   play-now ends it (stopped) and starts the given track, the queue kept behind it.
//! - Pause freezes the current track's position; resume continues it. A skipped or stopped
//!   track's pause dies with it: the next track starts playing.
//! - Each operation that changed the queue or the current track ends with one
//!   [`Event::QueueChanged`].
//!
//! [`Voice`] is the matching simulation of a Discord voice connection (state + server).
#![allow(dead_code)]

use postern::gateway::{Gw, Handler};
use postern::Millis;
use postern::TimerId;
use serde::Deserialize;
use std::collections::VecDeque;

/// Longest track accepted: 24 hours.
pub const MAX_DURATION_MS: u64 = 86_400_000;
/// Most tracks queued in one player, by default (`--max-queue`; see `bounds.rs`).
pub const MAX_QUEUE: usize = 1000;
/// Longest text field of a track, in bytes.
pub const MAX_TEXT: usize = 1024;

/// A track as the REST API describes it (JSON). Only `duration_ms` is required.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct TrackSpec {
    /// Title.
    pub title: Option<String>,
    /// Artist.
    pub artist: Option<String>,
    /// Album.
    pub album: Option<String>,
    /// Channel (uploader) name.
    pub channel: Option<String>,
    /// Where it comes from (`source_url` is accepted too).
    #[serde(default, alias = "source_url")]
    pub url: Option<String>,
    /// Thumbnail URL.
    pub thumbnail: Option<String>,
    /// Length of the simulated playback, 0..=24 h in milliseconds (0 is refused at play).
    pub duration_ms: u64,
    /// If set, the simulator refuses the track when its turn comes, with this message.
    pub error: Option<String>,
    /// If set and below the duration, playback breaks after this many milliseconds.
    pub fail_after_ms: Option<u64>,
}

/// A queued track: its spec and the id the server gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// Server-assigned id, unique per server run.
    pub id: u64,
    /// What the client described.
    pub spec: TrackSpec,
}

impl Track {
    /// The simulated length.
    pub fn duration(&self) -> Millis {
        Millis(self.spec.duration_ms)
    }

    /// Why the simulator refuses to play it, if it does.
    pub fn refusal(&self) -> Option<String> {
        match (&self.spec.error, self.spec.duration_ms) {
            (Some(e), _) => Some(e.clone()),
            (None, 0) => Some("track has no audio (duration_ms is 0)".into()),
            _ => None,
        }
    }

    /// Playback length before it ends or breaks, and whether it breaks.
    fn limit(&self) -> (Millis, bool) {
        match self.spec.fail_after_ms {
            Some(f) if f < self.spec.duration_ms => (Millis(f), true),
            _ => (self.duration(), false),
        }
    }
}

/// Parses a REST body holding tracks: one track object, an array of them, or
/// `{"tracks": [...]}`. Errors are messages for a 400 answer.
pub fn parse_tracks(body: &[u8]) -> Result<Vec<TrackSpec>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(mut map) if map.contains_key("tracks") => {
            match map.remove("tracks") {
                Some(serde_json::Value::Array(items)) => items,
                _ => return Err("`tracks` must be an array of tracks".into()),
            }
        }
        one @ serde_json::Value::Object(_) => vec![one],
        _ => {
            return Err("expected a track object, an array of tracks or {\"tracks\": [...]}".into())
        }
    };
    if items.is_empty() {
        return Err("no tracks given".into());
    }
    items.into_iter().map(parse_track).collect()
}

/// Parses and checks one track object.
pub fn parse_track(value: serde_json::Value) -> Result<TrackSpec, String> {
    let spec: TrackSpec =
        serde_json::from_value(value).map_err(|e| format!("invalid track: {e}"))?;
    if spec.duration_ms > MAX_DURATION_MS {
        return Err(format!("duration_ms is at most {MAX_DURATION_MS}"));
    }
    let texts = [
        &spec.title,
        &spec.artist,
        &spec.album,
        &spec.channel,
        &spec.url,
        &spec.thumbnail,
        &spec.error,
    ];
    if texts
        .iter()
        .any(|t| t.as_ref().is_some_and(|s| s.len() > MAX_TEXT))
    {
        return Err(format!("text fields are at most {MAX_TEXT} bytes"));
    }
    Ok(spec)
}

/// Why a track ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// It played its whole duration.
    Finished,
    /// Skipped by hand.
    Skipped,
    /// Stopped by hand (stop, play-now, leaving the channel).
    Stopped,
    /// Playback broke (`fail_after_ms`), with this message.
    Failed(String),
}

/// What the player did, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A track started playing.
    Started(Track),
    /// The playing track ended, and why.
    Ended(Track, EndReason),
    /// A track was refused when its turn came (it never started), with the reason.
    Refused(Track, String),
    /// The current track was paused at this position.
    Paused(Track, Millis),
    /// The current track was resumed at this position.
    Resumed(Track, Millis),
    /// The queue or the current track changed (once per operation, after its other events).
    QueueChanged,
}

/// Why an operation was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Skip, pause or resume with no current track.
    NothingPlaying,
    /// The queue would hold more than its limit ([`MAX_QUEUE`] by default).
    QueueFull,
}

#[derive(Clone, Debug)]
struct Playing {
    track: Track,
    /// Playback before `since`.
    played: Millis,
    /// Playing since then; `None` while paused.
    since: Option<Millis>,
}

impl Playing {
    fn position(&self, now: Millis) -> Millis {
        match self.since {
            Some(since) => self.played + now.saturating_since(since),
            None => self.played,
        }
    }

    /// When it ends or breaks, if playing.
    fn due(&self) -> Option<Millis> {
        let since = self.since?;
        Some(since + self.track.limit().0.saturating_since(self.played))
    }
}

/// One guild's queue and its simulated playback.
#[derive(Clone, Debug)]
pub struct Player {
    queue: VecDeque<Track>,
    current: Option<Playing>,
    version: u64,
    limit: usize,
}

impl Default for Player {
    fn default() -> Player {
        Player::with_limit(MAX_QUEUE)
    }
}

impl Player {
    /// An idle player with an empty queue of at most [`MAX_QUEUE`] tracks.
    pub fn new() -> Player {
        Player::default()
    }

    /// An idle player whose queue holds at most `limit` waiting tracks.
    pub fn with_limit(limit: usize) -> Player {
        Player {
            queue: VecDeque::new(),
            current: None,
            version: 0,
            limit,
        }
    }

    /// How many tracks wait in the queue (the current one apart).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no track waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// At most `limit` waiting tracks from position `offset` (0: the next to play).
    pub fn page(&self, offset: usize, limit: usize) -> impl Iterator<Item = &Track> {
        let start = offset.min(self.queue.len());
        let end = start.saturating_add(limit).min(self.queue.len());
        self.queue.range(start..end)
    }

    /// The playing (or paused) track.
    pub fn current(&self) -> Option<&Track> {
        self.current.as_ref().map(|p| &p.track)
    }

    /// The tracks waiting, in order.
    pub fn queue(&self) -> impl Iterator<Item = &Track> {
        self.queue.iter()
    }

    /// Whether the current track is paused.
    pub fn is_paused(&self) -> bool {
        self.current.as_ref().is_some_and(|p| p.since.is_none())
    }

    /// The current track's position (zero when idle), never past the point where it ends or
    /// breaks (a tick that comes late does not show more playback than there was).
    pub fn position(&self, now: Millis) -> Millis {
        self.current
            .as_ref()
            .map_or(Millis(0), |p| p.position(now).min(p.track.limit().0))
    }

    /// When [`tick`](Player::tick) must be called next (`None`: idle or paused).
    pub fn wake_at(&self) -> Option<Millis> {
        self.current.as_ref().and_then(Playing::due)
    }

    /// Appends tracks (all or none); the first starts if nothing is playing.
    pub fn enqueue(&mut self, now: Millis, tracks: Vec<Track>) -> Result<Vec<Event>, Refusal> {
        if self.queue.len() + tracks.len() > self.limit {
            return Err(Refusal::QueueFull);
        }
        let mut out = Vec::new();
        let before = self.version;
        if !tracks.is_empty() {
            self.version += 1;
        }
        self.queue.extend(tracks);
        self.advance(now, &mut out);
        self.finish(before, &mut out);
        Ok(out)
    }

    /// Plays `track` now: the current track ends (stopped), the queue stays behind it.
    pub fn play_now(&mut self, now: Millis, track: Track) -> Result<Vec<Event>, Refusal> {
        if self.queue.len() >= self.limit {
            return Err(Refusal::QueueFull);
        }
        let mut out = Vec::new();
        let before = self.version;
        self.end_current(EndReason::Stopped, &mut out);
        self.queue.push_front(track);
        self.version += 1;
        self.advance(now, &mut out);
        self.finish(before, &mut out);
        Ok(out)
    }

    /// Ends the current track (skipped); the next one starts.
    pub fn skip(&mut self, now: Millis) -> Result<Vec<Event>, Refusal> {
        if self.current.is_none() {
            return Err(Refusal::NothingPlaying);
        }
        let mut out = Vec::new();
        let before = self.version;
        self.end_current(EndReason::Skipped, &mut out);
        self.advance(now, &mut out);
        self.finish(before, &mut out);
        Ok(out)
    }

    /// Ends the current track (stopped) and clears the queue. Never refused.
    pub fn stop(&mut self, _now: Millis) -> Vec<Event> {
        let mut out = Vec::new();
        let before = self.version;
        self.end_current(EndReason::Stopped, &mut out);
        if !self.queue.is_empty() {
            self.queue.clear();
            self.version += 1;
        }
        self.finish(before, &mut out);
        out
    }

    /// Pauses the current track (nothing happens if it is paused already).
    pub fn pause(&mut self, now: Millis) -> Result<Vec<Event>, Refusal> {
        let playing = self.current.as_mut().ok_or(Refusal::NothingPlaying)?;
        let Some(since) = playing.since.take() else {
            return Ok(Vec::new());
        };
        playing.played = playing.played + now.saturating_since(since);
        Ok(vec![Event::Paused(playing.track.clone(), playing.played)])
    }

    /// Resumes the current track (nothing happens if it is playing).
    pub fn resume(&mut self, now: Millis) -> Result<Vec<Event>, Refusal> {
        let playing = self.current.as_mut().ok_or(Refusal::NothingPlaying)?;
        if playing.since.is_some() {
            return Ok(Vec::new());
        }
        playing.since = Some(now);
        Ok(vec![Event::Resumed(playing.track.clone(), playing.played)])
    }

    /// Ends every track due by `now` (finished or broken) and starts the next ones.
    pub fn tick(&mut self, now: Millis) -> Vec<Event> {
        let mut out = Vec::new();
        let before = self.version;
        while let Some(due) = self.wake_at().filter(|&due| due <= now) {
            let Some(playing) = self.current.take() else {
                break;
            };
            self.version += 1;
            let reason = match playing.track.limit() {
                (after, true) => EndReason::Failed(format!("playback failed after {} ms", after.0)),
                _ => EndReason::Finished,
            };
            out.push(Event::Ended(playing.track, reason));
            self.advance(due, &mut out);
        }
        self.finish(before, &mut out);
        out
    }

    fn end_current(&mut self, reason: EndReason, out: &mut Vec<Event>) {
        if let Some(playing) = self.current.take() {
            self.version += 1;
            out.push(Event::Ended(playing.track, reason));
        }
    }

    /// Starts the next playable track at `at` if nothing is playing.
    fn advance(&mut self, at: Millis, out: &mut Vec<Event>) {
        while self.current.is_none() {
            let Some(track) = self.queue.pop_front() else {
                return;
            };
            self.version += 1;
            match track.refusal() {
                Some(error) => out.push(Event::Refused(track, error)),
                None => {
                    out.push(Event::Started(track.clone()));
                    self.current = Some(Playing {
                        track,
                        played: Millis(0),
                        since: Some(at),
                    });
                }
            }
        }
    }

    fn finish(&self, before: u64, out: &mut Vec<Event>) {
        if self.version != before {
            out.push(Event::QueueChanged);
        }
    }
}

/// A simulated Discord voice connection: it is up once both the bot's voice state (with a
/// channel and a session id) and the voice server (token and endpoint) are known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Voice {
    /// The channel the bot is in, per its last voice state.
    pub channel: Option<u64>,
    /// Discord's voice session id.
    pub session: Option<String>,
    /// Voice server token.
    pub token: Option<String>,
    /// Voice server endpoint.
    pub endpoint: Option<String>,
    connected: bool,
}

/// What a voice update did to the connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum VoiceChange {
    /// Nothing visible.
    Unchanged,
    /// The connection came up.
    Connected,
    /// The connection was up and moved (new channel, session or server).
    Reconnected,
    /// The connection went down (the bot left the channel).
    Disconnected,
}

/// A Discord voice payload the bot passes on: its VOICE_STATE_UPDATE or VOICE_SERVER_UPDATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoiceUpdate {
    /// The bot's voice state: its channel (`None`: it left) and Discord's voice session id.
    State(Option<u64>, String),
    /// The voice server: token and endpoint.
    Server(String, String),
}

/// A Discord voice payload, read: its guild, whose voice state it is (`user_id`, for a
/// state), and the update, or why it is incomplete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoicePayload {
    /// `guild_id`.
    pub guild: u64,
    /// `user_id` as a string of digits (states only; `None` when absent).
    pub user: Option<String>,
    /// The update, or what is missing: a state needs a non-empty `session_id` and a
    /// `channel_id` (a snowflake or null); a server a non-empty `token` and `endpoint`.
    pub update: Result<VoiceUpdate, &'static str>,
}

impl VoicePayload {
    /// Reads Discord's `d` of a VOICE_STATE_UPDATE (`state`) or a VOICE_SERVER_UPDATE. An
    /// error means it cannot be attributed: not an object, or no snowflake `guild_id`.
    pub fn parse(state: bool, d: &serde_json::Value) -> Result<VoicePayload, &'static str> {
        let d = d.as_object().ok_or("the voice payload must be an object")?;
        let guild = d
            .get("guild_id")
            .and_then(snowflake_value)
            .ok_or("guild_id must be a snowflake")?;
        let text = |k: &str| {
            d.get(k)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let (user, update) = if state {
            let user = match d.get("user_id") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let channel = match d.get("channel_id") {
                Some(serde_json::Value::Null) => Some(None),
                Some(v) => snowflake_value(v).map(Some),
                None => None,
            };
            let update = match (channel, text("session_id")) {
                (Some(channel), Some(session)) => Ok(VoiceUpdate::State(channel, session)),
                _ => Err(
                    "VOICE_STATE_UPDATE needs a session_id and a channel_id (a snowflake or null)",
                ),
            };
            (user, update)
        } else {
            let update = match (text("token"), text("endpoint")) {
                (Some(token), Some(endpoint)) => Ok(VoiceUpdate::Server(token, endpoint)),
                _ => Err("VOICE_SERVER_UPDATE needs a token and an endpoint"),
            };
            (None, update)
        };
        Ok(VoicePayload {
            guild,
            user,
            update,
        })
    }
}

/// A Discord snowflake: 1-20 decimal digits that fit in 64 bits.
pub fn snowflake(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

/// A snowflake given as a JSON string of digits or a JSON integer.
pub fn snowflake_value(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::String(s) => snowflake(s),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

impl Voice {
    /// Applies one of the bot's voice updates.
    pub fn apply(&mut self, update: VoiceUpdate) -> VoiceChange {
        match update {
            VoiceUpdate::State(channel, session) => self.state(channel, session),
            VoiceUpdate::Server(token, endpoint) => self.server(token, endpoint),
        }
    }

    /// Whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The bot's voice state: in `channel` (or in none) with Discord session `session`.
    pub fn state(&mut self, channel: Option<u64>, session: String) -> VoiceChange {
        let Some(channel) = channel else {
            let was = std::mem::take(self).connected;
            return if was {
                VoiceChange::Disconnected
            } else {
                VoiceChange::Unchanged
            };
        };
        let moved =
            self.channel != Some(channel) || self.session.as_deref() != Some(session.as_str());
        self.channel = Some(channel);
        self.session = Some(session);
        self.settle(moved)
    }

    /// The voice server: `token` at `endpoint`.
    pub fn server(&mut self, token: String, endpoint: String) -> VoiceChange {
        let moved = self.token.as_deref() != Some(token.as_str())
            || self.endpoint.as_deref() != Some(endpoint.as_str());
        self.token = Some(token);
        self.endpoint = Some(endpoint);
        self.settle(moved)
    }

    /// Forgets everything; returns whether the connection was up.
    pub fn leave(&mut self) -> bool {
        std::mem::take(self).connected
    }

    fn settle(&mut self, moved: bool) -> VoiceChange {
        let complete = self.channel.is_some()
            && self.session.is_some()
            && self.token.is_some()
            && self.endpoint.is_some();
        match (complete, self.connected) {
            (true, false) => {
                self.connected = true;
                VoiceChange::Connected
            }
            (true, true) if moved => VoiceChange::Reconnected,
            _ => VoiceChange::Unchanged,
        }
    }
}

/// The timer that drives one player on the engine's wheel: re-armed after every player call
/// with the player's [`wake_at`](Player::wake_at).
#[derive(Debug, Default)]
pub struct Wake {
    timer: Option<TimerId>,
    at: Option<Millis>,
}

impl Wake {
    /// Arms (or moves, or cancels) the timer so that it fires at `want` with `payload`.
    pub fn sync<H: Handler>(
        &mut self,
        gw: &mut Gw<'_, '_, H>,
        want: Option<Millis>,
        payload: impl FnOnce() -> H::Timer,
    ) {
        if want == self.at && (want.is_none() || self.timer.is_some()) {
            return;
        }
        self.cancel(gw);
        if let Some(at) = want {
            self.timer = Some(gw.set_timer(at, payload()));
            self.at = Some(at);
        }
    }

    /// The timer fired (it is no longer armed).
    pub fn fired(&mut self) {
        self.timer = None;
        self.at = None;
    }

    /// Cancels the timer, if armed.
    pub fn cancel<H: Handler>(&mut self, gw: &mut Gw<'_, '_, H>) {
        if let Some(t) = self.timer.take() {
            gw.cancel_timer(t);
        }
        self.at = None;
    }
}
