//! The Discodo node's bounds (`examples/discodo.rs`, issue 12 item 6) over real sockets:
//! voice clients per audio manager (one manager per connection), voice clients and audio
//! managers per node, managers waiting out VC_TIMEOUT counted; past each bound the exact
//! `LIMIT_REACHED` answer, nothing created, and everyone else still served.
//! docs/protocols/discodo.md, "Limits", is the contract.

mod support_discodo;

use serde_json::{json, Value};
use std::time::Duration;
use support_discodo::*;

/// Asks for a voice client in `guild` (channel 5) as bot `user`; the answer.
fn create(ws: &mut Ws, user: &str, guild: u64) -> Value {
    let state = voice_state(json!(guild.to_string()), json!("5"), json!(user));
    send(ws, "DISCORD_EVENT", state);
    recv(ws)
}

fn created(ws: &mut Ws, user: &str, guild: u64) {
    let answer = create(ws, user, guild);
    assert_eq!(op(&answer), "VC_CREATED", "guild {guild}: {answer}");
}

fn refused(bound: &str, most: u64) -> Value {
    json!({"op": "LIMIT_REACHED", "d": format!("{bound} ({most}) is reached")})
}

/// Waits until a manager left VC_TIMEOUT ago is gone.
fn past_vc_timeout() {
    std::thread::sleep(Duration::from_millis(VC_TIMEOUT + 500));
}

#[test]
fn a_manager_past_its_voice_client_bound_gets_limit_reached_and_others_are_served() {
    let s = Server::with(&["--max-voice-clients-per-manager", "2"]);
    let full = refused("this audio manager's bound on voice clients", 2);
    let mut a = s.bot(json!("1"), json!(null));
    created(&mut a, "1", 10);
    created(&mut a, "1", 11);
    assert_eq!(create(&mut a, "1", 12), full);
    send(&mut a, "DISCORD_EVENT", voice_server(json!("13")));
    assert_eq!(recv(&mut a), full);
    // Its existing voice clients still change, and nothing was created for 12.
    let moved = voice_state(json!("10"), json!("6"), json!("1"));
    send(&mut a, "DISCORD_EVENT", moved);
    still_alive(&mut a);
    send(&mut a, "getState", json!({"guild_id": "10"}));
    assert_eq!(recv(&mut a)["d"]["channel_id"], json!("6"));
    send(&mut a, "getState", json!({"guild_id": "12"}));
    assert_eq!(op(&recv(&mut a)), "VOICE_CLIENT_NOT_FOUND");
    // Another bot's manager has a bound of its own.
    let mut b = s.bot(json!("2"), json!(null));
    created(&mut b, "2", 12);
    // Destroying one makes room again.
    send(&mut a, "VC_DESTROY", json!({"guild_id": "11"}));
    assert_eq!(op(&recv(&mut a)), "VC_DESTROYED");
    created(&mut a, "1", 12);
    assert_eq!(create(&mut a, "1", 13), full);
}

#[test]
fn the_node_bounds_voice_clients_of_every_manager_together_kept_ones_included() {
    let s = Server::with(&["--max-voice-clients", "3"]);
    let full = refused("this node's bound on voice clients", 3);
    let mut a = s.bot(json!("1"), json!(null));
    created(&mut a, "1", 10);
    created(&mut a, "1", 11);
    let mut b = s.bot(json!("2"), json!(null));
    created(&mut b, "2", 10);
    assert_eq!(create(&mut b, "2", 11), full);
    still_alive(&mut b);
    // A's manager waits out VC_TIMEOUT with its voice clients: they still count.
    bye(a);
    assert_eq!(create(&mut b, "2", 11), full);
    past_vc_timeout();
    created(&mut b, "2", 11);
    created(&mut b, "2", 12);
    assert_eq!(create(&mut b, "2", 13), full);
    // Destroying one makes room again.
    send(&mut b, "VC_DESTROY", json!({"guild_id": "10"}));
    assert_eq!(op(&recv(&mut b)), "VC_DESTROYED");
    created(&mut b, "2", 13);
}

#[test]
fn the_node_bounds_audio_managers_kept_ones_included_and_resume_is_never_refused() {
    let s = Server::with(&["--max-managers", "2"]);
    let full = refused("this node's bound on audio managers", 2);
    let mut a = s.bot(json!("1"), json!(null));
    let mut b = s.bot(json!("2"), json!(null));
    still_alive(&mut a);
    still_alive(&mut b);
    let mut c = s.bot(json!("3"), json!(null));
    assert_eq!(recv(&mut c), full);
    still_alive(&mut c); // not closed: it may try again
    send(&mut c, "IDENTIFY", json!({"user_id": "1", "shard_id": 1}));
    assert_eq!(recv(&mut c), full, "another shard is another manager");
    // Taking over or resuming an existing manager creates nothing: never refused.
    let mut a2 = s.bot(json!("1"), json!(null));
    assert_eq!(
        recv(&mut a2),
        json!({"op": "RESUMED", "d": {"voice_clients": []}})
    );
    let (payload, code) = error_then_close(&mut a);
    assert_eq!((op(&payload), code), ("SESSION_REPLACED", 4010));
    created(&mut a2, "1", 10);
    // B's manager waits out VC_TIMEOUT: it still counts, and B may resume it.
    bye(b);
    send(
        &mut c,
        "IDENTIFY",
        json!({"user_id": "3", "shard_id": null}),
    );
    assert_eq!(recv(&mut c), full);
    let mut b2 = s.bot(json!("2"), json!(null));
    assert_eq!(op(&recv(&mut b2)), "RESUMED");
    bye(b2);
    past_vc_timeout();
    send(
        &mut c,
        "IDENTIFY",
        json!({"user_id": "3", "shard_id": null}),
    );
    still_alive(&mut c); // a fresh identify says nothing
    created(&mut c, "3", 10);
    still_alive(&mut a2);
}
