//! livehub: a real-time live-shopping hub. Rooms fan out comments, the pinned product, flash
//! deals with their live stock counter, likes and viewer counts over WebSockets, take host
//! commands, and reserve stock atomically so a spike never oversells.
//!
//! Start with [`server::run`]; the wire contract is `docs/protocol.md`.

pub mod admission;
pub mod auth;
pub mod base_url;
pub mod bus;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod command;
pub mod commerce;
pub mod config;
pub mod error;
pub mod funnel;
pub mod http;
pub mod http_client;
pub mod hub;
pub mod id;
pub mod inventory;
pub mod metrics;
pub mod outbox;
pub mod pages;
pub mod persist;
pub mod protocol;
pub mod quiet;
pub mod rate;
pub mod redis_io;
pub mod report;
pub mod room;
pub mod server;
pub mod session;
pub mod trim;
