#!/bin/bash
# Re-creates the captures in this directory from the real ovs-ofctl:
#   cargo build -p openflow --example capture && bash openflow/tests/captures/capture.sh
# Each NAME.hex holds every message ovs-ofctl sent (one hex line each, all connections,
# including the extra ones it opens to learn table and port names).
set -u
dir=$(cd "$(dirname "$0")" && pwd)
tool=${CAPTURE_TOOL:-${CARGO_TARGET_DIR:-$dir/../../../target}/debug/examples/capture}
sock=$(mktemp -u /tmp/ofcap.XXXXXX)
cap() {
    local name=$1 cmd=$2; shift 2
    rm -f "$dir/$name.hex"
    "$tool" "$sock" "$dir/$name.hex" 0 & local pid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
    timeout 10 ovs-ofctl -O OpenFlow13 "$cmd" "unix:$sock" "$@" >/dev/null 2>&1
    echo "$name: rc=$? $(wc -l < "$dir/$name.hex") messages"
    sleep 0.2; kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}
cap add_flows add-flows "$dir/add_flows.txt"
cap add_ct_flows add-flows "$dir/add_ct_flows.txt"
cap del_flows_all del-flows
cap del_flows_strict del-flows --strict 'priority=100,in_port=1,dl_type=0x0800'
cap del_flows_cookie del-flows 'cookie=0x1234/-1,table=1,out_port=2'
cap mod_flows mod-flows 'in_port=1,actions=output:3'
cap mod_flows_strict mod-flows --strict 'priority=100,in_port=1,actions=output:3'
cap dump_flows dump-flows
cap dump_flows_match dump-flows 'table=1,tcp,cookie=0x1234/-1,out_port=2'
cap dump_aggregate dump-aggregate
cap dump_ports dump-ports
cap dump_ports_one dump-ports 1
cap dump_tables dump-tables
cap dump_ports_desc dump-ports-desc
cap dump_desc dump-desc
cap dump_table_features dump-table-features
cap add_groups add-groups "$dir/add_groups.txt"
cap dump_groups dump-groups
cap dump_group_stats dump-group-stats
cap dump_group_features dump-group-features
cap meter_features meter-features
cap del_groups del-groups 'group_id=2'
cap packet_out packet-out 'in_port=1,packet=ffffffffffff0200000000010806000108000604000102000000000a0a000001000000000000000a000002,actions=output:2,FLOOD'
cap mod_port mod-port 1 down
cap set_frags set-frags drop
cap get_frags get-frags
cap show show
cap add_meter add-meter 'meter=1,kbps,burst,stats,band=type=drop,rate=1000,burst_size=100'
cap add_meter_remark add-meter 'meter=2,pktps,band=type=dscp_remark,rate=500,prec_level=1'
cap del_meter del-meter 'meter=1'
cap dump_meters dump-meters
