//! Live auctions (issue 24) in a run. A scenario's `[auction]` (module `plan`) has the host of
//! every room start one auction, and some of the room's viewers bid on it: bidders with proxy
//! maxima who answer being outbid, snipers who bid once in the last moments before the end, and
//! late bidders who bid once they saw the close. Each client keeps the auction as it sees it and
//! bids from that (module `watch`); every answer the hub gives goes into the run's log, which
//! after the run is checked against the hub's own close (module `truth`): the accepted bids,
//! replayed in the hub's order through the rules (`livehub::auction`), must give the winner,
//! the price, the end and the count of bids the close announced, no bid may be accepted after
//! the close, the winner's order must carry the price, and every viewer must end on the close.

pub mod plan;
pub mod truth;
pub mod watch;

pub use plan::Section;
pub use truth::{AuctionReport, Log};
pub use watch::Watch;

use livehub::protocol::ClientMsg;

use crate::trace::{Action, Event};

/// The auctions a list of actions starts: `(room, auction id)`, in the order started.
pub fn started(events: &[Event]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for e in events {
        if let Action::Host {
            command: ClientMsg::AuctionStart { auction, .. },
        } = &e.action
        {
            let key = (e.room.clone(), auction.id.to_string());
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    out
}

/// The time now in Unix µs (the hub's `ends_at` is Unix ms, on its clock: Redis's with the Redis
/// backend; the load tester's clock must agree with it for the close latency).
pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
