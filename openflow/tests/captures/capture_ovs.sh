#!/bin/bash
# Captures what a real Open vSwitch 3.1 switch sends to a controller: a private
# ovsdb-server + ovs-vswitchd (dummy datapath and ports, nothing touches the host's
# network) in a temporary directory, driven by examples/controller_capture.rs.
#   cargo build -p openflow --example controller_capture && bash openflow/tests/captures/capture_ovs.sh
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
tool=${CAPTURE_TOOL:-${CARGO_TARGET_DIR:-$dir/../../../target}/debug/examples/controller_capture}
D=$(mktemp -d /tmp/ofovs.XXXXXX)
export OVS_RUNDIR=$D OVS_LOGDIR=$D OVS_DBDIR=$D
cleanup() {
    for p in vswitchd ovsdb; do
        [ -f "$D/$p.pid" ] && kill "$(cat "$D/$p.pid")" 2>/dev/null || true
    done
    sleep 0.3
    rm -rf "$D"
}
trap cleanup EXIT
ovsdb-tool create "$D/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$D/conf.db" --remote=punix:"$D/db.sock" --unixctl="$D/ovsdb.ctl" \
    --pidfile="$D/ovsdb.pid" --log-file="$D/ovsdb.log" --detach
vsctl() { ovs-vsctl --db=unix:"$D/db.sock" --timeout=10 "$@"; }
vsctl --no-wait init
ovs-vswitchd unix:"$D/db.sock" --enable-dummy=override --disable-system \
    --unixctl="$D/vswitchd.ctl" --pidfile="$D/vswitchd.pid" --log-file="$D/vswitchd.log" --detach
vsctl add-br br0 -- set bridge br0 datapath_type=dummy protocols=OpenFlow13 fail_mode=secure \
    other-config:datapath-id=0000020000000001 \
    -- add-port br0 p1 -- set interface p1 type=dummy ofport_request=1 \
    -- add-port br0 p2 -- set interface p2 type=dummy ofport_request=2
# While the tool listens: a new port (PORT_STATUS), then an ARP request into p1, which
# misses the flows and goes to the controller through the table-miss flow (PACKET_IN).
(sleep 1.5
 vsctl add-port br0 p3 -- set interface p3 type=dummy ofport_request=3
 sleep 0.3
 ovs-appctl -t "$D/vswitchd.ctl" netdev-dummy/receive p1 \
     ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002) &
"$tool" "$D/br0.mgmt" "$dir/ovs_switch.hex" 4
wait
echo "ovs_switch: $(wc -l < "$dir/ovs_switch.hex") messages"
