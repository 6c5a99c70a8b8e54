//! Property tests: generated representations survive emit → parse unchanged, and no
//! input (random bytes, or real captures with bytes flipped, truncated or lengths
//! rewritten) makes a parser panic or read out of bounds. Whatever parses re-emits to
//! bytes that parse to the same representation.

use openflow::action::{port_no, Action};
use openflow::flow_mod::{FlowMod, FlowModCommand};
use openflow::group::{Bucket, GroupCommand, GroupMod, GroupType};
use openflow::instruction::Instruction;
use openflow::nicira::{Ct, Nat, NxAction};
use openflow::oxm::{Field, OxmField};
use openflow::{framing, Match, Message};
use proptest::prelude::*;

fn oxm() -> impl Strategy<Value = OxmField> {
    let known: Vec<Field> = Field::known().collect();
    (
        proptest::sample::select(known),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 32),
    )
        .prop_map(|(field, masked, bytes)| {
            let n = field.value_len().unwrap();
            let value = bytes[..n].to_vec();
            let mask = masked.then(|| bytes[16..16 + n].to_vec());
            OxmField { field, value, mask }
        })
}

fn a_match() -> impl Strategy<Value = Match> {
    proptest::collection::vec(oxm(), 0..12).prop_map(|fields| Match { fields })
}

fn leaf_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (any::<u32>(), any::<u16>()).prop_map(|(port, max_len)| Action::Output { port, max_len }),
        Just(Action::CopyTtlOut),
        Just(Action::CopyTtlIn),
        any::<u8>().prop_map(Action::SetMplsTtl),
        Just(Action::DecMplsTtl),
        any::<u16>().prop_map(Action::PushVlan),
        Just(Action::PopVlan),
        any::<u16>().prop_map(Action::PushMpls),
        any::<u16>().prop_map(Action::PopMpls),
        any::<u32>().prop_map(Action::SetQueue),
        any::<u32>().prop_map(Action::Group),
        any::<u8>().prop_map(Action::SetNwTtl),
        Just(Action::DecNwTtl),
        oxm().prop_map(|mut o| {
            o.mask = None;
            Action::SetField(o)
        }),
        any::<u16>().prop_map(Action::PushPbb),
        Just(Action::PopPbb),
        any::<u16>().prop_map(|in_port| Action::Nicira(NxAction::Resubmit { in_port })),
        (any::<u16>(), any::<u8>()).prop_map(|(in_port, table)| Action::Nicira(
            NxAction::ResubmitTable { in_port, table }
        )),
        any::<u32>().prop_map(|t| Action::Nicira(NxAction::SetTunnel(t))),
        any::<u64>().prop_map(|t| Action::Nicira(NxAction::SetTunnel64(t))),
        Just(Action::Nicira(NxAction::CtClear)),
        (any::<u16>(), any::<u32>(), any::<u64>()).prop_map(|(ofs_nbits, dst, value)| {
            Action::Nicira(NxAction::RegLoad {
                ofs_nbits,
                dst,
                value,
            })
        }),
        (
            any::<u16>(),
            proptest::option::of(any::<[u8; 4]>()),
            proptest::option::of(any::<[u8; 4]>()),
            proptest::option::of(any::<[u8; 16]>()),
            proptest::option::of(any::<[u8; 16]>()),
            proptest::option::of(any::<u16>()),
            proptest::option::of(any::<u16>()),
        )
            .prop_map(|(flags, a, b, c, d, p, q)| {
                Action::Nicira(NxAction::Nat(Nat {
                    flags,
                    ipv4_min: a.map(Into::into),
                    ipv4_max: b.map(Into::into),
                    ipv6_min: c.map(Into::into),
                    ipv6_max: d.map(Into::into),
                    proto_min: p,
                    proto_max: q,
                }))
            }),
        (1u16..0xffff, proptest::collection::vec(any::<u8>(), 0..3)).prop_map(|(subtype, n)| {
            // Raw Nicira bodies re-emit padded, so generate them already padded.
            let len = 6 + 8 * n.len();
            Action::Nicira(NxAction::Raw {
                subtype: subtype.max(100),
                data: vec![0x5a; len],
            })
        }),
        (any::<u32>(), 0usize..3).prop_map(|(experimenter, n)| Action::Experimenter {
            experimenter: if experimenter == 0x2320 {
                1
            } else {
                experimenter
            },
            data: vec![7; 8 * n],
        }),
        (28u16..0xfff0, 0usize..3).prop_map(|(action_type, n)| Action::Unknown {
            action_type,
            data: vec![1; 4 + 8 * n],
        }),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => leaf_action(),
        1 => (any::<u16>(), any::<u32>(), any::<u16>(), any::<u8>(), proptest::collection::vec(leaf_action(), 0..3))
            .prop_map(|(flags, zone_src, zone, recirc_table, actions)| {
                Action::Nicira(NxAction::Ct(Ct { flags, zone_src, zone, recirc_table, alg: 0, actions }))
            }),
    ]
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    proptest::collection::vec(action(), 0..6)
}

fn instruction() -> impl Strategy<Value = Instruction> {
    prop_oneof![
        any::<u8>().prop_map(Instruction::GotoTable),
        (any::<u64>(), any::<u64>())
            .prop_map(|(metadata, mask)| Instruction::WriteMetadata { metadata, mask }),
        actions().prop_map(Instruction::WriteActions),
        actions().prop_map(Instruction::ApplyActions),
        Just(Instruction::ClearActions),
        any::<u32>().prop_map(Instruction::Meter),
        (any::<u32>(), 0usize..3).prop_map(|(experimenter, n)| Instruction::Experimenter {
            experimenter,
            data: vec![3; 8 * n]
        }),
    ]
}

fn flow_mod() -> impl Strategy<Value = FlowMod> {
    (
        any::<[u64; 2]>(),
        any::<[u8; 2]>(),
        any::<[u16; 4]>(),
        any::<[u32; 3]>(),
        a_match(),
        proptest::collection::vec(instruction(), 0..5),
    )
        .prop_map(|(c, b, w, d, matching, instructions)| FlowMod {
            cookie: c[0],
            cookie_mask: c[1],
            table_id: b[0],
            command: FlowModCommand::from_u8(b[1] % 6),
            idle_timeout: w[0],
            hard_timeout: w[1],
            priority: w[2],
            buffer_id: d[0],
            out_port: d[1],
            out_group: d[2],
            flags: w[3] & 0x1f,
            matching,
            instructions,
        })
}

fn group_mod() -> impl Strategy<Value = GroupMod> {
    let bucket = (any::<u16>(), any::<u32>(), any::<u32>(), actions()).prop_map(
        |(weight, watch_port, watch_group, actions)| Bucket {
            weight,
            watch_port,
            watch_group,
            actions,
        },
    );
    (
        0u16..4,
        0u8..5,
        any::<u32>(),
        proptest::collection::vec(bucket, 0..4),
    )
        .prop_map(|(c, t, group_id, buckets)| GroupMod {
            command: GroupCommand::from_u16(c),
            group_type: GroupType::from_u8(t),
            group_id,
            buckets,
        })
}

fn meter_mod() -> impl Strategy<Value = openflow::meter_mod::MeterMod> {
    use openflow::meter_mod::{Band, BandKind, MeterMod};
    let kind = prop_oneof![
        Just(BandKind::Drop),
        any::<u8>().prop_map(|prec_level| BandKind::DscpRemark { prec_level }),
        any::<u32>().prop_map(|experimenter| BandKind::Experimenter { experimenter }),
        (3u16..0xfff0, any::<u32>())
            .prop_map(|(band_type, data)| BandKind::Other { band_type, data }),
    ];
    let band = (kind, any::<u32>(), any::<u32>()).prop_map(|(kind, rate, burst_size)| Band {
        kind,
        rate,
        burst_size,
    });
    (
        0u16..3,
        0u16..16,
        any::<u32>(),
        proptest::collection::vec(band, 0..4),
    )
        .prop_map(|(command, flags, meter_id, bands)| MeterMod {
            command,
            flags,
            meter_id,
            bands,
        })
}

fn captured_messages() -> &'static [Vec<u8>] {
    static ALL: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    ALL.get_or_init(read_captures)
}

fn read_captures() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/captures", env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "hex") {
            for l in std::fs::read_to_string(p).unwrap().lines() {
                let l = l.trim();
                all.push(
                    (0..l.len() / 2)
                        .map(|i| u8::from_str_radix(&l[2 * i..2 * i + 2], 16).unwrap())
                        .collect(),
                );
            }
        }
    }
    all
}

/// Parse must not panic; if it succeeds, emit must succeed and parse back equal.
fn parse_emit_parse(bytes: &[u8]) {
    if let Ok((h, m)) = Message::parse(bytes) {
        let out = m.to_vec(h.xid).expect("a parsed message re-emits");
        assert_eq!(out.len(), m.buffer_len());
        let (h2, m2) = Message::parse(&out).expect("re-emitted message parses");
        assert_eq!(h2.xid, h.xid);
        assert_eq!(m2, m);
    }
    for m in framing::messages(bytes) {
        if m.is_err() {
            break;
        }
    }
    let _ = Match::parse(bytes);
    let _ = Action::parse_list(bytes);
    let _ = Instruction::parse_list(bytes);
    let _ = OxmField::parse(bytes);
    let _ = Bucket::parse_list(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn construct_and_parse_flow_mod(f in flow_mod(), xid in any::<u32>()) {
        let m = Message::FlowMod(f);
        let out = m.to_vec(xid).unwrap();
        prop_assert_eq!(out.len(), m.buffer_len());
        prop_assert_eq!(out.len() % 8, 0);
        let (h, back) = Message::parse(&out).unwrap();
        prop_assert_eq!(h.xid, xid);
        prop_assert_eq!(back, m);
    }

    #[test]
    fn construct_and_parse_group_mod(g in group_mod()) {
        let m = Message::GroupMod(g);
        let out = m.to_vec(1).unwrap();
        prop_assert_eq!(Message::parse(&out).unwrap().1, m);
    }

    #[test]
    fn construct_and_parse_meter_mod(m in meter_mod()) {
        let m = Message::MeterMod(m);
        let out = m.to_vec(1).unwrap();
        prop_assert_eq!(Message::parse(&out).unwrap().1, m);
    }

    #[test]
    fn construct_and_parse_packet_out(actions in actions(), data in proptest::collection::vec(any::<u8>(), 0..100)) {
        let m = Message::PacketOut(openflow::packet_out::PacketOut {
            buffer_id: u32::MAX,
            in_port: port_no::CONTROLLER,
            actions,
            data,
        });
        let out = m.to_vec(1).unwrap();
        prop_assert_eq!(Message::parse(&out).unwrap().1, m);
    }

    #[test]
    fn parse_random_bytes_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..600), t in 0u8..32) {
        // Make most inputs look like 1.3 messages of a valid type and length, so the
        // body parsers are reached.
        if bytes.len() >= 8 {
            bytes[0] = 4;
            bytes[1] = t;
            let len = bytes.len() as u16;
            bytes[2..4].copy_from_slice(&len.to_be_bytes());
        }
        parse_emit_parse(&bytes);
    }

    #[test]
    fn parse_mutated_captures_never_panics(
        pick in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let all = captured_messages();
        let mut m = all[pick.index(all.len())].clone();
        for (at, v) in flips {
            let i = at.index(m.len());
            m[i] = v;
        }
        if truncate {
            let n = cut.index(m.len() + 1);
            m.truncate(n);
            if m.len() >= 4 {
                let len = m.len() as u16;
                m[2..4].copy_from_slice(&len.to_be_bytes());
            }
        }
        parse_emit_parse(&m);
    }
}

#[test]
fn parse_every_truncation_of_every_capture() {
    for m in captured_messages() {
        // Every cut of small messages; for the big ones (OVS's table features), a
        // spread of cuts and every cut near the end.
        let cuts: Vec<usize> = if m.len() <= 2048 {
            (0..m.len()).collect()
        } else {
            (0..m.len())
                .step_by(97)
                .chain(m.len() - 64..m.len())
                .collect()
        };
        for n in cuts {
            let mut t = m[..n].to_vec();
            parse_emit_parse(&t);
            if n >= 4 {
                let len = n as u16;
                t[2..4].copy_from_slice(&len.to_be_bytes());
                parse_emit_parse(&t);
            }
        }
    }
}

/// Found by `cargo fuzz`: a PORT_DESC reply whose port names are not UTF-8 (and fill
/// all 16 bytes) must still parse → emit → parse to the same message.
#[test]
fn parse_fuzz_regression_non_utf8_port_name() {
    let hex = "0413009020000041000d000000000000000100d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8ffffff97ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03ff00ffffffff100008002c0000080000fffff7ff220000000000000010000000000404102200000000000000100000000000000000f61783448a";
    let b: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    parse_emit_parse(&b);
    assert!(Message::parse(&b).is_ok());
}
