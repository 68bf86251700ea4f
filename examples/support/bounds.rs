//! The bounds of the music examples (`nexus`, `nightingale`) on players and queued tracks:
//! per player, per client (a Nexus client id, a Nightingale session) and per server (the
//! `--max-*` options that set them are `rest::Bounds`), the exact refusal of each, and the
//! REST page sizes.
//! Sans-IO: the examples count what is held and ask before adding.
#![allow(dead_code)]

use crate::player::MAX_QUEUE;

/// Most players one client owns at once, by default (`--max-client-players`).
pub const MAX_CLIENT_PLAYERS: usize = 1000;
/// Most tracks waiting in all of one client's players, by default (`--max-client-tracks`).
pub const MAX_CLIENT_TRACKS: usize = 10_000;
/// Most players on the server, all clients together, by default (`--max-players`).
pub const MAX_PLAYERS: usize = 10_000;
/// Most tracks waiting on the server, all players together, by default (`--max-tracks`).
pub const MAX_TRACKS: usize = 100_000;
/// Tracks in one page of a REST listing when `limit` is not given.
pub const DEFAULT_PAGE: usize = 50;
/// Largest `limit` of a REST listing.
pub const MAX_PAGE: usize = 100;

/// The bounds on players and queued tracks, per player, per client and per server (the
/// `--max-*` options of the music examples). A client is a Nexus client id or a Nightingale
/// session.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Tracks waiting in one player.
    pub queue: usize,
    /// Players one client owns.
    pub client_players: usize,
    /// Tracks waiting in all of one client's players.
    pub client_tracks: usize,
    /// Players on the server.
    pub players: usize,
    /// Tracks waiting on the server.
    pub tracks: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            queue: MAX_QUEUE,
            client_players: MAX_CLIENT_PLAYERS,
            client_tracks: MAX_CLIENT_TRACKS,
            players: MAX_PLAYERS,
            tracks: MAX_TRACKS,
        }
    }
}

/// Which bound a request would pass.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Over {
    /// The player's queue ([`Limits::queue`]).
    Queue,
    /// The client's tracks ([`Limits::client_tracks`]).
    ClientTracks,
    /// The server's tracks ([`Limits::tracks`]).
    Tracks,
    /// The client's players ([`Limits::client_players`]).
    ClientPlayers,
    /// The server's players ([`Limits::players`]).
    Players,
}

/// What a client and the server hold now.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Players the client owns.
    pub client_players: usize,
    /// Tracks waiting in the client's players.
    pub client_tracks: usize,
    /// Players on the server.
    pub players: usize,
    /// Tracks waiting on the server.
    pub tracks: usize,
}

impl Limits {
    /// Whether `adding` more tracks fit, in a player holding `queued` and with `held`.
    pub fn admit_tracks(&self, queued: usize, held: Held, adding: usize) -> Result<(), Over> {
        if queued.saturating_add(adding) > self.queue {
            Err(Over::Queue)
        } else if held.client_tracks.saturating_add(adding) > self.client_tracks {
            Err(Over::ClientTracks)
        } else if held.tracks.saturating_add(adding) > self.tracks {
            Err(Over::Tracks)
        } else {
            Ok(())
        }
    }

    /// Whether one more player fits.
    pub fn admit_player(&self, held: Held) -> Result<(), Over> {
        if held.client_players >= self.client_players {
            Err(Over::ClientPlayers)
        } else if held.players >= self.players {
            Err(Over::Players)
        } else {
            Ok(())
        }
    }

    /// The HTTP status and error message of a refusal: 409 for the client's own bounds,
    /// 503 for the server's.
    pub fn refusal(&self, over: Over) -> (u16, String) {
        match over {
            Over::Queue => (
                409,
                format!(
                    "the queue is full: at most {} tracks wait in one player",
                    self.queue
                ),
            ),
            Over::ClientTracks => (
                409,
                format!(
                    "too many tracks: at most {} wait in all of one client's players",
                    self.client_tracks
                ),
            ),
            Over::ClientPlayers => (
                409,
                format!(
                    "too many players: one client owns at most {}",
                    self.client_players
                ),
            ),
            Over::Tracks => (
                503,
                format!(
                    "the server holds its maximum of {} queued tracks",
                    self.tracks
                ),
            ),
            Over::Players => (
                503,
                format!("the server holds its maximum of {} players", self.players),
            ),
        }
    }
}
