//! Cachet's consensus: Tendermint BFT among the genesis validators.
//!
//! Pure and deterministic: no I/O, no clock, no threads, no randomness. [`tendermint`] is
//! the algorithm for one height; [`driver`] runs it for a node (checking and signing
//! messages, asking the ledger for blocks); [`messages`] are what validators exchange. The
//! node feeds it network messages and timer events; the simulator feeds it the same from a
//! seeded, faulty network.

pub mod driver;
pub mod messages;
pub mod tendermint;

pub use driver::{Action, App, Driver, LockProof, Received, SignerState};
pub use messages::{ConsensusMsg, MsgError, Proposal, SignedProposal, SignedVote, Vote, proposer};
pub use tendermint::{Step, Tendermint, Timeout, TimeoutKind, Timeouts};
