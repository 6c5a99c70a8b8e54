#!/usr/bin/env bash
# Installs everything the build, the tests and the benchmarks need on Debian 12.
# Shared by .ci/run, the README's two commands and the Dockerfile so they cannot drift.
# Idempotent: packages already present are skipped by apt; `apt-get update` runs once.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# Build: DPDK 22.11 headers and shared libraries (PMDs load from the plugin dir),
# libclang for bindgen, pkg-config to find DPDK.
BUILD_PKGS=(libdpdk-dev dpdk-dev dpdk libclang-dev clang pkg-config build-essential
# ... and what `vswitch` with no arguments demonstrates the whole path with
# (tgtd in a network namespace behind a veth).
            tgt iproute2 ethtool)
# Tests: real peers and kernel plumbing.
TEST_PKGS=(tgt libiscsi-bin tshark tcpdump iproute2 iputils-ping ethtool procps nftables
           qemu-system-x86 linux-image-amd64 busybox-static cpio kmod
           # OVS's own management tools: ovsdb-server, ovsdb-tool, ovs-vsctl,
           # ovs-ofctl and vswitch.ovsschema (vswitch run --ovsdb, OpenFlow),
           # and OVS-DPDK itself (tests/ovs_differential.rs, perf/tests/ovs.rs).
           openvswitch-common openvswitch-switch openvswitch-switch-dpdk
           # curl and the Prometheus client's text-format parser scrape --metrics (tests/metrics.rs).
           curl python3-prometheus-client
           # A venv for the Python test peers below.
           python3-venv python3-pip)
# Benchmarks: the peers compared against.
PERF_PKGS=(openvswitch-switch-dpdk qemu-block-extra)

# Run time only (the Docker image's final stage): the DPDK libraries vswitch
# links, the mempool driver and the virtual PMDs it is used with (apt pulls
# their dependencies; the `dpdk` package only *recommends* the PMDs, and this
# script installs without recommends).
RUNTIME_PKGS=(librte-eal23 librte-ethdev23 librte-mbuf23 librte-mempool23 librte-ring23
              librte-mempool-ring23 librte-net-null23 librte-net-ring23 librte-net-pcap23
              librte-net-af-packet23 librte-net-tap23 librte-net-vhost23 librte-net-virtio23
              librte-net-memif23)

want=("${BUILD_PKGS[@]}")
case "${1:-all}" in
  runtime) want=("${RUNTIME_PKGS[@]}") ;;
  build) ;;
  test) want+=("${TEST_PKGS[@]}") ;;
  all) want+=("${TEST_PKGS[@]}" "${PERF_PKGS[@]}") ;;
  *) echo "usage: $0 [runtime|build|test|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -q
  # wireshark-common asks whether non-root users may capture: answer no, quietly.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Test peers from PyPI, each in its own venv (Faucet pins an older os-ken):
# os-ken, the OpenFlow controller framework tests/ovs.rs runs our app on
# (tests/controllers/), and the Faucet controller.
venv() { # DIR MODULE PACKAGE
  if ! "$1/bin/python" -c "import $2" >/dev/null 2>&1; then
    echo "install-deps: creating $1 with $3"
    rm -rf "$1"
    python3 -m venv "$1"
    "$1/bin/pip" install -q "$3"
  fi
}
case "${1:-all}" in
  test|all)
    venv /opt/vswitch-venv os_ken 'os-ken==4.2.2'
    venv /opt/vswitch-faucet faucet 'faucet==1.10.12'
    # SPDK's JSON-RPC client (rpc.py as spdk-rpc), the peer of tests/rpc_qemu.rs.
    venv /opt/vswitch-spdk spdk 'spdk==26.9'
    ;;
esac

# Rust toolchain components used by CI.
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
fi
