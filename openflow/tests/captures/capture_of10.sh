#!/bin/bash
# Re-creates of10_session.txt: what a plain ovs-ofctl 3.1 (no -O: OpenFlow 1.0 and
# Nicira extensions) sends to a real OVS 3.1 bridge and what the bridge answers,
# recorded by of10_proxy.py between the two (one line per message:
# "SESSION C>S|S>C HEX"; "== NAME" before each command):
#   bash openflow/tests/captures/capture_of10.sh
# OVS runs on its dummy datapath in a private run directory (no host networking).
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
run=$(mktemp -d /tmp/ofcap10.XXXXXX)
export OVS_RUNDIR=$run OVS_DBDIR=$run OVS_LOGDIR=$run OVS_SYSCONFDIR=$run
ovsdb-tool create "$run/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$run/conf.db" --remote="punix:$run/db.sock" --unixctl="$run/ovsdb.ctl" \
    --pidfile="$run/ovsdb.pid" --log-file="$run/ovsdb.log" --detach
vsctl() { ovs-vsctl --db="unix:$run/db.sock" "$@"; }
vsctl --no-wait init
ovs-vswitchd "unix:$run/db.sock" --enable-dummy=override --disable-system \
    --unixctl="$run/vswitchd.ctl" --pidfile="$run/vswitchd.pid" --log-file="$run/vswitchd.log" --detach
vsctl add-br br0 -- set bridge br0 datapath_type=netdev fail_mode=secure \
    -- add-port br0 p1 -- set Interface p1 type=dummy ofport_request=1 \
    -- add-port br0 p2 -- set Interface p2 type=dummy ofport_request=2
out=$run/session.txt
python3 "$dir/of10_proxy.py" "$run/px.sock" "$run/br0.mgmt" "$out" & proxy=$!
cleanup() {
    kill "$proxy" 2>/dev/null || true
    ovs-appctl -t "$run/vswitchd.ctl" exit 2>/dev/null || true
    ovs-appctl -t "$run/ovsdb.ctl" exit 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do [ -S "$run/px.sock" ] && break; sleep 0.1; done
P=unix:$run/px.sock
cap() { local name=$1; shift; echo "== $name" >> "$out"; ovs-ofctl "$1" "$P" "${@:2}" >/dev/null || true; sleep 0.1; }
ARP=ffffffffffff0200000000010806000108000604000102000000000a0a000001000000000000000a000002
cap show show
cap add add-flow "priority=100,in_port=1,ip,nw_dst=10.0.0.2,actions=output:2"
cap add2 add-flow "table=0,priority=50,in_port=2,actions=mod_dl_src:02:00:00:00:00:99,output:1"
cap add3 add-flow "priority=60,tcp,tp_dst=80,actions=resubmit(,1)"
cap add4 add-flow "table=1,priority=1,actions=drop"
cap dump dump-flows
cap mod mod-flows "in_port=1,actions=output:1"
cap dumpports dump-ports
cap delstrict del-flows --strict "priority=60,tcp,tp_dst=80"
cap del del-flows
cap dump2 dump-flows
cap nxadd add-flow "table=2,cookie=0x1234,idle_timeout=60,priority=7,ipv6,ipv6_dst=fe80::1,actions=dec_ttl,output:2"
cap nxadd2 add-flow "priority=8,tcp,nw_src=10.0.0.0/24,tp_src=1000,vlan_tci=0x1005/0x1fff,actions=mod_vlan_vid:7,mod_nw_tos:8,mod_tp_dst:99,strip_vlan,NORMAL"
cap nxadd3 add-flow "priority=9,arp,arp_spa=10.0.0.1,dl_vlan=0xffff,actions=FLOOD,IN_PORT,LOCAL,CONTROLLER:100,ALL"
cap dumpm dump-flows "table=2,ipv6"
cap dumpall dump-flows
cap agg dump-aggregate
cap tables dump-tables
cap desc dump-desc
cap frags get-frags
cap dumpports1 dump-ports 1
cap delout del-flows "out_port=2"
cap dumpfin dump-flows
cap packetout packet-out "in_port=1,packet=$ARP,actions=output:2,FLOOD"
cap packetout2 packet-out "in_port=LOCAL,packet=$ARP,actions=TABLE"
# The table-stats reply (254 x 64 bytes) is kept once.
awk 'length($0) > 4000 { if (seen++) next } { print }' "$out" > "$dir/of10_session.txt"
echo "of10_session.txt: $(grep -vc '^==' "$dir/of10_session.txt") messages"
