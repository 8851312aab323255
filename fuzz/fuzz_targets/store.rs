//! Fuzz the store reader: parse, look up, list and verify arbitrary bytes;
//! a compressed store's workflows are decompressed through knhk-std too.
//!
//! ```text
//! cargo install cargo-fuzz
//! cargo +nightly fuzz run store fuzz/corpus/store
//! ```
//!
//! New corpus files that the fuzzer finds are replayed by the `store_corpus`
//! test in `tests/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    knhk_tests::exercise_store(data);
});
