//! Shared helpers for the benchmarks in `src/bin/`.
#![deny(missing_docs)]
