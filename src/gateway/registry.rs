//! Sessions by id and rooms by name: who is live on which connection, what each session
//! missed, and who is in which room.

use super::replay::ReplayBuffer;
use super::session::SessionId;
use crate::reactor::ConnId;
use crate::time::Millis;
use crate::timer::TimerId;
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

/// One session: the handler's state plus the engine's bookkeeping. It outlives its
/// connection by the resume window.
#[derive(Debug)]
pub struct Record<S> {
    /// The handler's per-session state.
    pub data: S,
    /// The connection it is live on, if any.
    pub conn: Option<ConnId>,
    /// The last sequence number dispatched.
    pub seq: u64,
    /// The sequence number when the connection was lost (what a resume without a client
    /// sequence replays from).
    pub detached_seq: u64,
    /// Events kept for resume.
    pub replay: ReplayBuffer,
    /// Rooms this session is in.
    pub rooms: Vec<Rc<str>>,
    /// The resume-window timer while detached.
    pub expiry: Option<TimerId>,
}

/// Every session and room of a gateway.
#[derive(Debug)]
pub struct Registry<S> {
    sessions: HashMap<SessionId, Record<S>>,
    rooms: HashMap<Rc<str>, HashSet<SessionId>>,
    /// Sessions in the order they were detached (stale entries are skipped).
    detached: VecDeque<(SessionId, Millis)>,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Registry {
            sessions: HashMap::new(),
            rooms: HashMap::new(),
            detached: VecDeque::new(),
        }
    }
}

impl<S> Registry<S> {
    /// Adds a session live on `conn`.
    pub fn insert(&mut self, id: SessionId, data: S, conn: ConnId) {
        self.sessions.insert(
            id,
            Record {
                data,
                conn: Some(conn),
                seq: 0,
                detached_seq: 0,
                replay: ReplayBuffer::default(),
                rooms: Vec::new(),
                expiry: None,
            },
        );
    }

    /// Whether `id` names a session.
    pub fn contains(&self, id: SessionId) -> bool {
        self.sessions.contains_key(&id)
    }

    /// A session's record.
    pub fn get(&self, id: SessionId) -> Option<&Record<S>> {
        self.sessions.get(&id)
    }

    /// A session's record, mutably.
    pub fn get_mut(&mut self, id: SessionId) -> Option<&mut Record<S>> {
        self.sessions.get_mut(&id)
    }

    /// Sessions held (live and resumable).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Every session id.
    pub fn ids(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.sessions.keys().copied()
    }

    /// Marks a session detached at `now` (its connection is gone).
    pub fn detach(&mut self, id: SessionId, now: Millis) {
        if let Some(r) = self.sessions.get_mut(&id) {
            r.conn = None;
            r.detached_seq = r.seq;
            self.detached.push_back((id, now));
        }
    }

    /// The oldest session still detached, for eviction when over the session bound.
    pub fn oldest_detached(&mut self) -> Option<SessionId> {
        while let Some(&(id, _)) = self.detached.front() {
            match self.sessions.get(&id) {
                Some(r) if r.conn.is_none() => return Some(id),
                _ => {
                    self.detached.pop_front();
                }
            }
        }
        None
    }

    /// Removes a session and its room memberships, returning its record.
    pub fn remove(&mut self, id: SessionId) -> Option<Record<S>> {
        let record = self.sessions.remove(&id)?;
        for room in &record.rooms {
            if let Some(members) = self.rooms.get_mut(room) {
                members.remove(&id);
                if members.is_empty() {
                    self.rooms.remove(room);
                }
            }
        }
        Some(record)
    }

    /// Puts a session in a room (no effect if already there). False for an unknown session.
    pub fn join(&mut self, id: SessionId, room: &str) -> bool {
        let Some(record) = self.sessions.get_mut(&id) else {
            return false;
        };
        if record.rooms.iter().any(|r| &**r == room) {
            return true;
        }
        let key: Rc<str> = match self.rooms.get_key_value(room) {
            Some((k, _)) => Rc::clone(k),
            None => Rc::from(room),
        };
        record.rooms.push(Rc::clone(&key));
        self.rooms.entry(key).or_default().insert(id);
        true
    }

    /// Takes a session out of a room.
    pub fn leave(&mut self, id: SessionId, room: &str) {
        if let Some(record) = self.sessions.get_mut(&id) {
            record.rooms.retain(|r| &**r != room);
        }
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(&id);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// A room's members.
    pub fn members(&self, room: &str) -> impl Iterator<Item = SessionId> + '_ {
        self.rooms.get(room).into_iter().flatten().copied()
    }

    /// How many sessions a room has (0 for a room that does not exist).
    pub fn room_len(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, HashSet::len)
    }

    /// Members of a room, collected (for iterating while mutating sessions).
    pub fn members_vec(&self, room: &str) -> Vec<SessionId> {
        self.members(room).collect()
    }

    /// Rooms that exist (have members).
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(|k| &**k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_follow_sessions() {
        let mut reg: Registry<()> = Registry::default();
        let (a, b) = (SessionId(1), SessionId(2));
        reg.insert(a, (), ConnId::from_u64(1));
        reg.insert(b, (), ConnId::from_u64(2));
        assert!(reg.join(a, "general") && reg.join(b, "general") && reg.join(a, "x"));
        assert!(!reg.join(SessionId(3), "general"));
        let mut m = reg.members_vec("general");
        m.sort();
        assert_eq!(m, vec![a, b]);
        reg.leave(b, "general");
        assert_eq!(reg.members_vec("general"), vec![a]);
        reg.remove(a);
        assert_eq!(reg.rooms().count(), 0, "empty rooms disappear");
        reg.detach(b, Millis(5));
        assert_eq!(reg.oldest_detached(), Some(b));
    }
}
