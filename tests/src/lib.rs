//! Workspace-level tests that cross crate boundaries live in `tests/`. The workspace README
//! is this crate's documentation, so its Rust example compiles and runs as a doctest.
#![doc = include_str!("../../README.md")]
