//! `path_routes`: see `tests/fuzz_props/path_routes.rs` for the input format and the
//! properties (shared with the replay test `tests/fuzz_replay.rs`).
#![no_main]

#[path = "../../tests/fuzz_props/mod.rs"]
mod fuzz_props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_props::path_routes::check(data));
