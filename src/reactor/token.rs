//! [`ConnId`]: a connection's slab index and generation packed into one `mio::Token`.
//!
//! A slab slot is reused as soon as its connection is gone. The generation, drawn from a
//! reactor-wide counter at accept, makes an old id (an event still in flight, a timer, a
//! send from another thread) miss the new occupant instead of reaching it.

pub use crate::conn_id::ConnId;
use mio::Token;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("postern packs connection ids into 64-bit tokens");

/// The listening socket's token (never a connection's: generations stop below `u32::MAX`).
pub(crate) const LISTENER: Token = Token(usize::MAX);
/// The cross-thread waker's token.
pub(crate) const WAKER: Token = Token(usize::MAX - 1);

impl ConnId {
    pub(crate) fn token(self) -> Token {
        Token(self.as_u64() as usize)
    }

    pub(crate) fn from_token(token: Token) -> ConnId {
        ConnId::from_u64(token.0 as u64)
    }
}

/// Hands out generations: 1, 2, ... skipping the values reserved for special tokens.
pub(crate) fn next_generation(counter: &mut u32) -> u32 {
    *counter = counter.wrapping_add(1);
    if *counter >= u32::MAX - 1 || *counter == 0 {
        *counter = 1;
    }
    *counter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_never_collides_with_special_tokens() {
        let id = ConnId::new(12345, 77);
        assert_eq!((id.index(), id.generation()), (12345, 77));
        assert_eq!(ConnId::from_token(id.token()), id);
        assert_ne!(ConnId::new(1, 1), ConnId::new(1, 2));
        let mut g = u32::MAX - 3;
        for _ in 0..5 {
            let gen = next_generation(&mut g);
            assert!(gen != 0 && gen < u32::MAX - 1);
        }
        let top = ConnId::new(u32::MAX as usize, u32::MAX - 2).token();
        assert!(top != LISTENER && top != WAKER);
    }
}
