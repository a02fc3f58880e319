//! livehub: a real-time live-shopping hub. Rooms fan out comments, the pinned product, flash
//! deals with their live stock counter, likes and viewer counts over WebSockets, take host
//! commands, and reserve stock atomically so a spike never oversells.
//!
//! Start with [`server::run`]; the wire contract is `docs/protocol.md`.
//!
//! Without the `server` feature (on by default) the crate is only that contract: [`id`],
//! [`commerce`], [`protocol`], [`auth`], [`config`], [`error`] and [`frame`], with none of the
//! runtime, HTTP or Redis dependencies (the fuzz targets in fuzz/ build it so).

#[cfg(feature = "server")]
pub mod admission;
pub mod auth;
#[cfg(feature = "server")]
pub mod base_url;
#[cfg(feature = "server")]
pub mod bus;
#[cfg(feature = "server")]
pub mod catalog;
#[cfg(feature = "server")]
pub mod cli;
pub mod clock;
#[cfg(feature = "server")]
pub mod command;
pub mod commerce;
pub mod config;
pub mod error;
pub mod frame;
#[cfg(feature = "server")]
pub mod funnel;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod http_client;
#[cfg(feature = "server")]
pub mod hub;
pub mod id;
#[cfg(feature = "server")]
pub mod inventory;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod outbox;
#[cfg(feature = "server")]
pub mod pages;
#[cfg(feature = "server")]
pub mod persist;
pub mod protocol;
#[cfg(feature = "server")]
pub mod quiet;
#[cfg(feature = "server")]
pub mod rate;
#[cfg(feature = "server")]
pub mod redis_io;
#[cfg(feature = "server")]
pub mod report;
#[cfg(feature = "server")]
pub mod room;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod session;
#[cfg(feature = "server")]
pub mod trim;
