//! `token`: the fuzzer's bytes as a token given to `auth::Authenticator::verify` (with and without
//! `require_exp`), and the same bytes as claims that are minted and verified again. The checks are
//! in `fuzz/checks.rs` (shared with `tests/fuzz_corpus.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::token(data);
});
