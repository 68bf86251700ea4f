//! The Nightingale example's payloads (seed 001, docs/protocols/nightingale.md): a guild's
//! player and the JSON the server writes about it (the seed's track object, the paged player
//! object, `forward`, `update_state` and the track `event`s).

use crate::player::{EndReason, Event, Player, Track, Voice, VoiceChange, Wake};
use crate::rest::{self, Obj, Page};
use postern::Millis;

/// One guild's player in one session.
pub struct Guild {
    /// The voice channel connected to over REST (`None` after disconnect).
    pub channel: Option<u64>,
    /// As connected.
    pub self_mute: bool,
    /// As connected.
    pub self_deaf: bool,
    /// The simulated voice connection.
    pub voice: Voice,
    /// The ssrc of the last `connect_gateway`/`reconnect_gateway`.
    pub ssrc: u32,
    /// The queue and its playback.
    pub player: Player,
    /// The timer that drives the player.
    pub wake: Wake,
}

/// Payloads for a session, in order: (op, data).
pub type Payloads = Vec<(&'static str, String)>;

/// The seed's track object: eight fields, null where unknown. `track` is the server's
/// handle `"<guild_id>:<n>"`; `duration` is the length in milliseconds, as a string.
pub fn track_object(guild: u64, t: &Track) -> String {
    let s = &t.spec;
    Obj::new()
        .str("track", &format!("{guild}:{}", t.id))
        .opt_str("artist", s.artist.as_deref())
        .opt_str("album", s.album.as_deref())
        .opt_str("channel", s.channel.as_deref())
        .str("duration", &s.duration_ms.to_string())
        .opt_str("source_url", s.url.as_deref())
        .opt_str("title", s.title.as_deref())
        .opt_str("thumbnail", s.thumbnail.as_deref())
        .done()
}

/// The player object of the REST answers, with one page of the queue.
pub fn state_json(guild: u64, g: &Guild, now: Millis, page: Page) -> String {
    let object = |t: &Track| track_object(guild, t);
    let queue = g.player.page(page.offset, page.limit).map(object);
    Obj::new()
        .num("guild_id", guild)
        .opt_num("channel_id", g.channel)
        .bool("connected", g.voice.is_connected())
        .bool("paused", g.player.is_paused())
        .num("position_ms", g.player.position(now).0)
        .raw("current", &g.player.current().map_or("null".into(), object))
        .num("queue_length", g.player.len() as u64)
        .num("offset", page.offset as u64)
        .raw("queue", &rest::array(queue))
        .done()
}

/// `forward`'s data: the Discord gateway's voice state update (op 4).
pub fn forward(guild: u64, g: &Guild) -> String {
    let d = Obj::new()
        .opt_id("channel_id", g.channel)
        .opt_id("guild_id", Some(guild))
        .bool("self_deaf", g.self_deaf)
        .bool("self_mute", g.self_mute)
        .done();
    Obj::new().num("op", 4).raw("d", &d).done()
}

/// `{"type": kind, "data": data}`.
pub fn typed(kind: &str, data: &str) -> String {
    Obj::new().str("type", kind).raw("data", data).done()
}

/// The `event` payloads of the player's events, in order.
pub fn track_events(guild: u64, events: Vec<Event>, out: &mut Payloads) {
    for event in events {
        let data = match event {
            Event::Started(t) => typed("track_start", &track_object(guild, &t)),
            Event::Ended(track, EndReason::Failed(e)) | Event::Refused(track, e) => {
                let data = Obj::new()
                    .str("error", &e)
                    .raw("track", &track_object(guild, &track));
                typed("track_errored", &data.done())
            }
            Event::Ended(track, reason) => {
                let stopped = reason != EndReason::Finished;
                let data = Obj::new()
                    .bool("stopped", stopped)
                    .raw("track", &track_object(guild, &track));
                typed("track_end", &data.done())
            }
            Event::Paused(..) | Event::Resumed(..) | Event::QueueChanged => continue,
        };
        out.push(("event", data));
    }
}

/// The `update_state` payload of a voice change (`before`: the voice as it was).
pub fn voice_state(
    guild: u64,
    g: &mut Guild,
    before: &Voice,
    change: VoiceChange,
    out: &mut Payloads,
) {
    let kind = match change {
        VoiceChange::Unchanged => return,
        VoiceChange::Disconnected => {
            let session = before.session.as_deref();
            let data = Obj::new()
                .opt_num("channel", before.channel)
                .num("guild", guild)
                .opt_str("session", session);
            out.push(("update_state", typed("disconnect_gateway", &data.done())));
            return;
        }
        VoiceChange::Connected => "connect_gateway",
        VoiceChange::Reconnected => "reconnect_gateway",
    };
    let mut b = [0u8; 4];
    if postern::gateway::os_random(&mut b).is_ok() {
        g.ssrc = u32::from_le_bytes(b).max(1);
    }
    let data = Obj::new()
        .opt_num("channel", g.voice.channel)
        .num("guild", guild)
        .opt_str("session", g.voice.session.as_deref())
        .opt_str("server", g.voice.endpoint.as_deref())
        .num("ssrc", u64::from(g.ssrc))
        .done();
    out.push(("update_state", typed(kind, &data)));
}
