//! The ct flows of `ct_flows.txt` (and the register flows of
//! `reg_flows.txt`) on the wire of a real Open vSwitch 3.1:
//! `ovs-ofctl` installs them in `ovs-vswitchd` (dummy datapath, private
//! ovsdb-server, nothing touches the host's network), this test connects to
//! the bridge as a controller and asks for the flow statistics. OVS's reply
//! must parse and re-emit byte for byte (`openflow`), every flow must
//! translate (`flow_match::to_switch`, `actions::to_switch`) to exactly the
//! rule the switch's own parser makes of the same text line, and the
//! translation back (`from_switch`) must give OVS's instructions byte for
//! byte and OVS's match fields (as a set: OVS orders them its own way).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ofproto::port_map::PortMap;
use ofproto::{actions, flow_match};
use openflow::action::port_no;
use openflow::framing::Framer;
use openflow::hello::Hello;
use openflow::multipart::{
    FlowStats, FlowStatsRequest, MultipartReplyBody, MultipartRequest, MultipartRequestBody, MORE,
};
use openflow::{Match, Message, OxmField};
use ovs_sandbox::Sandbox;
use switch::action::Action;
use switch::rule::RuleSpec;

const FLOWS: &str = include_str!("ct_flows.txt");

/// A real OVS on its dummy datapath with bridge `br0` (secure, OpenFlow
/// 1.3), in a directory of its own per test of this process (they run in
/// parallel).
fn start_ovs() -> Sandbox {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ofproto-ctwire-{}-{n}", std::process::id()));
    Sandbox::start_dummy(dir, "br0", &["fail_mode=secure", "protocols=OpenFlow13"])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Sends `msgs`, returns every message received until `done` says so.
fn converse(sock: &Path, msgs: &[Message], mut done: impl FnMut(&Message) -> bool) -> Vec<Vec<u8>> {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for (i, m) in msgs.iter().enumerate() {
        s.write_all(&m.to_vec(i as u32 + 1).unwrap()).unwrap();
    }
    let (mut framer, mut out, mut buf) = (Framer::new(), Vec::new(), [0u8; 65536]);
    loop {
        while let Some(msg) = framer.next_message().unwrap() {
            let (_, m) = Message::parse(&msg).unwrap_or_else(|e| panic!("{e}: {msg:02x?}"));
            let stop = done(&m);
            out.push(msg);
            if stop {
                return out;
            }
        }
        let n = s.read(&mut buf).expect("OVS answered");
        assert!(n > 0, "OVS closed the connection");
        framer.push(&buf[..n]);
    }
}

/// The rule the switch's own parser makes of a line (without `drop`, which
/// OpenFlow expresses as no action).
fn parsed(line: &str) -> RuleSpec {
    let mut r: RuleSpec = line.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
    r.actions.retain(|a| *a != Action::Drop);
    r
}

fn sorted(mut v: Vec<OxmField>) -> Vec<OxmField> {
    v.sort_by_key(|f| format!("{f:?}"));
    v
}

#[test]
fn ovs_ct_flow_stats_translate_both_ways() {
    translate_both_ways(FLOWS);
}

/// The register flows (OVN's zones in registers, masked register
/// matches, `load`, `set_field`, `move` of reg/xreg/metadata,
/// `ct(zone=NXM_NX_REG0[0..15])`) the same way.
#[test]
fn ovs_reg_flow_stats_translate_both_ways() {
    translate_both_ways(include_str!("reg_flows.txt"));
}

fn translate_both_ways(flows_text: &str) {
    if Command::new("ovs-vswitchd")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("ovs-vswitchd is missing: apt-get install openvswitch-switch");
    }
    let ovs = start_ovs();
    let file = ovs.path("flows.txt");
    std::fs::write(&file, flows_text).unwrap();
    ovs.tool(
        "ovs-ofctl",
        &["-O", "OpenFlow13", "add-flows", "br0", &file],
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let request = Message::MultipartRequest(MultipartRequest {
        flags: 0,
        body: MultipartRequestBody::Flow(FlowStatsRequest {
            table_id: openflow::table_mod::OFPTT_ALL,
            out_port: port_no::ANY,
            out_group: openflow::flow_mod::OFPG_ANY,
            cookie: 0,
            cookie_mask: 0,
            matching: Match::new(),
        }),
    });
    let replies = converse(
        &ovs.dir.join("br0.mgmt"),
        &[Message::Hello(Hello::ours()), request],
        |m| {
            matches!(m, Message::MultipartReply(r) if r.flags & MORE == 0
            && matches!(r.body, MultipartReplyBody::Flow(_)))
        },
    );
    let mut flows: Vec<FlowStats> = Vec::new();
    for bytes in &replies {
        let (h, m) = Message::parse(bytes).unwrap();
        // What OVS sent re-emits byte for byte.
        assert_eq!(m.to_vec(h.xid).unwrap(), *bytes, "{m:?}");
        if let Message::MultipartReply(r) = m {
            if let MultipartReplyBody::Flow(f) = r.body {
                flows.extend(f);
            }
        }
    }
    let lines: Vec<&str> = flows_text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(flows.len(), lines.len());
    let mut want: Vec<RuleSpec> = lines.iter().map(|l| parsed(l)).collect();
    let p = PortMap::new(Some(0));
    for f in &flows {
        let matcher = flow_match::to_switch(&f.matching.fields, &p)
            .unwrap_or_else(|e| panic!("{e}: {:?}", f.matching));
        let acts = actions::to_switch(&f.instructions, &p)
            .unwrap_or_else(|e| panic!("{e}: {:?}", f.instructions));
        // The same rule as the switch's parse of one line of the file.
        let at = want
            .iter()
            .position(|r| {
                r.table == f.table_id
                    && r.priority == f.priority
                    && r.matcher == matcher
                    && r.actions == acts.actions
                    && r.instructions == acts.instructions
            })
            .unwrap_or_else(|| {
                panic!(
                    "OVS's flow {f:?} translates to {matcher} actions={:?}, not a line of the file",
                    acts.actions
                )
            });
        want.remove(at);
        // And back: OVS's bytes for the actions, OVS's match fields.
        let ins = actions::from_switch(&acts.actions, &acts.instructions, &p);
        assert_eq!(ins, f.instructions, "{matcher}");
        assert_eq!(
            sorted(flow_match::from_switch(&matcher, &p)),
            sorted(f.matching.fields.clone()),
            "{matcher}"
        );
    }
}
