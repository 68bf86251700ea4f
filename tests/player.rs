//! The simulated player of the music examples (`examples/support/player.rs`), driven by a
//! fake clock: the player never reads time, so every instant here is chosen by the test.

#[path = "../examples/support/bounds.rs"]
mod bounds;
#[path = "../examples/support/player.rs"]
mod player;

use bounds::{Held, Limits, Over};
use player::{
    parse_tracks, snowflake, EndReason, Event, Player, Refusal, Track, TrackSpec, Voice,
    VoiceChange, VoicePayload, VoiceUpdate, MAX_QUEUE,
};
use postern::Millis;
use serde_json::json;

fn track(id: u64, ms: u64) -> Track {
    Track {
        id,
        spec: TrackSpec {
            title: Some(format!("t{id}")),
            duration_ms: ms,
            ..TrackSpec::default()
        },
    }
}

/// A compact view of events: ("start"|"end:<reason>"|"refused"|"paused"|"resumed"|"queue", id).
fn view(events: &[Event]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| match e {
            Event::Started(t) => ("start".into(), t.id),
            Event::Ended(track, reason) => (format!("end:{reason:?}"), track.id),
            Event::Refused(track, _) => ("refused".into(), track.id),
            Event::Paused(track, _) => ("paused".into(), track.id),
            Event::Resumed(track, _) => ("resumed".into(), track.id),
            Event::QueueChanged => ("queue".into(), 0),
        })
        .collect()
}

fn v(items: &[(&str, u64)]) -> Vec<(String, u64)> {
    items.iter().map(|(s, id)| (s.to_string(), *id)).collect()
}

#[test]
fn a_queue_plays_in_order_each_track_for_its_duration() {
    let mut p = Player::new();
    let events = p
        .enqueue(Millis(1000), vec![track(1, 300), track(2, 200)])
        .unwrap();
    assert_eq!(view(&events), v(&[("start", 1), ("queue", 0)]));
    assert_eq!(p.wake_at(), Some(Millis(1300)));
    assert!(
        p.tick(Millis(1299)).is_empty(),
        "nothing is due before the end"
    );
    assert_eq!(p.position(Millis(1150)), Millis(150));
    let events = p.tick(Millis(1300));
    assert_eq!(
        view(&events),
        v(&[("end:Finished", 1), ("start", 2), ("queue", 0)])
    );
    assert_eq!(p.wake_at(), Some(Millis(1500)));
    let events = p.tick(Millis(1500));
    assert_eq!(view(&events), v(&[("end:Finished", 2), ("queue", 0)]));
    assert_eq!((p.current(), p.wake_at()), (None, None));
}

#[test]
fn a_late_tick_ends_every_due_track_without_shifting_the_schedule() {
    let mut p = Player::new();
    p.enqueue(Millis(0), vec![track(1, 100), track(2, 100), track(3, 100)])
        .unwrap();
    let events = p.tick(Millis(250));
    assert_eq!(
        view(&events),
        v(&[
            ("end:Finished", 1),
            ("start", 2),
            ("end:Finished", 2),
            ("start", 3),
            ("queue", 0)
        ])
    );
    // Track 3 started when 2 ended (200), not at the late tick (250).
    assert_eq!(p.wake_at(), Some(Millis(300)));
    assert_eq!(p.position(Millis(250)), Millis(50));
}

#[test]
fn refused_tracks_are_skipped_at_their_turn() {
    let mut p = Player::new();
    let bad = Track {
        id: 2,
        spec: TrackSpec {
            error: Some("no".into()),
            duration_ms: 100,
            ..TrackSpec::default()
        },
    };
    p.enqueue(
        Millis(0),
        vec![track(1, 100), bad, track(3, 0), track(4, 100)],
    )
    .unwrap();
    let events = p.tick(Millis(100));
    assert_eq!(
        view(&events),
        v(&[
            ("end:Finished", 1),
            ("refused", 2),
            ("refused", 3),
            ("start", 4),
            ("queue", 0)
        ])
    );
    match &events[1] {
        Event::Refused(_, error) => assert_eq!(error, "no"),
        other => panic!("{other:?}"),
    }
    match &events[2] {
        Event::Refused(_, error) => assert!(error.contains("duration_ms is 0"), "{error}"),
        other => panic!("{other:?}"),
    }
    // A queue of refused tracks only leaves the player idle.
    let mut p = Player::new();
    let events = p.enqueue(Millis(0), vec![track(9, 0)]).unwrap();
    assert_eq!(view(&events), v(&[("refused", 9), ("queue", 0)]));
    assert_eq!(p.wake_at(), None);
}

#[test]
fn a_broken_track_fails_after_its_fail_time() {
    let mut p = Player::new();
    let broken = Track {
        id: 1,
        spec: TrackSpec {
            fail_after_ms: Some(40),
            duration_ms: 100,
            ..TrackSpec::default()
        },
    };
    p.enqueue(Millis(0), vec![broken, track(2, 100)]).unwrap();
    assert_eq!(p.wake_at(), Some(Millis(40)));
    let events = p.tick(Millis(40));
    let failed = EndReason::Failed("playback failed after 40 ms".into());
    assert!(matches!(&events[0], Event::Ended(t, why) if t.id == 1 && *why == failed));
    assert_eq!(view(&events)[1..], v(&[("start", 2), ("queue", 0)])[..]);
    // A fail time at or past the duration is never reached.
    let mut p = Player::new();
    let late = Track {
        id: 3,
        spec: TrackSpec {
            fail_after_ms: Some(100),
            duration_ms: 100,
            ..TrackSpec::default()
        },
    };
    p.enqueue(Millis(0), vec![late]).unwrap();
    assert_eq!(
        view(&p.tick(Millis(100))),
        v(&[("end:Finished", 3), ("queue", 0)])
    );
}

#[test]
fn skip_stop_and_play_now() {
    let mut p = Player::new();
    assert_eq!(p.skip(Millis(0)), Err(Refusal::NothingPlaying));
    p.enqueue(
        Millis(0),
        vec![track(1, 1000), track(2, 1000), track(3, 1000)],
    )
    .unwrap();
    let events = p.skip(Millis(10)).unwrap();
    assert_eq!(
        view(&events),
        v(&[("end:Skipped", 1), ("start", 2), ("queue", 0)])
    );
    assert_eq!(p.wake_at(), Some(Millis(1010)));
    let events = p.play_now(Millis(20), track(9, 50)).unwrap();
    assert_eq!(
        view(&events),
        v(&[("end:Stopped", 2), ("start", 9), ("queue", 0)])
    );
    assert_eq!(p.queue().map(|t| t.id).collect::<Vec<_>>(), [3]);
    let events = p.stop(Millis(30));
    assert_eq!(view(&events), v(&[("end:Stopped", 9), ("queue", 0)]));
    assert_eq!(
        (p.current(), p.queue().count(), p.wake_at()),
        (None, 0, None)
    );
    assert!(
        p.stop(Millis(40)).is_empty(),
        "stopping an idle player changes nothing"
    );
}

#[test]
fn pause_freezes_the_track_and_resume_moves_its_end() {
    let mut p = Player::new();
    assert_eq!(p.pause(Millis(0)), Err(Refusal::NothingPlaying));
    p.enqueue(Millis(0), vec![track(1, 100)]).unwrap();
    let events = p.pause(Millis(30)).unwrap();
    assert_eq!(events, vec![Event::Paused(track(1, 100), Millis(30))]);
    assert!(p.is_paused());
    assert_eq!(p.wake_at(), None);
    assert!(p.pause(Millis(40)).unwrap().is_empty(), "already paused");
    assert!(
        p.tick(Millis(500)).is_empty(),
        "a paused track does not end"
    );
    assert_eq!(p.position(Millis(500)), Millis(30));
    let events = p.resume(Millis(1000)).unwrap();
    assert_eq!(events, vec![Event::Resumed(track(1, 100), Millis(30))]);
    assert!(
        p.resume(Millis(1001)).unwrap().is_empty(),
        "already playing"
    );
    assert_eq!(p.wake_at(), Some(Millis(1070)));
    assert_eq!(
        view(&p.tick(Millis(1070))),
        v(&[("end:Finished", 1), ("queue", 0)])
    );
    // A skipped paused track takes its pause with it.
    p.enqueue(Millis(2000), vec![track(2, 100), track(3, 100)])
        .unwrap();
    p.pause(Millis(2010)).unwrap();
    p.skip(Millis(2020)).unwrap();
    assert!(!p.is_paused());
    assert_eq!(p.wake_at(), Some(Millis(2120)));
}

#[test]
fn the_queue_is_bounded() {
    let mut p = Player::new();
    let many: Vec<Track> = (0..=MAX_QUEUE as u64).map(|i| track(i, 10)).collect();
    assert_eq!(p.enqueue(Millis(0), many), Err(Refusal::QueueFull));
    assert_eq!(p.current(), None);
}

#[test]
fn track_bodies_one_many_or_wrapped() {
    let one = parse_tracks(br#"{"title":"a","duration_ms":5,"source_url":"u"}"#).unwrap();
    assert_eq!((one.len(), one[0].url.as_deref()), (1, Some("u")));
    assert_eq!(
        parse_tracks(br#"[{"duration_ms":1},{"duration_ms":2}]"#)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        parse_tracks(br#"{"tracks":[{"duration_ms":1}]}"#)
            .unwrap()
            .len(),
        1
    );
    for bad in [
        &b"nope"[..],
        b"[]",
        b"3",
        br#"{"tracks":3}"#,
        br#"{"title":"x"}"#,
        br#"{"duration_ms":-1}"#,
        br#"{"duration_ms":86400001}"#,
    ] {
        assert!(
            parse_tracks(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let long = format!(r#"{{"duration_ms":1,"title":"{}"}}"#, "x".repeat(2000));
    assert!(parse_tracks(long.as_bytes()).is_err());
}

#[test]
fn voice_comes_up_with_state_and_server_and_goes_down() {
    let mut voice = Voice::default();
    assert_eq!(voice.state(Some(20), "s".into()), VoiceChange::Unchanged);
    assert_eq!(voice.server("t".into(), "e".into()), VoiceChange::Connected);
    assert!(voice.is_connected());
    assert_eq!(voice.server("t".into(), "e".into()), VoiceChange::Unchanged);
    assert_eq!(
        voice.server("t2".into(), "e".into()),
        VoiceChange::Reconnected
    );
    assert_eq!(voice.state(Some(21), "s".into()), VoiceChange::Reconnected);
    assert_eq!(voice.state(None, "s".into()), VoiceChange::Disconnected);
    assert!(!voice.is_connected());
    assert_eq!(voice.state(None, "s".into()), VoiceChange::Unchanged);
    // The server first works too.
    assert_eq!(
        voice.apply(VoiceUpdate::Server("t".into(), "e".into())),
        VoiceChange::Unchanged
    );
    assert_eq!(
        voice.apply(VoiceUpdate::State(Some(5), "s".into())),
        VoiceChange::Connected
    );
    assert!(voice.leave());
    assert!(!voice.leave());
}

#[test]
fn discord_voice_payloads_are_read_or_refused() {
    let state = json!({"guild_id": "10", "channel_id": "20", "user_id": "7", "session_id": "s", "deaf": false});
    let read = VoicePayload::parse(true, &state).unwrap();
    assert_eq!((read.guild, read.user.as_deref()), (10, Some("7")));
    assert_eq!(read.update, Ok(VoiceUpdate::State(Some(20), "s".into())));
    let left = VoicePayload::parse(
        true,
        &json!({"guild_id": 10, "channel_id": null, "user_id": 7, "session_id": "s"}),
    )
    .unwrap();
    assert_eq!(
        (left.user.as_deref(), left.update),
        (Some("7"), Ok(VoiceUpdate::State(None, "s".into())))
    );
    let server = VoicePayload::parse(
        false,
        &json!({"guild_id": "10", "token": "t", "endpoint": "e"}),
    )
    .unwrap();
    assert_eq!(
        server.update,
        Ok(VoiceUpdate::Server("t".into(), "e".into()))
    );
    for incomplete in [
        json!({"guild_id": "1"}),
        json!({"guild_id": "1", "token": "t", "endpoint": null}),
        json!({"guild_id": "1", "token": "", "endpoint": "e"}),
    ] {
        assert!(
            VoicePayload::parse(false, &incomplete)
                .unwrap()
                .update
                .is_err(),
            "{incomplete}"
        );
    }
    assert!(VoicePayload::parse(
        true,
        &json!({"guild_id": "1", "channel_id": "x", "session_id": "s"})
    )
    .unwrap()
    .update
    .is_err());
    for unattributable in [
        json!(null),
        json!([1]),
        json!({"channel_id": "1"}),
        json!({"guild_id": "abc"}),
        json!({"guild_id": -1}),
    ] {
        assert!(
            VoicePayload::parse(true, &unattributable).is_err(),
            "{unattributable}"
        );
    }
    assert_eq!(snowflake("18446744073709551615"), Some(u64::MAX));
    for bad in [
        "",
        "18446744073709551616",
        "+5",
        "1a",
        "123456789012345678901",
    ] {
        assert_eq!(snowflake(bad), None, "{bad}");
    }
}

#[test]
fn the_position_never_passes_the_end_of_the_track() {
    let mut p = Player::new();
    p.enqueue(Millis(0), vec![track(1, 300)]).unwrap();
    assert_eq!(p.position(Millis(299)), Millis(299));
    // A late tick: the track ended at 300, whatever the clock says now.
    assert_eq!(p.position(Millis(450)), Millis(300));
}

#[test]
fn a_page_is_a_slice_of_the_waiting_tracks() {
    let mut p = Player::with_limit(10);
    let tracks = (1..=6).map(|id| track(id, 1000)).collect();
    p.enqueue(Millis(0), tracks).unwrap(); // 1 plays, 2..=6 wait.
    let ids = |offset, limit| -> Vec<u64> { p.page(offset, limit).map(|t| t.id).collect() };
    assert_eq!(
        (p.len(), ids(0, 2), ids(3, 10)),
        (5, vec![2, 3], vec![5, 6])
    );
    assert!(ids(5, 3).is_empty() && ids(usize::MAX, usize::MAX).is_empty());
    let over = (0..6).map(|i| track(10 + i, 1)).collect();
    assert_eq!(p.enqueue(Millis(0), over), Err(Refusal::QueueFull));
}

#[test]
fn the_bounds_refuse_in_order() {
    // The options that set them (`rest::Bounds`, 0 taken as 1) are tested through the
    // examples' command lines in tests/python/test_cli.py.
    let limits = Limits {
        queue: 3,
        client_tracks: 5,
        tracks: 7,
        client_players: 1,
        ..Limits::default()
    };
    let held = Held {
        client_players: 1,
        client_tracks: 4,
        players: 1,
        tracks: 6,
    };
    assert_eq!(limits.admit_tracks(2, held, 2), Err(Over::Queue));
    assert_eq!(limits.admit_tracks(0, held, 2), Err(Over::ClientTracks));
    assert_eq!(limits.admit_tracks(0, held, 1), Ok(()));
    let busy = Held { tracks: 7, ..held };
    assert_eq!(limits.admit_tracks(0, busy, 1), Err(Over::Tracks));
    assert_eq!(limits.admit_player(held), Err(Over::ClientPlayers));
    let (status, message) = limits.refusal(Over::ClientTracks);
    let expected = "too many tracks: at most 5 wait in all of one client's players";
    assert_eq!((status, message.as_str()), (409, expected));
    assert_eq!(limits.refusal(Over::Players).0, 503);
}
