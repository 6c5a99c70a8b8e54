//! Property tests of the ct translation: any NXAST_CT a peer can send
//! (random flags, zones, tables, NAT ranges, whole and masked writes of
//! ct_mark / ct_label as SET_FIELD and REG_LOAD) either earns an OpenFlow
//! error or becomes a switch action whose OpenFlow encoding translates back
//! to the same action; nothing panics.

use ofproto::ct_action::{ct_from_switch, ct_to_switch};
use openflow::nicira::{reg_load_ofs_nbits, NxAction};
use openflow::nx_ct::{Ct, Nat};
use openflow::oxm::{Field, OxmField};
use openflow::Action as OfAction;
use proptest::prelude::*;
use switch::action::Action;

fn nat() -> impl Strategy<Value = Nat> {
    (
        0u16..0x40,
        proptest::option::of(any::<[u8; 4]>()),
        proptest::option::of(any::<[u8; 4]>()),
        proptest::option::of(any::<[u8; 16]>()),
        proptest::option::of(any::<[u8; 16]>()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(flags, a, b, c, d, p, q)| Nat {
            flags,
            ipv4_min: a.map(Into::into),
            ipv4_max: b.map(Into::into),
            ipv6_min: c.map(Into::into),
            ipv6_max: d.map(Into::into),
            proto_min: p,
            proto_max: q,
        })
}

/// NATs OVS accepts: src or dst, one family, ordered ranges, ports only
/// with addresses.
fn valid_nat() -> impl Strategy<Value = Nat> {
    (
        prop_oneof![Just(1u16), Just(2u16)],
        prop_oneof![Just(0u16), Just(4), Just(8), Just(16), Just(12)],
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        proptest::option::of((1u16.., any::<u16>())),
    )
        .prop_map(|(kind, extra, v6, a, b, ports)| {
            let (lo, hi) = (a.min(b), a.max(b));
            let mut n = Nat {
                flags: kind | extra,
                ..Nat::default()
            };
            if v6 {
                n.ipv6_min = Some(lo.into());
                n.ipv6_max = Some(hi.into());
            } else {
                let (l4, h4) = (
                    [lo[0] | 1, lo[1], lo[2], lo[3]],
                    [hi[0] | 1, hi[1], hi[2], hi[3]],
                );
                n.ipv4_min = Some(l4.min(h4).into());
                n.ipv4_max = Some(l4.max(h4).into());
            }
            if let Some((p, q)) = ports {
                n.proto_min = Some(p);
                n.proto_max = Some(p.max(q));
            }
            n
        })
}

fn nested() -> impl Strategy<Value = OfAction> {
    let mark = Field::NxCtMark.nxm_header().unwrap();
    let label = Field::NxCtLabel.nxm_header().unwrap();
    prop_oneof![
        nat().prop_map(|n| OfAction::Nicira(NxAction::Nat(n))),
        valid_nat().prop_map(|n| OfAction::Nicira(NxAction::Nat(n))),
        any::<[u8; 4]>().prop_map(|v| OfAction::SetField(OxmField::exact(Field::NxCtMark, &v))),
        any::<[u8; 16]>().prop_map(|v| OfAction::SetField(OxmField::exact(Field::NxCtLabel, &v))),
        (0u16..140, 1u16..=64, any::<u64>(), any::<bool>()).prop_map(move |(ofs, n, v, m)| {
            OfAction::Nicira(NxAction::RegLoad {
                ofs_nbits: reg_load_ofs_nbits(ofs, n),
                dst: if m { mark } else { label },
                value: if n == 64 { v } else { v & ((1 << n) - 1) },
            })
        }),
        Just(OfAction::output(1)),
    ]
}

fn ct() -> impl Strategy<Value = Ct> {
    (
        prop_oneof![Just(1u16), 0u16..4],
        any::<u16>(),
        prop_oneof![Just(0xffu8), 0u8..0x40],
        proptest::collection::vec(nested(), 0..4),
    )
        .prop_map(|(flags, zone, recirc_table, actions)| Ct {
            flags,
            zone_src: 0,
            zone,
            recirc_table,
            alg: 0,
            actions,
        })
}

/// Runs 1000 generated actions; at least a fifth must be accepted (so the
/// round trip is exercised, not only the refusals).
#[test]
fn ct_translates_back_to_itself() {
    use proptest::test_runner::{Config, TestRunner};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let accepted = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config::with_cases(1000));
    runner
        .run(&ct(), |c| {
            let Ok(a) = ct_to_switch(&c) else {
                return Ok(());
            };
            let n = accepted.fetch_add(1, Ordering::Relaxed);
            if std::env::var_os("CT_ROUNDTRIP_SHOW").is_some() && n.is_multiple_of(100) {
                eprintln!("{n}: {a}");
            }
            let Action::Ct(id) = a else { panic!("{a:?}") };
            let of = ct_from_switch(id.spec());
            let OfAction::Nicira(NxAction::Ct(back)) = &of else {
                panic!("{of:?}")
            };
            // The re-encoded action is valid OpenFlow and means the same.
            prop_assert_eq!(back.check(), Ok(()));
            prop_assert_eq!(ct_to_switch(back).unwrap(), a);
            // And it survives the wire.
            let mut bytes = Vec::new();
            of.emit(&mut bytes).unwrap();
            prop_assert_eq!(OfAction::parse(&bytes).unwrap().0, of);
            Ok(())
        })
        .unwrap();
    let n = accepted.into_inner();
    assert!(
        n >= 200,
        "only {n} of 1000 generated ct actions were accepted"
    );
}
