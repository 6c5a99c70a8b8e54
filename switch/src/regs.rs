//! OVS's registers (`lib/meta-flow.xml`, "Register Fields"): sixteen 32-bit
//! scratch fields `reg0`..`reg15` (NXM_NX_REG0..15, class 0x0001), their
//! 64-bit overlays `xreg0`..`xreg7` (OXM_OF_PKT_REG0..7, class 0x8001:
//! `xregN` = `reg(2N)` in the high 32 bits, `reg(2N+1)` in the low), and
//! `metadata` as a register-like target of `load`/`move`/`set_field`.
//!
//! Registers are pipeline state, like `metadata`: 0 when a frame enters,
//! written by actions, read by later lookups, frozen and restored across a
//! `ct(table=N)` recirculation (OVS's `frozen_metadata` holds them). A
//! flow's registers are therefore a function of its masked key and of the
//! actions it traverses, so the pipeline translation
//! ([`crate::pipeline`]) computes them once per flow and the compiled
//! entry carries none: frames pay nothing for them on a cache hit, and
//! rules that do not match registers never read them. A `ct` whose zone
//! comes from a register (`ct(zone=NXM_NX_REG0[0..15])`) is resolved to an
//! immediate zone in the compiled entry the same way.

use core::fmt;

use crate::action::parse_uint;

/// Number of 32-bit registers (OVS's `FLOW_N_REGS`).
pub const N_REGS: usize = 16;
/// Number of 64-bit `xreg` overlays (OVS's `FLOW_N_XREGS`).
pub const N_XREGS: usize = N_REGS / 2;

/// The sixteen 32-bit registers of a frame (and, as a mask, the register
/// bits a rule matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Regs(pub [u32; N_REGS]);

impl Regs {
    /// All zero (a frame entering; the "match nothing" mask).
    pub const ZERO: Regs = Regs([0; N_REGS]);

    /// True when every register is 0.
    #[inline]
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&r| r == 0)
    }

    /// `self & mask`, register by register.
    #[inline]
    pub fn masked(&self, mask: &Regs) -> Regs {
        let mut out = *self;
        for (o, m) in out.0.iter_mut().zip(mask.0) {
            *o &= m;
        }
        out
    }

    /// True when `self & mask == value`.
    #[inline]
    pub fn matches(&self, mask: &Regs, value: &Regs) -> bool {
        self.masked(mask) == *value
    }

    /// True when every bit of `other` is set in `self`.
    pub fn covers(&self, other: &Regs) -> bool {
        self.0.iter().zip(other.0).all(|(&a, b)| a & b == b)
    }

    /// Bitwise or.
    pub fn union(&self, other: &Regs) -> Regs {
        let mut out = *self;
        for (o, b) in out.0.iter_mut().zip(other.0) {
            *o |= b;
        }
        out
    }
}

/// A register-like field `load`, `move` and `set_field` act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegField {
    /// `reg0`..`reg15` (32 bits).
    Reg(u8),
    /// `xreg0`..`xreg7` (64 bits).
    XReg(u8),
    /// `metadata` (64 bits, OpenFlow's pipeline metadata).
    Metadata,
}

impl RegField {
    /// Width in bits.
    pub fn bits(self) -> u8 {
        match self {
            RegField::Reg(_) => 32,
            RegField::XReg(_) | RegField::Metadata => 64,
        }
    }

    /// The `set_field`/match name (`reg0`, `xreg0`, `metadata`).
    pub fn name(self) -> String {
        match self {
            RegField::Reg(n) => format!("reg{n}"),
            RegField::XReg(n) => format!("xreg{n}"),
            RegField::Metadata => "metadata".into(),
        }
    }

    /// The name `ovs-ofctl` prints in `load`/`move` subfields
    /// (`mf_format_subfield`: the field's first NXM/OXM name).
    pub fn nxm_name(self) -> String {
        match self {
            RegField::Reg(n) => format!("NXM_NX_REG{n}"),
            RegField::XReg(n) => format!("OXM_OF_PKT_REG{n}"),
            RegField::Metadata => "OXM_OF_METADATA".into(),
        }
    }

    /// Parse a field name: `reg0`, `NXM_NX_REG0`, `xreg0`, `OXM_OF_PKT_REG0`,
    /// `metadata`, `OXM_OF_METADATA` (case-insensitive).
    pub fn parse(s: &str) -> Option<RegField> {
        let l = s.trim().to_ascii_lowercase();
        if l == "metadata" || l == "oxm_of_metadata" {
            return Some(RegField::Metadata);
        }
        let num = |rest: &str, max: usize| -> Option<u8> {
            if rest.is_empty() || rest.len() > 2 || !rest.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: usize = rest.parse().ok()?;
            (n < max).then_some(n as u8)
        };
        if let Some(r) = l
            .strip_prefix("nxm_nx_reg")
            .or_else(|| l.strip_prefix("reg"))
        {
            return num(r, N_REGS).map(RegField::Reg);
        }
        if let Some(r) = l
            .strip_prefix("oxm_of_pkt_reg")
            .or_else(|| l.strip_prefix("xreg"))
        {
            return num(r, N_XREGS).map(RegField::XReg);
        }
        None
    }

    /// The field's value in `(metadata, regs)`.
    pub fn get(self, meta: u64, regs: &Regs) -> u64 {
        match self {
            RegField::Reg(n) => u64::from(regs.0[usize::from(n)]),
            RegField::XReg(n) => {
                let i = usize::from(n) * 2;
                (u64::from(regs.0[i]) << 32) | u64::from(regs.0[i + 1])
            }
            RegField::Metadata => meta,
        }
    }

    /// `field = field & !mask | value & mask` in `(metadata, regs)`.
    pub fn set(self, meta: &mut u64, regs: &mut Regs, value: u64, mask: u64) {
        let new = (self.get(*meta, regs) & !mask) | (value & mask);
        match self {
            RegField::Reg(n) => regs.0[usize::from(n)] = new as u32,
            RegField::XReg(n) => {
                let i = usize::from(n) * 2;
                regs.0[i] = (new >> 32) as u32;
                regs.0[i + 1] = new as u32;
            }
            RegField::Metadata => *meta = new,
        }
    }
}

/// `FIELD[ofs..end]`: bits `ofs..ofs+n_bits` of a register-like field
/// (OVS's `mf_subfield`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subfield {
    /// The field.
    pub field: RegField,
    /// First bit (0 = least significant).
    pub ofs: u8,
    /// Number of bits (1..=the field's width).
    pub n_bits: u8,
}

impl Subfield {
    /// The whole field.
    pub fn whole(field: RegField) -> Subfield {
        Subfield {
            field,
            ofs: 0,
            n_bits: field.bits(),
        }
    }

    /// A subfield, checked against the field's width.
    pub fn new(field: RegField, ofs: u32, n_bits: u32) -> Result<Subfield, String> {
        if n_bits == 0 || ofs + n_bits > u32::from(field.bits()) {
            return Err(format!(
                "{}[{}..{}]: bits out of range (the field has {} bits)",
                field.nxm_name(),
                ofs,
                (ofs + n_bits).saturating_sub(1),
                field.bits()
            ));
        }
        Ok(Subfield {
            field,
            ofs: ofs as u8,
            n_bits: n_bits as u8,
        })
    }

    /// The mask of the subfield's bits within the field.
    pub fn mask(self) -> u64 {
        let ones = if self.n_bits >= 64 {
            u64::MAX
        } else {
            (1u64 << self.n_bits) - 1
        };
        ones << self.ofs
    }

    /// True when it covers the whole field.
    pub fn is_whole(self) -> bool {
        self.ofs == 0 && self.n_bits == self.field.bits()
    }

    /// The subfield's value (shifted down to bit 0).
    pub fn get(self, meta: u64, regs: &Regs) -> u64 {
        (self.field.get(meta, regs) & self.mask()) >> self.ofs
    }

    /// Store `v` (its low `n_bits`) in the subfield.
    pub fn set(self, meta: &mut u64, regs: &mut Regs, v: u64) {
        self.field.set(meta, regs, v << self.ofs, self.mask());
    }

    /// Parse `FIELD[]`, `FIELD[bit]` or `FIELD[start..end]` (OVS's
    /// `mf_parse_subfield`; `FIELD` alone is the whole field too).
    pub fn parse(s: &str) -> Result<Subfield, String> {
        let s = s.trim();
        let (name, bits) = match s.split_once('[') {
            Some((n, rest)) => {
                let b = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("`{s}`: missing `]`"))?;
                (n, Some(b.trim()))
            }
            None => (s, None),
        };
        let field = RegField::parse(name).ok_or_else(|| {
            format!("`{name}`: not a register field (reg0..reg15, xreg0..xreg7, metadata, or their NXM/OXM names)")
        })?;
        let bit = |x: &str| parse_uint(x.trim(), 63, "bit").map(|v| v as u32);
        match bits {
            None | Some("") => Ok(Subfield::whole(field)),
            Some(b) => match b.split_once("..") {
                Some((a, z)) => {
                    let (a, z) = (bit(a)?, bit(z)?);
                    if z < a {
                        return Err(format!(
                            "`{s}`: bit range must be start..end with start <= end"
                        ));
                    }
                    Subfield::new(field, a, z - a + 1)
                }
                None => Subfield::new(field, bit(b)?, 1),
            },
        }
    }
}

impl fmt::Display for Subfield {
    /// OVS's `mf_format_subfield`: `NAME[]`, `NAME[bit]`, `NAME[start..end]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.field.nxm_name())?;
        if self.is_whole() {
            write!(f, "[]")
        } else if self.n_bits == 1 {
            write!(f, "[{}]", self.ofs)
        } else {
            write!(f, "[{}..{}]", self.ofs, self.ofs + self.n_bits - 1)
        }
    }
}

/// `load:V->DST[..]` or `set_field:V->DST`: what [`crate::action::Action::SetReg`]
/// carries. The value is kept as two 32-bit halves so the action enum
/// keeps its size and alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegLoad {
    /// Destination bits.
    pub dst: Subfield,
    /// Written as `set_field` (printed so, sent as OFPAT_SET_FIELD) rather
    /// than `load` (NXAST_REG_LOAD); only whole-field loads may be.
    pub set_field: bool,
    value: [u32; 2],
}

impl RegLoad {
    /// A load of `value` (which must fit in `dst.n_bits`) into `dst`.
    pub fn new(dst: Subfield, value: u64, set_field: bool) -> Result<RegLoad, String> {
        if dst.n_bits < 64 && value >> dst.n_bits != 0 {
            return Err(format!(
                "value {value:#x} does not fit in {dst} ({} bits)",
                dst.n_bits
            ));
        }
        Ok(RegLoad {
            dst,
            set_field: set_field && dst.is_whole(),
            value: [(value >> 32) as u32, value as u32],
        })
    }

    /// The value (in the low `dst.n_bits` bits).
    pub fn value(&self) -> u64 {
        (u64::from(self.value[0]) << 32) | u64::from(self.value[1])
    }
}

/// OVS's `ds_put_hex`/`%#x`: `0` for zero, else `0x…`.
pub fn hex(v: u64) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

impl fmt::Display for RegLoad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.set_field {
            write!(
                f,
                "set_field:{}->{}",
                hex(self.value()),
                self.dst.field.name()
            )
        } else {
            write!(f, "load:{}->{}", hex(self.value()), self.dst)
        }
    }
}

/// Parse `load:VALUE->DST` (the text after `load:`).
pub fn parse_load(arg: &str) -> Result<RegLoad, String> {
    let (v, dst) = arg
        .split_once("->")
        .ok_or_else(|| format!("`load:{arg}`: want `load:VALUE->DST[start..end]`"))?;
    let dst = Subfield::parse(dst)?;
    RegLoad::new(dst, parse_uint(v.trim(), u64::MAX, "load value")?, false)
}

/// `set_field:V[/M]->FIELD` for a register-like field: one whole-field
/// `set_field`, or, with a partial mask, one `load` per run of mask bits
/// (as `ovs-ofctl` sends a masked set_field in OpenFlow 1.3, and prints it
/// back). `None` when `field` is not a register-like field.
pub fn parse_set_field(v: &str, field: &str) -> Option<Result<Vec<RegLoad>, String>> {
    let f = RegField::parse(field)?;
    Some((|| {
        let max = if f.bits() == 64 {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        let (v, m) = match v.split_once('/') {
            Some((v, m)) => (
                parse_uint(v.trim(), max, "set_field value")?,
                parse_uint(m.trim(), max, "set_field mask")?,
            ),
            None => (parse_uint(v.trim(), max, "set_field value")?, max),
        };
        if m == max {
            return Ok(vec![RegLoad::new(Subfield::whole(f), v, true)?]);
        }
        let mut out = Vec::new();
        let mut bit = 0u32;
        while bit < u32::from(f.bits()) {
            if m >> bit & 1 == 0 {
                bit += 1;
                continue;
            }
            let start = bit;
            while bit < u32::from(f.bits()) && m >> bit & 1 == 1 {
                bit += 1;
            }
            let sf = Subfield::new(f, start, bit - start)?;
            out.push(RegLoad::new(sf, (v & sf.mask()) >> start, false)?);
        }
        if out.is_empty() {
            return Err("set_field with mask 0 does nothing".into());
        }
        Ok(out)
    })())
}

/// `move:SRC->DST`: copy `src` bits into `dst` (same width).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RegMove {
    /// Source bits.
    pub src: Subfield,
    /// Destination bits.
    pub dst: Subfield,
}

impl RegMove {
    /// Parse the text after `move:` (`SRC[..]->DST[..]`).
    pub fn parse(arg: &str) -> Result<RegMove, String> {
        let (s, d) = arg
            .split_once("->")
            .ok_or_else(|| format!("`move:{arg}`: want `move:SRC[a..b]->DST[c..d]`"))?;
        let (src, dst) = (Subfield::parse(s)?, Subfield::parse(d)?);
        if src.n_bits != dst.n_bits {
            return Err(format!(
                "move:{src}->{dst}: source and destination widths differ ({} and {} bits)",
                src.n_bits, dst.n_bits
            ));
        }
        Ok(RegMove { src, dst })
    }

    /// Run it on `(metadata, regs)`.
    pub fn apply(&self, meta: &mut u64, regs: &mut Regs) {
        let v = self.src.get(*meta, regs);
        self.dst.set(meta, regs, v);
    }
}

impl fmt::Display for RegMove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "move:{}->{}", self.src, self.dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_subfields() {
        assert_eq!(RegField::parse("reg0"), Some(RegField::Reg(0)));
        assert_eq!(RegField::parse("NXM_NX_REG15"), Some(RegField::Reg(15)));
        assert_eq!(RegField::parse("reg16"), None);
        assert_eq!(RegField::parse("xreg7"), Some(RegField::XReg(7)));
        assert_eq!(RegField::parse("OXM_OF_PKT_REG3"), Some(RegField::XReg(3)));
        assert_eq!(RegField::parse("xreg8"), None);
        assert_eq!(RegField::parse("OXM_OF_METADATA"), Some(RegField::Metadata));
        for (s, out) in [
            ("NXM_NX_REG0[0..15]", "NXM_NX_REG0[0..15]"),
            ("reg1[16..31]", "NXM_NX_REG1[16..31]"),
            ("NXM_NX_REG2[]", "NXM_NX_REG2[]"),
            ("NXM_NX_REG2[0..31]", "NXM_NX_REG2[]"),
            ("NXM_NX_REG3[5]", "NXM_NX_REG3[5]"),
            ("xreg1[0..63]", "OXM_OF_PKT_REG1[]"),
            ("metadata[32..47]", "OXM_OF_METADATA[32..47]"),
        ] {
            assert_eq!(Subfield::parse(s).unwrap().to_string(), out, "{s}");
        }
        for bad in [
            "NXM_NX_REG0[0..32]",
            "NXM_NX_REG0[5..4]",
            "NXM_NX_REG0[0..15",
            "foo[]",
            "reg0[64]",
        ] {
            assert!(Subfield::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn get_set_xreg_overlay() {
        let (mut meta, mut regs) = (0u64, Regs::ZERO);
        RegField::XReg(1).set(&mut meta, &mut regs, 0x1122_3344_5566_7788, u64::MAX);
        assert_eq!(regs.0[2], 0x1122_3344);
        assert_eq!(regs.0[3], 0x5566_7788);
        let sf = Subfield::parse("NXM_NX_REG3[8..15]").unwrap();
        assert_eq!(sf.get(meta, &regs), 0x77);
        sf.set(&mut meta, &mut regs, 0xab);
        assert_eq!(regs.0[3], 0x5566_ab88);
        let mv = RegMove::parse("NXM_NX_REG3[0..15]->NXM_NX_REG0[16..31]").unwrap();
        mv.apply(&mut meta, &mut regs);
        assert_eq!(regs.0[0], 0xab88_0000);
        let mv = RegMove::parse("OXM_OF_PKT_REG1[]->OXM_OF_METADATA[]").unwrap();
        mv.apply(&mut meta, &mut regs);
        assert_eq!(meta, 0x1122_3344_5566_ab88);
        assert!(RegMove::parse("NXM_NX_REG0[0..15]->NXM_NX_REG1[0..7]").is_err());
    }

    #[test]
    fn load_and_set_field_text() {
        let l = parse_load("0x7->NXM_NX_REG0[0..15]").unwrap();
        assert_eq!(l.to_string(), "load:0x7->NXM_NX_REG0[0..15]");
        assert!(parse_load("0x10000->NXM_NX_REG0[0..15]").is_err());
        assert_eq!(
            parse_load("0->reg1").unwrap().to_string(),
            "load:0->NXM_NX_REG1[]"
        );
        let s = parse_set_field("5", "reg0").unwrap().unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].to_string(), "set_field:0x5->reg0");
        let s = parse_set_field("0x5/0xf0f", "reg2").unwrap().unwrap();
        let t: Vec<String> = s.iter().map(ToString::to_string).collect();
        assert_eq!(
            t,
            ["load:0x5->NXM_NX_REG2[0..3]", "load:0->NXM_NX_REG2[8..11]"]
        );
        assert!(parse_set_field("0x1ffffffff", "reg0").unwrap().is_err());
        assert!(parse_set_field("1", "ip_src").is_none());
    }
}

#[cfg(test)]
mod size_test {
    #[test]
    fn action_keeps_its_size() {
        // 16-byte IPv6 addresses + the tag, 4-byte aligned: register
        // actions must not grow what every compiled action list holds.
        assert_eq!(core::mem::size_of::<crate::action::Action>(), 20);
        assert_eq!(core::mem::align_of::<crate::action::Action>(), 4);
    }
}
