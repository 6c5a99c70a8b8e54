#!/bin/sh
# Build SPDK's vhost target (v24.09) against the system DPDK 22.11, for `blk_vhost --spdk`.
#
#   perf/spdk/build.sh SPDK_SOURCE_TREE      # e.g. a `git archive` export of spdk/spdk at v24.09
#
# Builds in the given tree (never inside this repository) and prints the path of the
# vhost app to pass as `blk_vhost --spdk PATH`. Needs: libdpdk-dev, libaio-dev, uuid-dev,
# libssl-dev, libnuma-dev, libncurses-dev, pkg-config (CI does not build SPDK; the SPDK
# row of the benchmark is optional).
set -eu
src=${1:?usage: $0 SPDK_SOURCE_TREE}
cd "$src"
test -f lib/env_dpdk/pci_dpdk.c || { echo "$src is not an SPDK source tree" >&2; exit 1; }

# An export has no submodules. configure requires isa-l/autogen.sh to exist; without nasm it
# then turns ISA-L (and crypto/compression, disabled below anyway) off.
touch isa-l/autogen.sh

# SPDK v24.09 refuses DPDK 22.11.x for x > 4 because an LTS minor release *might* change the
# private PCI ABI; 22.11's LTS releases kept it (Debian 12 ships 22.11.11), and the vhost
# benchmark uses no PCI device anyway. Accept any 22.11 minor.
sed -i 's/if (minor > 4) {/if (minor > 4 \&\& 0) {/' lib/env_dpdk/pci_dpdk.c
grep -q 'minor > 4 && 0' lib/env_dpdk/pci_dpdk.c

./configure --with-dpdk --disable-tests --disable-unit-tests --disable-examples \
	--without-crypto --without-vbdev-compress --without-dpdk-compressdev --without-fio \
	--without-xnvme --without-vfio-user --without-rdma --without-ublk --without-uring \
	--without-ocf --without-fuse --without-nvme-cuse --without-usdt
nice -n 10 make -j"${JOBS:-2}"
echo "vhost app: $(pwd)/build/bin/vhost"
