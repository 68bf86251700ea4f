//! Sessions by id and rooms by name: who is live on which connection, what each session
//! missed, who is in which room, and who owns how many sessions (the quotas).

use super::owner::Owner;
use super::replay::ReplayBuffer;
use super::session::SessionId;
use crate::conn_id::ConnId;
use crate::timer::TimerId;
use std::collections::{BTreeSet, HashMap, HashSet};
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
    /// Who the session counts against.
    pub owner: Owner,
    /// Its place in its owner's detached order while detached.
    detached_at: Option<u64>,
}

/// The session bounds a new session must fit in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Sessions held in all.
    pub max_sessions: usize,
    /// Sessions held per owner.
    pub per_owner: usize,
}

/// Why a new session cannot be made room for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its owner holds its quota of sessions, all of them live.
    OwnerFull,
    /// The global bound is reached and no owner over its fair share, nor the newcomer's
    /// owner, has a detached session to give up.
    Full,
}

/// One owner's sessions.
#[derive(Debug, Default)]
struct OwnerEntry {
    /// Sessions held, live and detached.
    sessions: usize,
    /// Detached sessions, oldest first (by detach order).
    detached: BTreeSet<(u64, SessionId)>,
}

impl OwnerEntry {
    /// Its key in the eviction index: its session count, if it has a detached session.
    fn evictable(&self) -> Option<usize> {
        (!self.detached.is_empty()).then_some(self.sessions)
    }
}

/// Every session and room of a gateway.
#[derive(Debug)]
pub struct Registry<S> {
    sessions: HashMap<SessionId, Record<S>>,
    rooms: HashMap<Rc<str>, HashSet<SessionId>>,
    owners: HashMap<Owner, OwnerEntry>,
    /// Owners with a detached session, by sessions held: the largest is evicted from first.
    evictable: BTreeSet<(usize, Owner)>,
    /// The next detach order.
    next_order: u64,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Registry {
            sessions: HashMap::new(),
            rooms: HashMap::new(),
            owners: HashMap::new(),
            evictable: BTreeSet::new(),
            next_order: 0,
        }
    }
}

impl<S> Registry<S> {
    /// Adds a session live on `conn`, owned by `owner` (make room first: [`room_for`]).
    ///
    /// [`room_for`]: Self::room_for
    pub fn insert(&mut self, id: SessionId, data: S, conn: ConnId, owner: Owner) {
        if let Some(old) = self.remove(id) {
            drop(old); // a caller bug (ids are drawn unused); keep the counts right anyway
        }
        self.owner_mut(&owner, |e| e.sessions += 1);
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
                owner,
                detached_at: None,
            },
        );
    }

    /// Changes `owner`'s entry with `change`, keeping the eviction index in step and
    /// forgetting an owner left without sessions.
    fn owner_mut(&mut self, owner: &Owner, change: impl FnOnce(&mut OwnerEntry)) {
        let entry = self.owners.entry(owner.clone()).or_default();
        let before = entry.evictable();
        change(entry);
        let after = entry.evictable();
        let empty = entry.sessions == 0;
        if before != after {
            if let Some(n) = before {
                self.evictable.remove(&(n, owner.clone()));
            }
            if let Some(n) = after {
                self.evictable.insert((n, owner.clone()));
            }
        }
        if empty {
            self.owners.remove(owner);
        }
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

    /// Marks a session detached (its connection is gone): it becomes its owner's newest
    /// evictable session.
    pub fn detach(&mut self, id: SessionId) {
        let order = self.next_order;
        let Some(r) = self.sessions.get_mut(&id) else {
            return;
        };
        r.conn = None;
        r.detached_seq = r.seq;
        let old = r.detached_at.replace(order);
        let owner = r.owner.clone();
        self.next_order += 1;
        self.owner_mut(&owner, |e| {
            if let Some(old) = old {
                e.detached.remove(&(old, id));
            }
            e.detached.insert((order, id));
        });
    }

    /// Attaches a session to `conn` (a resume): it is no longer evictable.
    pub fn attach(&mut self, id: SessionId, conn: ConnId) {
        let Some(r) = self.sessions.get_mut(&id) else {
            return;
        };
        r.conn = Some(conn);
        if let Some(order) = r.detached_at.take() {
            let owner = r.owner.clone();
            self.owner_mut(&owner, |e| {
                e.detached.remove(&(order, id));
            });
        }
    }

    /// Sessions `owner` holds, live and detached.
    pub fn owner_sessions(&self, owner: &Owner) -> usize {
        self.owners.get(owner).map_or(0, |e| e.sessions)
    }

    /// Owners holding sessions.
    pub fn owner_count(&self) -> usize {
        self.owners.len()
    }

    /// `owner`'s detached sessions, oldest first.
    fn detached_of<'a>(&'a self, owner: &Owner) -> impl Iterator<Item = SessionId> + 'a {
        let entry = self.owners.get(owner);
        entry
            .into_iter()
            .flat_map(|e| e.detached.iter().map(|&(_, id)| id))
    }

    /// `owner`'s oldest detached session.
    pub fn oldest_detached_of(&self, owner: &Owner) -> Option<SessionId> {
        self.detached_of(owner).next()
    }

    /// The detached sessions to end so that a new session of `owner` fits `quota` (empty
    /// when it fits as is), or why it cannot. Never picks a live session, nor a session of
    /// an owner other than `owner` unless that owner holds more than its fair share
    /// (`quota.max_sessions` / owners, rounded up, the newcomer's owner counted).
    ///
    /// - Over its own quota, `owner` gives up its oldest detached sessions; with none,
    ///   [`Refusal::OwnerFull`].
    /// - At the global bound, the owner holding the most sessions among those with a
    ///   detached one gives up its oldest, if it is over its fair share; else `owner` gives
    ///   up its own oldest; else [`Refusal::Full`].
    pub fn room_for(&self, owner: &Owner, quota: Quota) -> Result<Vec<SessionId>, Refusal> {
        let mine = self.owner_sessions(owner);
        let mut victims = Vec::new();
        if mine >= quota.per_owner {
            let over = mine + 1 - quota.per_owner.max(1);
            victims.extend(self.detached_of(owner).take(over));
            if victims.len() < over {
                return Err(Refusal::OwnerFull);
            }
        }
        if self.len() - victims.len() < quota.max_sessions {
            return Ok(victims);
        }
        let owners = self.owner_count() + usize::from(mine == 0);
        let share = quota.max_sessions.div_ceil(owners.max(1));
        let fresh = |id: &SessionId| !victims.contains(id);
        let hog = match self.evictable.last() {
            Some((held, hog)) if *held > share => self.detached_of(hog).find(fresh),
            _ => None,
        };
        match hog.or_else(|| self.detached_of(owner).find(fresh)) {
            Some(victim) => {
                victims.push(victim);
                Ok(victims)
            }
            None => Err(Refusal::Full),
        }
    }

    /// Removes a session and its room memberships, returning its record.
    pub fn remove(&mut self, id: SessionId) -> Option<Record<S>> {
        let record = self.sessions.remove(&id)?;
        let order = record.detached_at;
        self.owner_mut(&record.owner, |e| {
            e.sessions -= 1;
            if let Some(order) = order {
                e.detached.remove(&(order, id));
            }
        });
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
#[path = "registry_tests.rs"]
mod tests;
