//! Integration tests of the consensus host over the in-memory store.

mod chain;
mod core;
mod statesync;
