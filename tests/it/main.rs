//! The integration tests, in one test binary (issue 21): each module below was a test binary of
//! its own, and each compiled `tests/common` again and linked the whole crate. One binary builds
//! once, and its tests share one process: one Redis server and one Redis Cluster
//! (`common::redis::shared_server`, `shared_cluster`) serve every test that needs no private one.
//! `tests/browser.rs` (headless Chromium) stays a binary of its own.
//!
//! Run one file's tests with its module name: `cargo test --test it -- multi_node::`.

// A test may be longer than the 80 lines clippy.toml allows a function elsewhere.
#![allow(clippy::too_many_lines)]

#[path = "../common/mod.rs"]
mod common;

mod auction_show;
mod auctions;
mod auth;
mod bad_input;
mod bus_local;
mod bus_redis;
mod cli;
mod cli_recovery;
mod deal_titles;
mod dev_tokens;
mod fanout;
mod funnel;
mod funnel_store;
mod fuzz_corpus;
mod inventory_bounds;
mod inventory_memory;
mod inventory_redis;
mod limits;
mod messages;
mod multi_node;
mod orders;
mod parser_props;
mod proxy;
mod redis_hubs;
mod reserve_spike;
mod restart;
mod safety;
mod shop_page;
mod webhooks;
