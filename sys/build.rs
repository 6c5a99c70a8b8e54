//! Finds the system DPDK with pkg-config, generates bindings with bindgen and
//! compiles the C shim for DPDK's static-inline fast path.

use std::env;
use std::path::PathBuf;

/// Debian/Ubuntu packages that provide what this build needs.
const INSTALL_HINT: &str = "install DPDK's development files and libclang: \
`apt-get install libdpdk-dev dpdk-dev libclang-dev clang pkg-config` \
(or run `.ci/install-deps.sh build`)";

fn main() {
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let dpdk = match pkg_config::Config::new()
        .atleast_version("21.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            // One clear error instead of a page of linker or bindgen noise.
            panic!("\n\ndpdk-sys: DPDK (pkg-config `libdpdk`, >= 21.11) was not found: {e}\n  fix: {INSTALL_HINT}\n\n");
        }
    };

    // The ring PMD is a plugin (loaded from the PMD directory at EAL init),
    // but `rte_eth_from_rings` — the in-process ports over rte_rings — is a
    // function of its library: link it (dlopen of the plugin then finds the
    // same, already loaded, object).
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");
    // Likewise the vhost PMD's `rte_eth_vhost_get_vid_from_port_id`, which
    // maps a port to its guest connection (negotiated virtio features).
    println!("cargo:rustc-link-lib=dylib=rte_net_vhost");

    // pkg-config's cflags carry `-include rte_config.h` and `-march=...`, which
    // the DPDK headers rely on; give the same flags to clang and to cc.
    let cflags = cflags_from_pkg_config();

    let mut shim = cc::Build::new();
    shim.file("csrc/shim.c").opt_level(3).warnings(false);
    for f in &cflags {
        shim.flag(f);
    }
    shim.compile("dpdk_shim");

    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let bindings = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_args(&cflags)
        .clang_arg("-Icsrc")
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function("rte_.*|shim_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*|rte_.*")
        // Packed structs that hold aligned ones cannot be expressed in Rust
        // (E0588). None is used here: keep them as opaque byte blobs of the
        // right size so the structs that embed them still lay out correctly.
        .opaque_type("rte_l2tpv2_.*|rte_gtp_psc_.*|rte_flow_item_l2tpv2|rte_flow_item_gtp_psc")
        // The shim is the only way to reach the static-inline fast path.
        .blocklist_function("rte_eth_rx_burst|rte_eth_tx_burst")
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(true)
        .generate_comments(false)
        .prepend_enum_name(false)
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "\n\ndpdk-sys: bindgen failed on the DPDK headers: {e}\n  fix: {INSTALL_HINT}\n\n"
            )
        });
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");

    // Tell dependants (the `vswitch` build script) what DPDK they link.
    println!("cargo:version={}", dpdk.version);
    println!("cargo:rustc-env=DPDK_SYS_VERSION={}", dpdk.version);
    if let Some(dir) = dpdk.link_paths.first() {
        println!("cargo:libdir={}", dir.display());
    }
}

fn cflags_from_pkg_config() -> Vec<String> {
    let out = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("pkg-config --cflags libdpdk");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}
