//! Who is in each channel of the chat example, one entry per session (a user with two
//! sessions in a channel counts twice, as ROOM_USER_ADD / ROOM_USER_REMOVE do): the member
//! list READY and a mover's own ROOM_USER_ADD carry (docs/protocols/chat.md, Presence).

use std::collections::{BTreeMap, HashMap};

/// Channel → user → sessions of that user in the channel. Bounded by the sessions held
/// (`--max-sessions`): every entry is a session.
#[derive(Default)]
pub struct Roster {
    channels: HashMap<String, BTreeMap<String, usize>>,
}

impl Roster {
    /// A session of `user` entered `channel`.
    pub fn join(&mut self, channel: &str, user: &str) {
        let members = self.channels.entry(channel.to_owned()).or_default();
        *members.entry(user.to_owned()).or_default() += 1;
    }

    /// A session of `user` left `channel` (moved, or ended).
    pub fn leave(&mut self, channel: &str, user: &str) {
        let Some(members) = self.channels.get_mut(channel) else {
            return;
        };
        if let Some(n) = members.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                members.remove(user);
            }
        }
        if members.is_empty() {
            self.channels.remove(channel);
        }
    }

    /// The `"members":[...]` JSON member (names sorted, one per session), or "" when the
    /// channel has more than `threshold` sessions (no presence in large channels).
    pub fn members_field(&self, channel: &str, threshold: usize) -> String {
        let members = self.channels.get(channel);
        let count: usize = members.map_or(0, |m| m.values().sum());
        if count > threshold {
            return String::new();
        }
        let mut out = String::from(",\"members\":[");
        let names = members.into_iter().flatten();
        let mut first = true;
        for (name, &n) in names {
            for _ in 0..n {
                if !first {
                    out.push(',');
                }
                first = false;
                postern::gateway::write_json_str(&mut out, name);
            }
        }
        out.push(']');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_session_up_to_the_threshold() {
        let mut r = Roster::default();
        assert_eq!(r.members_field("general", 5), ",\"members\":[]");
        r.join("general", "bob");
        r.join("general", "alice");
        r.join("general", "bob");
        r.join("dev", "carol");
        assert_eq!(
            r.members_field("general", 5),
            ",\"members\":[\"alice\",\"bob\",\"bob\"]"
        );
        assert_eq!(r.members_field("general", 2), "");
        r.leave("general", "bob");
        r.leave("dev", "carol");
        r.leave("dev", "nobody");
        assert_eq!(
            r.members_field("general", 3),
            ",\"members\":[\"alice\",\"bob\"]"
        );
        assert!(!r.channels.contains_key("dev"));
    }
}
