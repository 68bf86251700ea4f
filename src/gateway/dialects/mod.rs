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
