//! Raw FFI bindings to the system DPDK.
//!
//! `build.rs` finds DPDK with pkg-config (`libdpdk`), runs bindgen over
//! `csrc/wrapper.h` (EAL, lcore, cycles, mempool, mbuf, ring, ethdev, hash,
//! vhost, pcapng, ...) and compiles `csrc/shim.c`, which gives DPDK's
//! `static inline` fast-path functions (rx/tx burst, mbuf alloc/free, ring
//! bursts, ...) a linkable symbol named `shim_<name>`.
//!
//! Everything here is `unsafe` and unchecked; the safe layer is the `dpdk`
//! crate.

#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(clippy::all, rustdoc::all)]
#![allow(improper_ctypes)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// The DPDK version this crate was built against (from pkg-config).
pub const DPDK_BUILD_VERSION: &str = env!("DPDK_SYS_VERSION");
