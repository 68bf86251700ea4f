//! The seed protocols' dialects, one module each.
//!
//! | module | seed | envelope |
//! |---|---|---|
//! | [`i386`] | 004 i386chat | `{"f": n, "cnf": ..., "s": n, "t": "EVENT"}` |
//! | [`rooms`] | 003 chat rooms | `{"e": n, "d": {...}}` |
//! | [`discodo`] | 002 Discodo | `{"op": "NAME", "d": ...}` |
//! | [`nexus`] | 000 Nexus | `{"op": n, "d": ...}` / `{"t": "EVENT", "d": ...}` |
//! | [`nightingale`] | 001 Nightingale | `{"op": "name", "data": ...}` |

pub mod discodo;
pub mod i386;
pub mod nexus;
pub mod nightingale;
pub mod rooms;

#[cfg(test)]
mod tests {
    use crate::gateway::{Dialect, GatewayError};

    /// Each dialect closes a session refused for the session bounds with its own code.
    #[test]
    fn too_many_sessions_is_fatal_with_each_dialects_code() {
        let close = |d: &dyn Dialect, per_owner| {
            let answer = d.answer(&GatewayError::TooManySessions { per_owner });
            answer.close.map(|(code, reason)| (code.0, reason))
        };
        let owner = "too many sessions for this client".to_owned();
        let server = "too many sessions".to_owned();
        assert_eq!(close(&super::i386::I386, true), Some((4017, owner.clone())));
        assert_eq!(
            close(&super::i386::I386, false),
            Some((4017, server.clone()))
        );
        assert_eq!(
            close(&super::discodo::Discodo, true),
            Some((4013, owner.clone()))
        );
        assert_eq!(
            close(&super::nexus::Nexus, false),
            Some((4014, server.clone()))
        );
        assert_eq!(close(&super::rooms::Rooms, true).map(|c| c.0), Some(4013));
        let nightingale = close(&super::nightingale::Nightingale, false);
        assert_eq!(nightingale, Some((1013, server)));
    }
}
