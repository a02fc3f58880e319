//! livehub: a real-time live-shopping hub. Rooms fan out comments, the pinned product, flash
//! deals with their live stock counter, likes and viewer counts over WebSockets, take host
//! commands, and reserve stock atomically so a spike never oversells.
//!
//! Start with [`server::run`]; the wire contract is `docs/protocol.md`.
//!
//! Without the `server` feature (on by default) the crate is only that contract: [`id`],
//! [`commerce`], [`protocol`], [`auth`], [`config`], [`error`] and [`frame`], with none of the
//! runtime, HTTP or Redis dependencies (the fuzz targets in fuzz/ build it so).

// The wire contract: built with and without the `server` feature.
pub mod auction;
pub mod auth;
pub mod clock;
pub mod commerce;
pub mod config;
pub mod error;
pub mod frame;
pub mod id;
pub mod orders;
pub mod protocol;

/// Items of the hub itself, built only with the `server` feature (on by default), as tokio
/// gates its own (`cfg_rt!`).
macro_rules! cfg_server {
    ($($item:item)*) => {
        $(
            #[cfg(feature = "server")]
            $item
        )*
    };
}

cfg_server! {
    pub mod admission;
    pub mod auctions;
    pub mod base_url;
    pub mod bus;
    pub mod catalog;
    pub mod cli;
    pub mod command;
    pub mod funnel;
    pub mod http;
    pub mod http_client;
    pub mod hub;
    pub mod inventory;
    pub mod metrics;
    pub mod outbox;
    pub mod pages;
    pub mod persist;
    pub mod quiet;
    pub mod rate;
    pub mod redis_io;
    pub mod report;
    pub mod room;
    pub mod server;
    pub mod session;
    pub mod trim;
    pub mod webhooks;
}
