//! The soak's set-up: its state, then every session opened and identified, then a settle.

use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::state::{turn, Counts, Session, Soak};
use super::SoakOpts;
use crate::bench::chat::{self, Heartbeats};
use crate::bench::secs;
use crate::client::Client;
use crate::histogram::Histogram;
use crate::progress::Progress;
use crate::rng::Rng;

/// How the open phase went.
pub(super) struct Opened {
    /// Sessions identified at its end.
    pub(super) sessions: usize,
    /// Its length in seconds, from the run's start.
    pub(super) secs: f64,
}

/// The soak's state before anything is opened: `o.conns` sessions waiting to open.
pub(super) fn state(o: &SoakOpts, start: Instant) -> Soak {
    Soak {
        token: o.token.clone(),
        present: chat::present(&o.token),
        sessions: vec![Session::default(); o.conns],
        by_conn: Vec::new(),
        identified: 0,
        beats: o
            .heartbeat_ms
            .map(|ms| Heartbeats::new(Duration::from_millis(ms), o.conns, start)),
        due: Vec::new(),
        slots: o.conns,
        anchor: start,
        rtt: Histogram::new(),
        retry: (0..o.conns).rev().collect(),
        reconnects: BinaryHeap::new(),
        steady: false,
        msg_min: None,
        msg_max: 0,
        c: Counts::default(),
        rng: Rng::from_time(),
        first_drop: None,
        first_150: None,
    }
}

/// Opens and identifies every session (at most `o.in_flight` opening at once) until all
/// are identified, `o.open_timeout` passes or too many fail; an error if none was.
pub(super) fn open_all(
    client: &mut Client,
    h: &mut Soak,
    o: &SoakOpts,
    start: Instant,
    progress: &mut Progress,
) -> crate::Result<Opened> {
    let deadline = start + secs(o.open_timeout);
    let max_errors = (o.conns as u64 / 20).max(100);
    while h.identified < o.conns && Instant::now() < deadline {
        if h.c.open_failed + h.c.connect_errors > max_errors {
            break;
        }
        connect_more(client, h, o.in_flight);
        let tick = Instant::now() + Duration::from_millis(100);
        turn(client, h, tick)?;
        if progress.due(Instant::now()) {
            progress.say(format_args!(
                "soak: {}/{} identified, {} opening, {} failed",
                h.identified,
                o.conns,
                client.len() - h.identified,
                h.c.open_failed + h.c.connect_errors
            ));
        }
    }
    let opened = Opened {
        sessions: h.identified,
        secs: start.elapsed().as_secs_f64(),
    };
    if opened.sessions == 0 {
        let why = h.first_drop.as_deref().unwrap_or("timeout");
        return Err(format!("no session was identified: {why}").into());
    }
    Ok(opened)
}

/// Starts connections for sessions still to open, up to `in_flight` opening at once.
fn connect_more(client: &mut Client, h: &mut Soak, in_flight: usize) {
    while client.len() - h.identified < in_flight {
        let Some(i) = h.retry.pop() else { break };
        match client.connect() {
            Ok(conn) => h.attach(conn, i),
            Err(e) => {
                h.c.connect_errors += 1;
                h.first_drop.get_or_insert_with(|| format!("connect: {e}"));
                h.retry.push(i);
                break;
            }
        }
    }
}

/// Keeps every session served (heartbeats, events) for `ms` milliseconds.
pub(super) fn settle(client: &mut Client, h: &mut Soak, ms: u64) -> crate::Result<()> {
    let settle = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < settle {
        turn(client, h, settle)?;
    }
    Ok(())
}
