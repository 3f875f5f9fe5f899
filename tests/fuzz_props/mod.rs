//! The properties the fuzz targets check, one function per target, taking
//! the fuzzer's raw bytes. Shared by `fuzz/fuzz_targets/*.rs` (through
//! `#[path]`, under libFuzzer on nightly) and `tests/fuzz_replay.rs` (every
//! committed corpus and regression file, on stable in CI), so both run
//! exactly the same checks. A property that fails panics with the input
//! and what went wrong.
//!
//! The references here (a path normalizer, cookie and query parsers) are
//! written from the RFCs and the parsers they model, not from jwtgate's
//! code, so a property can fail when jwtgate and an app read a request
//! differently.

#![allow(dead_code)]

pub mod config;
pub mod cookie;
pub mod path_routes;
pub mod reference;
pub mod token;

/// `bytes` split at the first `\n`-separated fields: the fuzz inputs of
/// the header targets are `name-letter value \n name-letter value ...`,
/// which keeps corpus files readable.
pub fn fields(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| *b == b'\n')
}
