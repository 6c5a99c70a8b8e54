//! Capture tool: a passive OpenFlow 1.3 endpoint on a unix socket that records every
//! message a peer (normally `ovs-ofctl -O OpenFlow13 ... unix:PATH`) sends.
//!
//! ```text
//! cargo run -p openflow --example capture -- SOCKET_PATH OUT_FILE [CONNECTIONS]
//! ```
//!
//! It answers HELLO with a 1.3 HELLO, and FEATURES / GET_CONFIG / BARRIER / ECHO /
//! ROLE / GET_ASYNC / MULTIPART requests with minimal replies built by this crate, and
//! appends every received message to OUT_FILE as one hex line. It serves CONNECTIONS
//! connections (default 1; 0: until killed) and exits. `ovs-ofctl` opens extra connections to learn
//! table and port names (TABLE_FEATURES, PORT_DESC) unless given `--no-names`.

use openflow::features::FeaturesReply;
use openflow::framing::Framer;
use openflow::hello::Hello;
use openflow::multipart::{
    AggregateStats, Desc, GroupFeatures, MeterFeatures, MultipartReply, MultipartReplyBody,
    MultipartRequestBody, TableFeatures,
};
use openflow::port::Port;
use openflow::switch_config::SwitchConfig;
use openflow::Message;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};

/// The minimal answer a switch gives to `request`, if any.
fn minimal_reply(request: &[u8]) -> Option<Vec<u8>> {
    let (h, m) = Message::parse(request).ok()?;
    let reply = match m {
        Message::EchoRequest(b) => Message::EchoReply(b),
        Message::FeaturesRequest => Message::FeaturesReply(FeaturesReply {
            datapath_id: 0x0000_0200_0000_0001,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0x4f,
            reserved: 0,
        }),
        Message::GetConfigRequest => Message::GetConfigReply(SwitchConfig::default()),
        Message::BarrierRequest => Message::BarrierReply,
        Message::RoleRequest(r) => Message::RoleReply(r),
        Message::GetAsyncRequest => Message::GetAsyncReply(Default::default()),
        Message::MultipartRequest(r) => {
            use MultipartReplyBody as R;
            use MultipartRequestBody as Q;
            let body = match r.body {
                Q::Desc => R::Desc(Desc {
                    mfr_desc: "vswitch".into(),
                    hw_desc: "capture".into(),
                    sw_desc: "openflow crate".into(),
                    serial_num: "0".into(),
                    dp_desc: "capture tool".into(),
                }),
                Q::Flow(_) => R::Flow(vec![]),
                Q::Aggregate(_) => R::Aggregate(AggregateStats::default()),
                Q::Table => R::Table(vec![]),
                Q::PortStats { .. } => R::PortStats(vec![]),
                Q::PortDesc => R::PortDesc(
                    (1..=2)
                        .map(|n| Port {
                            port_no: n,
                            hw_addr: [2, 0, 0, 0, 0, n as u8],
                            name: format!("p{n}"),
                            state: openflow::port::state::LIVE,
                            curr_speed: 10_000_000,
                            max_speed: 10_000_000,
                            ..Port::default()
                        })
                        .collect(),
                ),
                Q::Group { .. } => R::Group(vec![]),
                Q::GroupDesc => R::GroupDesc(vec![]),
                Q::GroupFeatures => R::GroupFeatures(GroupFeatures::default()),
                Q::MeterFeatures => R::MeterFeatures(MeterFeatures::default()),
                Q::TableFeatures(_) => R::TableFeatures(
                    (0..4)
                        .map(|t| TableFeatures {
                            table_id: t,
                            name: format!("table{t}"),
                            metadata_match: u64::MAX,
                            metadata_write: u64::MAX,
                            config: 0,
                            max_entries: 1_000_000,
                            properties: openflow::table_features::TableFeatureProp::required_empty(
                            ),
                        })
                        .collect(),
                ),
                Q::Other { mp_type, .. } => R::Other {
                    mp_type,
                    body: vec![],
                },
            };
            Message::MultipartReply(MultipartReply { flags: 0, body })
        }
        _ => return None,
    };
    reply.to_vec(h.xid).ok()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Serves one connection: records each message, answers what needs an answer.
fn serve(mut s: UnixStream, out: Arc<Mutex<File>>, config: Arc<Mutex<SwitchConfig>>) {
    let hello = Message::Hello(Hello::ours()).to_vec(0).expect("hello");
    if s.write_all(&hello).is_err() {
        return;
    }
    let mut framer = Framer::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        framer.push(&buf[..n]);
        loop {
            let msg = match framer.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("framing error: {e}");
                    return;
                }
            };
            if let Ok(mut f) = out.lock() {
                let _ = writeln!(f, "{}", hex(&msg));
            }
            let reply = match Message::parse(&msg) {
                Ok((_, Message::SetConfig(c))) => {
                    *config.lock().expect("config") = c;
                    None
                }
                Ok((h, Message::GetConfigRequest)) => {
                    let c = *config.lock().expect("config");
                    Message::GetConfigReply(c).to_vec(h.xid).ok()
                }
                _ => minimal_reply(&msg),
            };
            if let Some(r) = reply {
                if s.write_all(&r).is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: capture SOCKET_PATH OUT_FILE [CONNECTIONS]");
        std::process::exit(2);
    }
    let _ = std::fs::remove_file(&args[1]);
    let listener = UnixListener::bind(&args[1]).expect("bind");
    let conns: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args[2])
        .expect("open output");
    let out = Arc::new(Mutex::new(out));
    let config = Arc::new(Mutex::new(SwitchConfig::default()));
    let mut threads = Vec::new();
    for n in 0.. {
        if conns != 0 && n == conns {
            break;
        }
        let Ok((s, _)) = listener.accept() else {
            break;
        };
        let (out, config) = (out.clone(), config.clone());
        threads.push(std::thread::spawn(move || serve(s, out, config)));
    }
    for t in threads {
        let _ = t.join();
    }
    let _ = std::fs::remove_file(&args[1]);
}
