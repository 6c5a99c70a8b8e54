//! The conntrack fields as `move`/`push` sources (OVS's
//! `lib/meta-flow.xml`: NXM_NX_CT_STATE, NXM_NX_CT_ZONE, NXM_NX_CT_MARK,
//! NXM_NX_CT_LABEL): `move:NXM_NX_CT_LABEL[32..79]->NXM_OF_ETH_DST[]`,
//! OVN's ECMP symmetric reply.
//!
//! They live in the frame's [`CtKey`], which the pipeline translation of
//! a recirculated pass holds, so a read is a constant of the compiled
//! entry: the table version's ct lookup mask takes the fields read
//! ([`read_mask`]) so that entry holds for every frame sharing the masked
//! ct fields. Before any `ct` they read 0 (untracked), as in OVS. Actions
//! do not write them here: `ct_mark`/`ct_label` only inside
//! `ct(commit,exec(...))` (OVS: "cannot set CT fields outside of ct
//! action"), `ct_state`/`ct_zone` never.

use super::key::field as ck;
use super::CtKey;

/// A conntrack field `move`/`push` may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtField {
    /// NXM_NX_CT_STATE (32 bits; OVS's state bits in the low 8).
    State,
    /// NXM_NX_CT_ZONE (16 bits).
    Zone,
    /// NXM_NX_CT_MARK (32 bits).
    Mark,
    /// NXM_NX_CT_LABEL (128 bits).
    Label,
}

/// Every field, in NXM order.
pub const ALL: [CtField; 4] = [CtField::State, CtField::Zone, CtField::Mark, CtField::Label];

impl CtField {
    /// The NXM name `ovs-ofctl` prints in a subfield.
    pub fn nxm_name(self) -> &'static str {
        match self {
            CtField::State => "NXM_NX_CT_STATE",
            CtField::Zone => "NXM_NX_CT_ZONE",
            CtField::Mark => "NXM_NX_CT_MARK",
            CtField::Label => "NXM_NX_CT_LABEL",
        }
    }

    /// Parse the NXM name or the meta-flow name (`ct_mark`),
    /// case-insensitively.
    pub fn parse(s: &str) -> Option<CtField> {
        let l = s.trim().to_ascii_lowercase();
        ALL.into_iter().find(|f| {
            let nxm = f.nxm_name().to_ascii_lowercase();
            l == nxm || l == nxm["nxm_nx_".len()..]
        })
    }

    /// Width in bits.
    pub fn bits(self) -> u8 {
        match self {
            CtField::State | CtField::Mark => 32,
            CtField::Zone => 16,
            CtField::Label => 128,
        }
    }

    /// The [`CtKey`] bytes the field occupies.
    pub fn key_range(self) -> core::ops::Range<usize> {
        match self {
            CtField::State => ck::STATE..ck::STATE + 1,
            CtField::Zone => ck::ZONE,
            CtField::Mark => ck::MARK,
            CtField::Label => ck::LABEL,
        }
    }

    /// The field's value in `ct` (right-aligned).
    pub fn get(self, ct: &CtKey) -> u128 {
        match self {
            CtField::State => u128::from(ct.state()),
            CtField::Zone => u128::from(ct.zone()),
            CtField::Mark => u128::from(ct.mark()),
            CtField::Label => ct.label(),
        }
    }
}

/// The ct lookup mask a version needs for `acts`' reads of ct fields
/// (every byte of each field read, added to `mask`).
pub fn read_mask<'a>(mask: &mut CtKey, acts: impl Iterator<Item = &'a crate::action::Action>) {
    use crate::action::Action;
    use crate::regs::RegField;
    for a in acts {
        let src = match a {
            Action::Move(m) => m.src.field,
            Action::StackPush(sf) => sf.field,
            _ => continue,
        };
        if let RegField::Ct(c) = src {
            mask.as_bytes_mut()[c.key_range()].fill(0xff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_widths_and_values() {
        assert_eq!(CtField::parse("NXM_NX_CT_LABEL"), Some(CtField::Label));
        assert_eq!(CtField::parse("ct_zone"), Some(CtField::Zone));
        assert_eq!(CtField::parse("ct_foo"), None);
        let mut k = CtKey::ZERO;
        k.set_state(0x21);
        k.set_zone(5);
        k.set_mark(0xab);
        k.set_label(1 << 100 | 7);
        let v: Vec<u128> = ALL.iter().map(|f| f.get(&k)).collect();
        assert_eq!(v, [0x21, 5, 0xab, 1 << 100 | 7]);
        for f in ALL {
            assert!(usize::from(f.bits()) >= f.key_range().len() * 8 || f == CtField::State);
        }
        let mv: crate::action::Action = "move:NXM_NX_CT_MARK[0..15]->NXM_NX_REG0[0..15]"
            .parse()
            .unwrap();
        let mut m = CtKey::ZERO;
        read_mask(&mut m, [mv].iter());
        assert_eq!(m.mark(), u32::MAX);
        assert_eq!(m.label(), 0);
    }
}
