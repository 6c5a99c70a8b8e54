//! Benchmarks live in `src/bin/`, one per peer comparison.
