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
    #[cfg(any(test, feature = "testing"))]
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
    #[cfg(any(test, feature = "testing"))]
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
    #[cfg(any(test, feature = "testing"))]
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(|k| &**k)
    }
}

#[cfg(test)]
mod tests {
    //! Registry tests: rooms, and the session quotas (who gives up a session for whom).

    use super::*;

    fn conn(n: u64) -> ConnId {
        ConnId::from_u64(n)
    }

    fn addr(n: u8) -> Owner {
        Owner::from_ip(std::net::IpAddr::from([10, 0, 0, n]))
    }

    /// `n` sessions of `owner` with ids from `first`, the first `detached` of them detached
    /// (in id order).
    fn hold(reg: &mut Registry<()>, owner: &Owner, first: u64, n: u64, detached: u64) {
        for i in first..first + n {
            reg.insert(SessionId::new(i), (), conn(i), owner.clone());
        }
        for i in first..first + detached {
            reg.detach(SessionId::new(i));
        }
    }

    #[test]
    fn rooms_follow_sessions() {
        let mut reg: Registry<()> = Registry::default();
        let (a, b) = (SessionId::new(1), SessionId::new(2));
        reg.insert(a, (), conn(1), addr(1));
        reg.insert(b, (), conn(2), addr(1));
        assert!(reg.join(a, "general") && reg.join(b, "general") && reg.join(a, "x"));
        assert!(!reg.join(SessionId::new(3), "general"));
        let mut m = reg.members_vec("general");
        m.sort();
        assert_eq!(m, vec![a, b]);
        reg.leave(b, "general");
        assert_eq!(reg.members_vec("general"), vec![a]);
        reg.remove(a);
        assert_eq!(reg.rooms().count(), 0, "empty rooms disappear");
        reg.detach(b);
        assert_eq!(reg.oldest_detached_of(&addr(1)), Some(b));
    }

    #[test]
    fn owner_counts_follow_insert_detach_attach_remove() {
        let mut reg: Registry<()> = Registry::default();
        let (a, b) = (addr(1), Owner::user("bob"));
        hold(&mut reg, &a, 1, 3, 2);
        hold(&mut reg, &b, 10, 1, 0);
        assert_eq!((reg.owner_sessions(&a), reg.owner_sessions(&b)), (3, 1));
        assert_eq!(reg.owner_count(), 2);
        assert_eq!(reg.oldest_detached_of(&a), Some(SessionId::new(1)));
        reg.attach(SessionId::new(1), conn(99)); // resumed: no longer evictable
        assert_eq!(reg.oldest_detached_of(&a), Some(SessionId::new(2)));
        reg.detach(SessionId::new(1)); // detached again: now the newest
        reg.remove(SessionId::new(2));
        assert_eq!(reg.oldest_detached_of(&a), Some(SessionId::new(1)));
        for id in [1, 3, 10] {
            reg.remove(SessionId::new(id));
        }
        assert_eq!(
            reg.owner_count(),
            0,
            "owners without sessions are forgotten"
        );
        assert!(reg.evictable.is_empty() && reg.is_empty());
    }

    #[test]
    fn repeated_detach_and_resume_holds_one_entry() {
        let mut reg: Registry<()> = Registry::default();
        hold(&mut reg, &addr(1), 1, 1, 0);
        for _ in 0..1000 {
            reg.detach(SessionId::new(1));
            reg.attach(SessionId::new(1), conn(1));
        }
        reg.detach(SessionId::new(1));
        assert_eq!(reg.owners[&addr(1)].detached.len(), 1);
        assert_eq!(reg.evictable.len(), 1);
    }

    const ROOMY: Quota = Quota {
        max_sessions: 100,
        per_owner: 3,
    };

    #[test]
    fn an_owner_over_its_quota_gives_up_its_own_oldest_detached_session() {
        let mut reg: Registry<()> = Registry::default();
        let (attacker, victim) = (addr(1), addr(2));
        hold(&mut reg, &victim, 100, 1, 1);
        hold(&mut reg, &attacker, 1, 3, 2);
        assert_eq!(reg.room_for(&attacker, ROOMY), Ok(vec![SessionId::new(1)]));
        assert_eq!(reg.room_for(&victim, ROOMY), Ok(vec![]));
        // All of its sessions live: refused, and nobody else's is touched.
        let mut reg: Registry<()> = Registry::default();
        hold(&mut reg, &victim, 100, 1, 1);
        hold(&mut reg, &attacker, 1, 3, 0);
        assert_eq!(reg.room_for(&attacker, ROOMY), Err(Refusal::OwnerFull));
    }

    #[test]
    fn at_the_global_bound_only_an_owner_over_its_fair_share_gives_up_a_session() {
        let quota = Quota {
            max_sessions: 10,
            per_owner: 100,
        };
        let (attacker, victim, newcomer) = (addr(1), addr(2), addr(3));
        let mut reg: Registry<()> = Registry::default();
        hold(&mut reg, &victim, 100, 1, 1); // the victim's detached session, the oldest
        hold(&mut reg, &attacker, 1, 9, 9);
        // The attacker (9 of 10, share 5 between two owners) gives up its own oldest.
        assert_eq!(reg.room_for(&attacker, quota), Ok(vec![SessionId::new(1)]));
        // So it does for a third owner (share 4), never the victim's older session.
        assert_eq!(reg.room_for(&newcomer, quota), Ok(vec![SessionId::new(1)]));
        assert_eq!(reg.room_for(&victim, quota), Ok(vec![SessionId::new(1)]));
    }

    #[test]
    fn at_the_global_bound_with_nobody_over_share_the_newcomer_gives_up_its_own_or_is_refused() {
        let quota = Quota {
            max_sessions: 4,
            per_owner: 100,
        };
        let (a, b) = (addr(1), addr(2));
        let mut reg: Registry<()> = Registry::default();
        hold(&mut reg, &a, 1, 2, 1);
        hold(&mut reg, &b, 10, 2, 1);
        // Two owners at 2 each, share 2: nobody is over. Each may trade its own detached one.
        assert_eq!(reg.room_for(&a, quota), Ok(vec![SessionId::new(1)]));
        assert_eq!(reg.room_for(&b, quota), Ok(vec![SessionId::new(10)]));
        // A third owner (share 2 of 4 rounded up over 3 owners) has nothing to trade.
        assert_eq!(reg.room_for(&addr(3), quota), Err(Refusal::Full));
        // The attacker holding everything live: a newcomer is refused, not served by eviction.
        let mut reg: Registry<()> = Registry::default();
        hold(&mut reg, &a, 1, 4, 0);
        assert_eq!(reg.room_for(&b, quota), Err(Refusal::Full));
        assert_eq!(reg.room_for(&a, quota), Err(Refusal::Full));
    }

    #[test]
    fn the_largest_owner_with_a_detached_session_is_asked_first() {
        let quota = Quota {
            max_sessions: 9,
            per_owner: 100,
        };
        let (big, mid, small) = (addr(1), addr(2), addr(3));
        let mut reg: Registry<()> = Registry::default();
        hold(&mut reg, &small, 100, 1, 1);
        hold(&mut reg, &mid, 10, 3, 1);
        // Big is the largest, but all its sessions are live.
        hold(&mut reg, &big, 1, 5, 0);
        // Share is 3 (9 over 3 owners): mid holds 3, not over; small holds 1. The newcomer
        // (small) trades its own.
        assert_eq!(reg.room_for(&small, quota), Ok(vec![SessionId::new(100)]));
        reg.detach(SessionId::new(1));
        // Now big (5 > 3) has a detached session: it goes, whoever asks.
        assert_eq!(reg.room_for(&small, quota), Ok(vec![SessionId::new(1)]));
        assert_eq!(reg.room_for(&mid, quota), Ok(vec![SessionId::new(1)]));
    }
}
