//! The show funnel check (issue 14): the run's own ground truth of who joined, saw a deal,
//! tapped, held and bought, per room, channel, deal and creator (module `truth`), the hub's
//! `GET /api/rooms/{room}/funnel` read once its counters settled (module `fetch`) with the hub's
//! own view types ([`livehub::funnel::view::RoomFunnel`]), and the two compared field by field
//! (module `compare`): a difference beyond the contract's error fails the
//! SLO `funnel_mismatch`.

pub mod check;
pub mod compare;
pub mod fetch;
pub mod truth;

pub use check::FunnelReport;
pub use truth::{ViewerFacts, Window};
