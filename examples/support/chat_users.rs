//! The chat example's users, found by token in constant work: a map keyed by a keyed
//! SipHash digest of the token (std's `RandomState`, keys drawn at start-up), then one
//! constant-time comparison of the token itself. Tokens are capped at [`MAX_TOKEN_BYTES`],
//! so a present costs one hash of at most that many bytes, whatever the number of users.

use postern::gateway::secret_eq;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// The longest token accepted, in bytes: `--user` refuses a longer one at start-up, and a
/// present or resume with a longer one is refused as a wrong token, without a look-up.
pub const MAX_TOKEN_BYTES: usize = 256;

/// A registered user.
pub struct User {
    /// The user's name.
    pub name: String,
    /// The user's token (a credential: never logged).
    pub token: String,
    /// Whether the user may ban.
    pub admin: bool,
}

/// Every registered user, by token digest.
pub struct Users {
    users: Vec<User>,
    /// Digest of a token → the users with that digest (one, unless two tokens collide in
    /// 64 keyed bits).
    by_digest: HashMap<u64, Vec<usize>>,
    keys: RandomState,
}

impl Users {
    /// No users yet.
    pub fn new() -> Users {
        Users {
            users: Vec::new(),
            by_digest: HashMap::new(),
            keys: RandomState::new(),
        }
    }

    /// Whether there is no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Registers `user`; a token registered before now belongs to `user` (the last wins).
    pub fn add(&mut self, user: User) -> Result<(), String> {
        if user.token.len() > MAX_TOKEN_BYTES {
            return Err(format!("tokens are at most {MAX_TOKEN_BYTES} bytes"));
        }
        let digest = self.keys.hash_one(user.token.as_bytes());
        let same = self.by_digest.entry(digest).or_default();
        same.retain(|&i| self.users[i].token != user.token);
        same.push(self.users.len());
        self.users.push(user);
        Ok(())
    }

    /// The user whose token is `token`, if any.
    pub fn find(&self, token: &str) -> Option<&User> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let digest = self.keys.hash_one(token.as_bytes());
        let candidates = self.by_digest.get(&digest)?;
        candidates
            .iter()
            .map(|&i| &self.users[i])
            .find(|u| secret_eq(u.token.as_bytes(), token.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, token: &str) -> User {
        User {
            name: name.into(),
            token: token.into(),
            admin: false,
        }
    }

    #[test]
    fn finds_by_token_only_up_to_the_cap() {
        let mut users = Users::new();
        users.add(user("a", "ta")).unwrap();
        users.add(user("b", &"t".repeat(MAX_TOKEN_BYTES))).unwrap();
        assert!(users
            .add(user("c", &"t".repeat(MAX_TOKEN_BYTES + 1)))
            .is_err());
        assert_eq!(users.find("ta").map(|u| u.name.as_str()), Some("a"));
        assert_eq!(users.find(&"t".repeat(MAX_TOKEN_BYTES)).unwrap().name, "b");
        assert!(users.find("tb").is_none() && users.find("").is_none());
        users.add(user("d", "ta")).unwrap();
        assert_eq!(users.find("ta").unwrap().name, "d");
    }
}
