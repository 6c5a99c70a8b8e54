//! Build script of the `vswitch` binary.
//!
//! `dpdk-sys` declares `links = "dpdk"` and publishes the DPDK version and
//! library directory it found through pkg-config. This script turns them into
//! compile-time constants, so `vswitch --version` and the error hints name the
//! DPDK the binary was built against, and adds an rpath to DPDK's library
//! directory when it is not a default one (a DPDK built into /usr/local or
//! /opt then still loads without LD_LIBRARY_PATH). Link arguments must be
//! emitted here: `rustc-link-arg` from a dependency's build script does not
//! reach the final binary.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_DPDK_VERSION");
    println!("cargo:rerun-if-env-changed=DEP_DPDK_LIBDIR");
    let version = std::env::var("DEP_DPDK_VERSION").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=VSWITCH_DPDK_VERSION={version}");
    if let Ok(libdir) = std::env::var("DEP_DPDK_LIBDIR") {
        let default_dirs = [
            "/usr/lib",
            "/usr/lib64",
            "/usr/lib/x86_64-linux-gnu",
            "/lib",
            "/lib64",
        ];
        if !default_dirs.contains(&libdir.trim_end_matches('/')) {
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{libdir}");
        }
    }
}
