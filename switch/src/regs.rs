//! OVS's registers (`lib/meta-flow.xml`, "Register Fields"): sixteen 32-bit
//! scratch fields `reg0`..`reg15` (NXM_NX_REG0..15, class 0x0001), their
//! 64-bit overlays `xreg0`..`xreg7` (OXM_OF_PKT_REG0..7, class 0x8001:
//! `xregN` = `reg(2N)` in the high 32 bits, `reg(2N+1)` in the low), and
//! `metadata` as a register-like target of `load`/`move`/`set_field`.
//!
//! `xxreg0`..`xxreg3` (NXM_NX_XXREG0..3) are the 128-bit overlays (four
//! registers each). `load` and `move` also name packet fields
//! ([`PktField`], `NXM_OF_ETH_SRC[]`): the translation reads them from the
//! flow key and turns a write into the equivalent constant rewrite.
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
pub use crate::ct::operand::CtField;
pub use crate::pkt_field::PktField;

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

/// Number of 128-bit `xxreg` overlays (OVS's `FLOW_N_XXREGS`).
pub const N_XXREGS: usize = N_REGS / 4;

/// A field `load`, `move` and `set_field` act on: a register-like field
/// (pipeline state) or a packet field ([`PktField`], in the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegField {
    /// `reg0`..`reg15` (32 bits).
    Reg(u8),
    /// `xreg0`..`xreg7` (64 bits).
    XReg(u8),
    /// `xxreg0`..`xxreg3` (128 bits: `xxregN` = `reg(4N)` in the high 32
    /// bits .. `reg(4N+3)` in the low, `lib/meta-flow.xml`).
    XXReg(u8),
    /// `metadata` (64 bits, OpenFlow's pipeline metadata).
    Metadata,
    /// A packet header field (NXM_OF_ETH_SRC, NXM_OF_ARP_OP, ...).
    Pkt(PktField),
    /// A conntrack field (NXM_NX_CT_MARK, ...): read only, a `move`/`push`
    /// source ([`crate::ct::operand`]).
    Ct(CtField),
}

/// Ones in the low `n` bits (`n` ≤ 128).
pub fn ones(n: u32) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

impl RegField {
    /// Width in bits.
    pub fn bits(self) -> u8 {
        match self {
            RegField::Reg(_) => 32,
            RegField::XReg(_) | RegField::Metadata => 64,
            RegField::XXReg(_) => 128,
            RegField::Pkt(p) => p.bits(),
            RegField::Ct(c) => c.bits(),
        }
    }

    /// True for the pipeline-state fields (registers, `metadata`).
    pub fn is_reg(self) -> bool {
        !matches!(self, RegField::Pkt(_) | RegField::Ct(_))
    }

    /// True for the fields held in the frame's bytes (every packet field
    /// but `in_port`, which a write changes for the pipeline only).
    pub fn in_frame(self) -> bool {
        matches!(self, RegField::Pkt(p) if p != PktField::InPort)
    }

    /// The `set_field`/match name (`reg0`, `xreg0`, `xxreg0`, `metadata`,
    /// `eth_src`).
    pub fn name(self) -> String {
        match self {
            RegField::Reg(n) => format!("reg{n}"),
            RegField::XReg(n) => format!("xreg{n}"),
            RegField::XXReg(n) => format!("xxreg{n}"),
            RegField::Metadata => "metadata".into(),
            RegField::Pkt(p) => p.nxm_name().to_ascii_lowercase(),
            RegField::Ct(c) => c.nxm_name().to_ascii_lowercase(),
        }
    }

    /// The name `ovs-ofctl` prints in `load`/`move` subfields
    /// (`mf_format_subfield`: the field's first NXM/OXM name).
    pub fn nxm_name(self) -> String {
        match self {
            RegField::Reg(n) => format!("NXM_NX_REG{n}"),
            RegField::XReg(n) => format!("OXM_OF_PKT_REG{n}"),
            RegField::XXReg(n) => format!("NXM_NX_XXREG{n}"),
            RegField::Metadata => "OXM_OF_METADATA".into(),
            RegField::Pkt(p) => p.nxm_name().into(),
            RegField::Ct(c) => c.nxm_name().into(),
        }
    }

    /// Parse a register-like field name: `reg0`, `NXM_NX_REG0`, `xreg0`,
    /// `OXM_OF_PKT_REG0`, `xxreg0`, `NXM_NX_XXREG0`, `metadata`,
    /// `OXM_OF_METADATA` (case-insensitive).
    pub fn parse_reg(s: &str) -> Option<RegField> {
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
            .strip_prefix("nxm_nx_xxreg")
            .or_else(|| l.strip_prefix("xxreg"))
        {
            return num(r, N_XXREGS).map(RegField::XXReg);
        }
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

    /// [`RegField::parse_reg`], a packet field ([`PktField::parse`]) or a
    /// conntrack field ([`CtField::parse`]).
    pub fn parse(s: &str) -> Option<RegField> {
        RegField::parse_reg(s)
            .or_else(|| PktField::parse(s).map(RegField::Pkt))
            .or_else(|| CtField::parse(s).map(RegField::Ct))
    }

    /// The field's value in `(metadata, regs)`; 0 for a packet or ct field
    /// (the pipeline translation reads those from the flow and ct keys).
    pub fn get(self, meta: u64, regs: &Regs) -> u128 {
        let r = |i: usize| u128::from(regs.0[i]);
        match self {
            RegField::Reg(n) => r(usize::from(n)),
            RegField::XReg(n) => {
                let i = usize::from(n) * 2;
                r(i) << 32 | r(i + 1)
            }
            RegField::XXReg(n) => {
                let i = usize::from(n) * 4;
                r(i) << 96 | r(i + 1) << 64 | r(i + 2) << 32 | r(i + 3)
            }
            RegField::Metadata => u128::from(meta),
            RegField::Pkt(_) | RegField::Ct(_) => 0,
        }
    }

    /// `field = field & !mask | value & mask` in `(metadata, regs)`; a
    /// packet field is not stored here (see [`RegField::get`]).
    pub fn set(self, meta: &mut u64, regs: &mut Regs, value: u128, mask: u128) {
        let new = (self.get(*meta, regs) & !mask) | (value & mask);
        match self {
            RegField::Reg(n) => regs.0[usize::from(n)] = new as u32,
            RegField::XReg(n) => {
                let i = usize::from(n) * 2;
                regs.0[i] = (new >> 32) as u32;
                regs.0[i + 1] = new as u32;
            }
            RegField::XXReg(n) => {
                let i = usize::from(n) * 4;
                for j in 0..4 {
                    regs.0[i + j] = (new >> (96 - 32 * j)) as u32;
                }
            }
            RegField::Metadata => *meta = new as u64,
            RegField::Pkt(_) | RegField::Ct(_) => {}
        }
    }
}

/// `FIELD[ofs..end]`: bits `ofs..ofs+n_bits` of a field (OVS's
/// `mf_subfield`).
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

    /// A subfield, checked against the field's width (OVS's `mf_check__`).
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
    pub fn mask(self) -> u128 {
        ones(u32::from(self.n_bits)) << self.ofs
    }

    /// True when it covers the whole field.
    pub fn is_whole(self) -> bool {
        self.ofs == 0 && self.n_bits == self.field.bits()
    }

    /// The subfield's value (shifted down to bit 0) in a register-like
    /// field (at most 64 bits: a `ct` zone source).
    pub fn get(self, meta: u64, regs: &Regs) -> u64 {
        ((self.field.get(meta, regs) & self.mask()) >> self.ofs) as u64
    }

    /// Store `v` (its low `n_bits`) in a register-like subfield.
    pub fn set(self, meta: &mut u64, regs: &mut Regs, v: u128) {
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
            format!("{name}: unknown field (registers reg0..15, xreg0..7, xxreg0..3, metadata, a packet field such as NXM_OF_ETH_SRC, or NXM_NX_CT_STATE/ZONE/MARK/LABEL as a source)")
        })?;
        let bit = |x: &str| parse_uint(x.trim(), 127, "bit").map(|v| v as u32);
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
    /// A load of `value` (which must fit in `dst.n_bits`) into `dst`; a
    /// `load` (not `set_field`) covers at most 64 bits, as NXAST_REG_LOAD.
    pub fn new(dst: Subfield, value: u64, set_field: bool) -> Result<RegLoad, String> {
        if dst.n_bits < 64 && value >> dst.n_bits != 0 {
            return Err(format!(
                "value {value:#x} does not fit in {dst} ({} bits)",
                dst.n_bits
            ));
        }
        if !set_field && dst.n_bits > 64 {
            return Err(format!(
                "load into {dst}: one load covers at most 64 bits (write one load per 64 bits, as ovs-ofctl prints it)"
            ));
        }
        check_writable(dst)?;
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

/// `set_field:V->xxregN`: a whole 128-bit register and a value of up to
/// 128 bits (what [`crate::action::Action::SetXxReg`] carries: the value
/// as bytes, so the action enum keeps its size and alignment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XxRegSet {
    n: u8,
    value: [u8; 16],
}

impl XxRegSet {
    /// `xxreg{n}` (`n` < [`N_XXREGS`]) set to `value`.
    pub fn new(n: u8, value: u128) -> Result<XxRegSet, String> {
        if usize::from(n) >= N_XXREGS {
            return Err(format!("xxreg{n}: there are {N_XXREGS} xxregs"));
        }
        Ok(XxRegSet {
            n,
            value: value.to_be_bytes(),
        })
    }

    /// The register's number.
    pub fn reg(&self) -> u8 {
        self.n
    }

    /// The value.
    pub fn value(&self) -> u128 {
        u128::from_be_bytes(self.value)
    }

    /// The destination: the whole register.
    pub fn dst(&self) -> Subfield {
        Subfield::whole(RegField::XXReg(self.n))
    }
}

impl fmt::Display for XxRegSet {
    /// As `ovs-ofctl` prints it: `set_field:0x…->xxregN` (`ds_put_hex`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value() {
            0 => write!(f, "set_field:0->xxreg{}", self.n),
            v => write!(f, "set_field:{v:#x}->xxreg{}", self.n),
        }
    }
}

/// OVS's `mf_check_dst`: the destination must be writable ("destination
/// field %s is not writable", OFPBAC_BAD_SET_ARGUMENT).
fn check_writable(dst: Subfield) -> Result<(), String> {
    match dst.field {
        RegField::Pkt(p) if !p.writable() => Err(format!(
            "destination field {} is not writable (OFPBAC_BAD_SET_ARGUMENT)",
            p.nxm_name()
        )),
        RegField::Pkt(PktField::TunId) if u32::from(dst.ofs) + u32::from(dst.n_bits) > 24 => {
            Err(format!(
                "{dst}: tunnel keys here are 24-bit VNIs (VXLAN, Geneve): write NXM_NX_TUN_ID[0..23] (OFPBAC_BAD_ARGUMENT)"
            ))
        }
        RegField::Ct(c) => Err(format!(
            "destination field {} is not writable outside ct(commit,exec(...)) (OFPBAC_BAD_SET_ARGUMENT)",
            c.nxm_name()
        )),
        _ => Ok(()),
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
            match self.dst.field {
                // `mf_format` of an OpenFlow 1.0 port: decimal.
                RegField::Pkt(PktField::InPort) => {
                    write!(f, "set_field:{}->in_port", self.value())
                }
                RegField::Pkt(p) => write!(f, "set_field:{}->{}", hex(self.value()), p.mf_name()),
                r => write!(f, "set_field:{}->{}", hex(self.value()), r.name()),
            }
        } else {
            write!(f, "load:{}->{}", hex(self.value()), self.dst)
        }
    }
}

/// An unsigned integer of up to 128 bits, decimal or `0x` hex.
pub fn parse_u128(s: &str, what: &str) -> Result<u128, String> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u128::from_str_radix(h, 16),
        None => s.parse::<u128>(),
    }
    .map_err(|_| format!("bad {what} `{s}` (want a number)"))
}

/// Parse `load:VALUE->DST` (the text after `load:`).
pub fn parse_load(arg: &str) -> Result<RegLoad, String> {
    let (v, dst) = arg
        .split_once("->")
        .ok_or_else(|| format!("`load:{arg}`: want `load:VALUE->DST[start..end]`"))?;
    let dst = Subfield::parse(dst)?;
    RegLoad::new(dst, parse_uint(v.trim(), u64::MAX, "load value")?, false)
}

/// Parse `load:VALUE->DST` into the loads OVS sends and prints for it:
/// one per 64 bits of `DST` from its low end (`next_load_segment`), so
/// `load:V->NXM_NX_XXREG0[]` is two loads.
pub fn parse_load_segments(arg: &str) -> Result<Vec<RegLoad>, String> {
    let (v, d) = arg
        .split_once("->")
        .ok_or_else(|| format!("`load:{arg}`: want `load:VALUE->DST[start..end]`"))?;
    let dst = Subfield::parse(d)?;
    if dst.n_bits <= 64 {
        return Ok(vec![parse_load(arg)?]);
    }
    let v = parse_u128(v, "load value")?;
    if dst.n_bits < 128 && v >> dst.n_bits != 0 {
        return Err(format!(
            "value {v:#x} does not fit in {dst} ({} bits)",
            dst.n_bits
        ));
    }
    let mut out = Vec::new();
    let mut done = 0u32;
    while done < u32::from(dst.n_bits) {
        let n = (u32::from(dst.n_bits) - done).min(64);
        let sf = Subfield::new(dst.field, u32::from(dst.ofs) + done, n)?;
        out.push(RegLoad::new(sf, ((v >> done) & ones(n)) as u64, false)?);
        done += n;
    }
    Ok(out)
}

/// `set_field:V[/M]->FIELD` for a register-like field: one whole-field
/// `set_field`, or, with a partial mask, one `load` per run of mask bits
/// (as `ovs-ofctl` sends a masked set_field in OpenFlow 1.3, and prints it
/// back). `None` when `field` is not a register-like field.
pub fn parse_set_field(v: &str, field: &str) -> Option<Result<Vec<RegLoad>, String>> {
    let f = RegField::parse_reg(field)?;
    Some((|| {
        let bits = u32::from(f.bits());
        let max = ones(bits);
        let num = |x: &str, what: &str| -> Result<u128, String> {
            let n = parse_u128(x, what)?;
            if n > max {
                return Err(format!(
                    "{what} {n:#x} out of range (the field has {bits} bits)"
                ));
            }
            Ok(n)
        };
        let (v, m) = match v.split_once('/') {
            Some((v, m)) => (num(v, "set_field value")?, num(m, "set_field mask")?),
            None => (num(v, "set_field value")?, max),
        };
        if m == max {
            let v = u64::try_from(v).map_err(|_| {
                format!("set_field value {v:#x}: values above 64 bits are not supported")
            })?;
            return Ok(vec![RegLoad::new(Subfield::whole(f), v, true)?]);
        }
        let mut out = Vec::new();
        let mut bit = 0u32;
        while bit < bits {
            if m >> bit & 1 == 0 {
                bit += 1;
                continue;
            }
            let start = bit;
            while bit < bits && m >> bit & 1 == 1 && bit - start < 64 {
                bit += 1;
            }
            let sf = Subfield::new(f, start, bit - start)?;
            out.push(RegLoad::new(sf, ((v & sf.mask()) >> start) as u64, false)?);
        }
        if out.is_empty() {
            return Err("set_field with mask 0 does nothing".into());
        }
        Ok(out)
    })())
}

/// Parse the text after `push:` or `pop:` (`FIELD[a..b]`, OVS's
/// `nxm_parse_stack_action`); a `pop` (`dst`) must name a writable field.
pub fn parse_stack(arg: &str, dst: bool) -> Result<Subfield, String> {
    let sf = Subfield::parse(arg)?;
    if dst {
        check_writable(sf)?;
    }
    Ok(sf)
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
        RegMove::new(Subfield::parse(s)?, Subfield::parse(d)?)
    }

    /// A move, checked as OVS's `nxm_reg_move_check` (same widths, a
    /// writable destination).
    pub fn new(src: Subfield, dst: Subfield) -> Result<RegMove, String> {
        if src.n_bits != dst.n_bits {
            return Err(format!(
                "move:{src}->{dst}: source and destination widths differ ({} and {} bits)",
                src.n_bits, dst.n_bits
            ));
        }
        check_writable(dst)?;
        Ok(RegMove { src, dst })
    }

    /// Run it on `(metadata, regs)` (register-like fields only).
    pub fn apply(&self, meta: &mut u64, regs: &mut Regs) {
        let v = (self.src.field.get(*meta, regs) & self.src.mask()) >> self.src.ofs;
        self.dst.set(meta, regs, v);
    }
}

/// Every field an action list reads or writes, checked against the
/// rule's match (OVS's `mf_check_src`/`mf_check_dst`: "lacks correct
/// prerequisites", OFPBAC_MATCH_INCONSISTENT).
pub fn check_prereqs(m: &crate::rule::Match, acts: &[crate::action::Action]) -> Result<(), String> {
    use crate::action::Action;
    let check = |sf: Subfield, what: &str| match sf.field {
        RegField::Pkt(p) if !p.prereq().ok(m) => Err(format!(
            "{what} field {} lacks correct prerequisites (OFPBAC_MATCH_INCONSISTENT)",
            p.nxm_name()
        )),
        _ => Ok(()),
    };
    for a in acts {
        match *a {
            Action::SetReg(l) => check(l.dst, "destination")?,
            Action::Move(mv) => {
                check(mv.src, "source")?;
                check(mv.dst, "destination")?;
            }
            Action::StackPush(sf) => check(sf, "source")?,
            Action::StackPop(sf) => check(sf, "destination")?,
            _ => {
                if let Some(p) = a.pkt_field_written() {
                    if !p.prereq().ok(m) {
                        return Err(format!(
                            "set_field {} lacks correct prerequisites (OFPBAC_MATCH_INCONSISTENT)",
                            p.nxm_name()
                        ));
                    }
                }
            }
        }
    }
    Ok(())
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
        RegField::XReg(1).set(
            &mut meta,
            &mut regs,
            0x1122_3344_5566_7788,
            u128::from(u64::MAX),
        );
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
        // A whole xxreg takes 128 bits (printed as ovs-ofctl does).
        let v = 0x1122_3344_5566_7788_99aa_bbcc_0a00_0063u128;
        let x = XxRegSet::new(1, v).unwrap();
        assert_eq!(
            x.to_string(),
            "set_field:0x112233445566778899aabbcc0a000063->xxreg1"
        );
        assert_eq!(x.dst().to_string(), "NXM_NX_XXREG1[]");
        let (mut meta, mut regs) = (0, Regs::ZERO);
        x.dst().set(&mut meta, &mut regs, x.value());
        assert_eq!(
            regs.0[4..8],
            [0x1122_3344, 0x5566_7788, 0x99aa_bbcc, 0x0a00_0063]
        );
        assert_eq!(
            XxRegSet::new(0, 0).unwrap().to_string(),
            "set_field:0->xxreg0"
        );
        assert!(XxRegSet::new(4, 0).is_err());
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
