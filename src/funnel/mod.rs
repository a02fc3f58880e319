//! The show funnel (issue 14): where viewers came from ([`Channel`]), what they saw and did
//! (distinct users per stage), and what they bought (the inventory's sales ledger, exact).

pub mod channel;

pub use channel::Channel;
