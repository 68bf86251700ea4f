//! The seed protocols' dialects, one module each.

pub mod i386;
