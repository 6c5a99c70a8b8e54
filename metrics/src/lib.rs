//! Prometheus metrics for `vswitch`.
//!
//! ```text
//!  switch / ports / storage counters (already kept by the data plane)
//!        │  read only at scrape time, by collectors
//!        ▼
//!  Registry ── collectors ──► MetricSet (families, samples) ── encode ──► text format 0.0.4
//!        ▲                                                                  │
//!  http::Server (one thread, std::net::TcpListener) ◄── GET /metrics ───────┘
//! ```
//!
//! Nothing here runs on the data path: a collector is a closure that reads
//! the counters the switch and the storage devices keep anyway and adds them
//! to a [`MetricSet`] when Prometheus scrapes. See `README.md` for the names.

#![deny(missing_docs)]

pub mod addr;
pub mod encode;
pub mod http;
pub mod registry;

pub use addr::parse_listen;
pub use encode::{Histogram, Kind, MetricSet};
pub use http::Server;
pub use registry::Registry;
