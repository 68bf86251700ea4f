//! The chat example's channel table and who may add to it: channels are never removed, so
//! the table is bounded in total (`--max-channels`) and per user (`--channels-per-user`),
//! and each user creates at a bounded rate (`--channel-adds-per-minute`). The rate also
//! bounds the CHANNEL_ADD events one user makes every session receive, so that no user
//! can flush the replay buffers of everyone's detached sessions.

use postern::gateway::TokenBucket;
use postern::Millis;
use std::collections::{HashMap, HashSet};

/// The bounds of the table.
#[derive(Copy, Clone, Debug)]
pub struct ChannelLimits {
    /// Channels that may exist at once, the default channel included.
    pub max_channels: usize,
    /// Channels one user may create (over the server's life: channels are never removed).
    pub per_user: usize,
    /// Channels one user may create per minute: a bucket of this many, refilled
    /// continuously over a minute.
    pub per_minute: u32,
}

/// The rate's window.
const MINUTE: Millis = Millis(60_000);

/// Why a channel was not created.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The channel exists already.
    Exists,
    /// The table holds `max_channels`.
    TableFull,
    /// The user has created `per_user` channels.
    UserQuota,
    /// The user has created `per_minute` channels within the last minute.
    UserRate,
}

/// What one user has created.
struct Creator {
    created: usize,
    bucket: TokenBucket,
}

/// Every channel, and each creator's count and rate.
pub struct Channels {
    names: HashSet<String>,
    /// Keyed by user name: only registered users can present, so this is bounded by the
    /// `--user`/`--admin` list.
    creators: HashMap<String, Creator>,
    limits: ChannelLimits,
}

impl Channels {
    /// A table holding only `initial`.
    pub fn new(initial: &str, limits: ChannelLimits) -> Channels {
        Channels {
            names: HashSet::from([initial.to_owned()]),
            creators: HashMap::new(),
            limits,
        }
    }

    /// Whether `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Every channel's name as a JSON array, sorted (at most `max_channels` names of at
    /// most 32 bytes: 10,000 by default, about 340 KB).
    pub fn names_json(&self) -> String {
        let mut names: Vec<&String> = self.names.iter().collect();
        names.sort();
        let mut out = String::from("[");
        for (i, name) in names.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            postern::gateway::write_json_str(&mut out, name);
        }
        out.push(']');
        out
    }

    /// Creates `name` for `user` at `now`, unless a bound refuses it. Only a creation takes
    /// from the user's rate.
    pub fn add(&mut self, now: Millis, user: &str, name: &str) -> Result<(), Refusal> {
        if self.names.contains(name) {
            return Err(Refusal::Exists);
        }
        if self.names.len() >= self.limits.max_channels {
            return Err(Refusal::TableFull);
        }
        let per_minute = self.limits.per_minute;
        let creator = match self.creators.get_mut(user) {
            Some(c) => c,
            None => self.creators.entry(user.to_owned()).or_insert(Creator {
                created: 0,
                bucket: TokenBucket::full(now, per_minute, MINUTE),
            }),
        };
        if creator.created >= self.limits.per_user {
            return Err(Refusal::UserQuota);
        }
        if !creator.bucket.take(now, per_minute, MINUTE) {
            return Err(Refusal::UserRate);
        }
        creator.created += 1;
        self.names.insert(name.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_each_user_by_rate_and_quota_and_everyone_by_the_table() {
        let limits = ChannelLimits {
            max_channels: 5,
            per_user: 3,
            per_minute: 2,
        };
        let mut t = Channels::new("general", limits);
        let at = Millis(1_000);
        assert_eq!(t.add(at, "a", "general"), Err(Refusal::Exists));
        assert_eq!(t.add(at, "a", "1"), Ok(()));
        assert_eq!(t.add(at, "a", "2"), Ok(()));
        assert_eq!(t.add(at, "a", "3"), Err(Refusal::UserRate));
        assert_eq!(t.add(at + Millis(30_000), "a", "3"), Ok(()));
        assert_eq!(t.add(at + MINUTE, "a", "4"), Err(Refusal::UserQuota));
        assert_eq!(t.add(at, "b", "4"), Ok(()));
        assert_eq!(t.add(at, "b", "5"), Err(Refusal::TableFull));
        assert!(t.contains("4") && !t.contains("5"));
        assert_eq!(t.names_json(), r#"["1","2","3","4","general"]"#);
    }
}
