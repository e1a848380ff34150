//! TCP sequence numbers and timestamps, as types. They are defined in
//! `baton_handoff::seq`, so that the handoff messages and the flow state
//! carry the same types the packet library reads and writes.

pub use baton_handoff::seq::{SeqDelta, SeqNum, TsOffset, TsVal};
