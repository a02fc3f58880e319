//! `client_frame`: the fuzzer's bytes as one WebSocket text frame from a client, through
//! `protocol::parse_client`, `ClientMsg::validate` and the accessors. The checks are in
//! `fuzz/checks.rs` (shared with `tests/fuzz_corpus.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::client_frame(data);
});
