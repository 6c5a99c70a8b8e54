# CI image of the data plane: Debian 12 with DPDK 22.11 (net_null and the
# other virtual PMDs come with Debian's dpdk package). Packages are installed
# by the same script CI uses, so the two cannot drift.
#
#   docker build -t vswitch .
#   docker run --rm vswitch                      # forwards net_null0 -> net_null1 for 10 s
#   docker run --rm --privileged -v /dev/hugepages:/dev/hugepages vswitch vswitch run --eal "-l 0-1" ...

FROM rust:1-bookworm AS build
WORKDIR /src
COPY .ci/install-deps.sh .ci/install-deps.sh
RUN bash .ci/install-deps.sh build
COPY . .
RUN cargo build --release --locked --bin vswitch

FROM debian:bookworm-slim
COPY .ci/install-deps.sh /tmp/install-deps.sh
RUN bash /tmp/install-deps.sh runtime && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh
COPY --from=build /src/target/release/vswitch /usr/local/bin/vswitch
# No NIC and no hugepages needed: two virtual ports, a generator and a sink.
CMD ["vswitch", "run", "--eal", "-l 0 --no-huge --no-shconf --no-pci --no-telemetry", \
     "--port", "net_null0", "--port", "net_null1,no-rx=1", "--duration", "10"]
