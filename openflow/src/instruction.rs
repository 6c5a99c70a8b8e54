//! Instructions (spec section 7.2.4): what a flow entry does with a matching packet.
//!
//! ```text
//! +---------------+---------------+---------------------------------+
//! | type          | len (incl hdr)| type-specific body              |
//! +---------------+---------------+---------------------------------+
//! ```
//!
//! Every instruction defined by 1.3 is a multiple of 8 bytes long; a length that is
//! not, or that runs past the list, is OFPBIC_BAD_LEN. Unknown types parse as
//! [`Instruction::Unknown`] (answer OFPBIC_UNKNOWN_INST).

use crate::action::Action;
use crate::bytes::{round8, u32_at, u64_at, u8_at, zeros};
use crate::field::instruction as field;
use crate::tlv;
use crate::{Error, Result};

/// Instruction type codes (ofp_instruction_type).
pub mod kind {
    /// OFPIT_GOTO_TABLE: continue in a later table.
    pub const GOTO_TABLE: u16 = 1;
    /// OFPIT_WRITE_METADATA: write the metadata field under a mask.
    pub const WRITE_METADATA: u16 = 2;
    /// OFPIT_WRITE_ACTIONS: merge actions into the action set.
    pub const WRITE_ACTIONS: u16 = 3;
    /// OFPIT_APPLY_ACTIONS: run actions now.
    pub const APPLY_ACTIONS: u16 = 4;
    /// OFPIT_CLEAR_ACTIONS: empty the action set.
    pub const CLEAR_ACTIONS: u16 = 5;
    /// OFPIT_METER: send the packet through a meter.
    pub const METER: u16 = 6;
    /// OFPIT_EXPERIMENTER: an experimenter instruction.
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Instruction {
    /// OFPIT_GOTO_TABLE.
    GotoTable(u8),
    /// OFPIT_WRITE_METADATA.
    WriteMetadata {
        /// Metadata value.
        metadata: u64,
        /// Which bits to write.
        mask: u64,
    },
    /// OFPIT_WRITE_ACTIONS: merge into the action set.
    WriteActions(Vec<Action>),
    /// OFPIT_APPLY_ACTIONS: apply immediately.
    ApplyActions(Vec<Action>),
    /// OFPIT_CLEAR_ACTIONS.
    ClearActions,
    /// OFPIT_METER.
    Meter(u32),
    /// OFPIT_EXPERIMENTER: id and the bytes after it.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Bytes after the id.
        data: Vec<u8>,
    },
    /// An unknown instruction type with the bytes after its 4-byte header.
    Unknown {
        /// The type.
        instruction_type: u16,
        /// Bytes after type and len.
        data: Vec<u8>,
    },
}

impl Instruction {
    /// Parses the instruction at the front of `buf`; returns it and its length.
    pub fn parse(buf: &[u8]) -> Result<(Instruction, usize)> {
        let (ty, i) = tlv::parse(buf, Error::BadInstruction)?;
        let len = i.len();
        let fixed = |n: usize| {
            if len == n {
                Ok(())
            } else {
                Err(Error::BadInstruction(
                    "wrong length for the instruction type",
                ))
            }
        };
        let ins = match ty {
            kind::GOTO_TABLE => {
                fixed(field::LEN)?;
                Instruction::GotoTable(u8_at(i, field::GOTO_TABLE_ID))
            }
            kind::WRITE_METADATA => {
                fixed(field::WRITE_METADATA_LEN)?;
                Instruction::WriteMetadata {
                    metadata: u64_at(i, field::METADATA),
                    mask: u64_at(i, field::METADATA_MASK),
                }
            }
            kind::WRITE_ACTIONS => {
                Instruction::WriteActions(Action::parse_list(&i[field::ACTIONS..])?)
            }
            kind::APPLY_ACTIONS => {
                Instruction::ApplyActions(Action::parse_list(&i[field::ACTIONS..])?)
            }
            kind::CLEAR_ACTIONS => {
                fixed(field::LEN)?;
                Instruction::ClearActions
            }
            kind::METER => {
                fixed(field::LEN)?;
                Instruction::Meter(u32_at(i, field::METER_ID))
            }
            kind::EXPERIMENTER => Instruction::Experimenter {
                experimenter: u32_at(i, field::EXPERIMENTER),
                data: i[field::EXPERIMENTER_DATA..].to_vec(),
            },
            t => Instruction::Unknown {
                instruction_type: t,
                data: i[4..].to_vec(),
            },
        };
        Ok((ins, len))
    }

    /// Parses a whole instruction list.
    pub fn parse_list(buf: &[u8]) -> Result<Vec<Instruction>> {
        tlv::parse_list(buf, Instruction::parse)
    }

    /// The instruction type code.
    pub fn instruction_type(&self) -> u16 {
        match self {
            Instruction::GotoTable(_) => kind::GOTO_TABLE,
            Instruction::WriteMetadata { .. } => kind::WRITE_METADATA,
            Instruction::WriteActions(_) => kind::WRITE_ACTIONS,
            Instruction::ApplyActions(_) => kind::APPLY_ACTIONS,
            Instruction::ClearActions => kind::CLEAR_ACTIONS,
            Instruction::Meter(_) => kind::METER,
            Instruction::Experimenter { .. } => kind::EXPERIMENTER,
            Instruction::Unknown {
                instruction_type, ..
            } => *instruction_type,
        }
    }

    /// Bytes this instruction occupies.
    pub fn buffer_len(&self) -> usize {
        match self {
            Instruction::WriteMetadata { .. } => field::WRITE_METADATA_LEN,
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                field::ACTIONS + Action::list_len(a)
            }
            Instruction::Experimenter { data, .. } => round8(field::EXPERIMENTER_DATA + data.len()),
            Instruction::Unknown { data, .. } => round8(4 + data.len()),
            _ => field::LEN,
        }
    }

    /// Appends the instruction.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        tlv::emit(out, self.instruction_type(), self.buffer_len(), |out| {
            match self {
                Instruction::GotoTable(t) => out.push(*t),
                Instruction::WriteMetadata { metadata, mask } => {
                    zeros(out, 4);
                    out.extend_from_slice(&metadata.to_be_bytes());
                    out.extend_from_slice(&mask.to_be_bytes());
                }
                Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                    zeros(out, 4);
                    Action::emit_list(a, out)?;
                }
                Instruction::Meter(m) => out.extend_from_slice(&m.to_be_bytes()),
                Instruction::Experimenter { experimenter, data } => {
                    out.extend_from_slice(&experimenter.to_be_bytes());
                    out.extend_from_slice(data);
                }
                Instruction::Unknown { data, .. } => out.extend_from_slice(data),
                Instruction::ClearActions => {}
            }
            Ok(())
        })
    }

    /// Bytes a list occupies.
    pub fn list_len(list: &[Instruction]) -> usize {
        list.iter().map(Instruction::buffer_len).sum()
    }

    /// Appends a list.
    pub fn emit_list(list: &[Instruction], out: &mut Vec<u8>) -> Result<()> {
        list.iter().try_for_each(|i| i.emit(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construct_write_metadata() {
        let i = Instruction::WriteMetadata {
            metadata: 0x12,
            mask: 0xff,
        };
        let mut out = Vec::new();
        i.emit(&mut out).unwrap();
        assert_eq!(out.len(), 24);
        assert_eq!(&out[..4], &[0, 2, 0, 24]);
        assert_eq!(Instruction::parse(&out).unwrap(), (i, 24));
    }

    #[test]
    fn apply_actions_round_trip() {
        let i = Instruction::ApplyActions(vec![Action::PopVlan, Action::output(2)]);
        let mut out = Vec::new();
        i.emit(&mut out).unwrap();
        assert_eq!(out.len(), i.buffer_len());
        assert_eq!(Instruction::parse_list(&out).unwrap(), vec![i]);
    }

    #[test]
    fn truncated_list_is_an_error() {
        assert!(Instruction::parse_list(&[0, 1, 0, 8, 1, 0, 0]).is_err());
        assert!(Instruction::parse_list(&[0, 1, 0, 16, 1, 0, 0, 0]).is_err());
    }
}
