//! The Nexus example's payloads (seed 000, docs/protocols/nexus.md): a guild's player and
//! the JSON the server writes about it (the track and player objects, op 1, and the events
//! of the simulated player, QUEUE_STATE_UPDATE with only what changed).

use crate::player::{EndReason, Event, Player, Track, Voice, Wake};
use crate::rest::{self, Obj, Page};
use postern::gateway::{Gw, Handler, SessionId};
use postern::Millis;

/// One guild's player, owned by the client that joined its voice channel.
pub struct Guild {
    /// The client id that owns it.
    pub owner: String,
    /// The voice channel joined (`None` after leaving).
    pub channel: Option<u64>,
    /// As joined.
    pub self_mute: bool,
    /// As joined.
    pub self_deaf: bool,
    /// The simulated voice connection.
    pub voice: Voice,
    /// The queue and its playback.
    pub player: Player,
    /// The timer that drives the player.
    pub wake: Wake,
}

/// The track object.
pub fn track_json(t: &Track) -> String {
    let s = &t.spec;
    Obj::new()
        .num("id", t.id)
        .opt_str("title", s.title.as_deref())
        .opt_str("artist", s.artist.as_deref())
        .opt_str("album", s.album.as_deref())
        .opt_str("channel", s.channel.as_deref())
        .opt_str("url", s.url.as_deref())
        .opt_str("thumbnail", s.thumbnail.as_deref())
        .num("duration_ms", s.duration_ms)
        .done()
}

/// The player's state without its queue: QUEUE_STATE_UPDATE's `old_state` and `new_state`
/// and the start of the player object.
pub fn summary(guild: u64, g: &Guild, now: Millis) -> Obj {
    let current = g.player.current().map_or("null".into(), track_json);
    Obj::new()
        .opt_id("guild_id", Some(guild))
        .opt_id("channel_id", g.channel)
        .bool("self_mute", g.self_mute)
        .bool("self_deaf", g.self_deaf)
        .bool("connected", g.voice.is_connected())
        .bool("paused", g.player.is_paused())
        .num("position_ms", g.player.position(now).0)
        .raw("current", &current)
        .num("queue_length", g.player.len() as u64)
}

/// The player object of the REST answers: the summary and one page of the queue.
pub fn state_json(guild: u64, g: &Guild, now: Millis, page: Page) -> String {
    let tracks = g.player.page(page.offset, page.limit).map(track_json);
    summary(guild, g, now)
        .num("offset", page.offset as u64)
        .raw("tracks", &rest::array(tracks))
        .done()
}

/// The op 1 payload: the Discord gateway's voice state update (op 4) to forward.
pub fn voice_op(guild: u64, g: &Guild) -> String {
    let d = Obj::new()
        .opt_id("guild_id", Some(guild))
        .opt_id("channel_id", g.channel)
        .bool("self_mute", g.self_mute)
        .bool("self_deaf", g.self_deaf)
        .done();
    let op4 = Obj::new().num("op", 4).raw("d", &d).done();
    Obj::new().num("op", 1).raw("d", &op4).done()
}

/// What a player operation changed, for QUEUE_STATE_UPDATE: the state before it and the
/// tracks it appended (JSON texts).
pub struct Change {
    /// The player's summary before the operation.
    pub old_state: String,
    /// The tracks it enqueued, a JSON array.
    pub added: String,
}

impl Change {
    /// Before an operation that adds nothing.
    pub fn before(guild: u64, g: &Guild, now: Millis) -> Change {
        Change {
            old_state: summary(guild, g, now).done(),
            added: "[]".into(),
        }
    }
}

/// Dispatches the payloads of the player's events, in order, to `to` (nothing while the
/// owner has no socket).
pub fn emit<H: Handler>(
    gw: &mut Gw<'_, '_, H>,
    to: Option<SessionId>,
    guild: u64,
    g: &Guild,
    events: Vec<Event>,
    change: &Change,
) {
    let Some(to) = to else {
        return;
    };
    let now = gw.now();
    let with_track = |t: &Track| {
        Obj::new()
            .opt_id("guild_id", Some(guild))
            .raw("track", &track_json(t))
    };
    for event in events {
        let (name, data) = match event {
            Event::Started(t) => ("TRACK_START", with_track(&t).done()),
            Event::Ended(track, reason) => {
                let why = match reason {
                    EndReason::Finished => "finished",
                    EndReason::Skipped => "skipped",
                    EndReason::Stopped => "stopped",
                    EndReason::Failed(e) => {
                        let data = with_track(&track).str("error", &e).done();
                        let _ = gw.dispatch(to, "AUDIO_PLAYER_ERROR", &data);
                        "error"
                    }
                };
                ("TRACK_FINISH", with_track(&track).str("reason", why).done())
            }
            Event::Refused(track, error) => (
                "TRACK_ERROR",
                with_track(&track).str("error", &error).done(),
            ),
            Event::Paused(track, position) | Event::Resumed(track, position) => {
                let status = Obj::new()
                    .opt_id("guild_id", Some(guild))
                    .bool("paused", g.player.is_paused());
                let data = status
                    .num("position_ms", position.0)
                    .raw("track", &track_json(&track));
                ("AUDIO_PLAYER_STATUS", data.done())
            }
            Event::QueueChanged => {
                let data = Obj::new()
                    .raw("old_state", &change.old_state)
                    .raw("new_state", &summary(guild, g, now).done())
                    .raw("added", &change.added);
                ("QUEUE_STATE_UPDATE", data.done())
            }
        };
        let _ = gw.dispatch(to, name, &data);
    }
}
