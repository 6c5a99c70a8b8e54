//! OFPT_GROUP_MOD (spec section 7.3.4.2) and buckets.
//!
//! ```text
//! ofp_header | command (2) | type | pad | group_id (4) | buckets ...
//! bucket:      len (2) | weight (2) | watch_port (4) | watch_group (4) | pad (4)
//!            | actions (len - 16 bytes)
//! ```

use crate::action::Action;
use crate::bytes::{u16_at, u32_at, u8_at, zeros};
use crate::error::check_len;
use crate::field::{bucket as bfield, group_mod as field};
use crate::{Error, Result};

/// Reserved group numbers (ofp_group).
pub mod group_id {
    /// Last usable group number.
    pub const MAX: u32 = 0xffff_ff00;
    /// All groups (group delete, stats requests).
    pub const ALL: u32 = 0xffff_fffc;
    /// Wildcard group.
    pub const ANY: u32 = 0xffff_ffff;
}

/// OFPGC_* commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupCommand {
    /// OFPGC_ADD.
    Add,
    /// OFPGC_MODIFY.
    Modify,
    /// OFPGC_DELETE.
    Delete,
    /// Anything else (answer OFPGMFC_BAD_COMMAND).
    Other(u16),
}

impl GroupCommand {
    /// Decodes the command.
    pub fn from_u16(v: u16) -> GroupCommand {
        match v {
            0 => GroupCommand::Add,
            1 => GroupCommand::Modify,
            2 => GroupCommand::Delete,
            v => GroupCommand::Other(v),
        }
    }

    /// The command code.
    pub fn to_u16(self) -> u16 {
        match self {
            GroupCommand::Add => 0,
            GroupCommand::Modify => 1,
            GroupCommand::Delete => 2,
            GroupCommand::Other(v) => v,
        }
    }
}

/// OFPGT_* group types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// OFPGT_ALL: every bucket (multicast/broadcast).
    All,
    /// OFPGT_SELECT: one bucket (weighted).
    Select,
    /// OFPGT_INDIRECT: the single bucket.
    Indirect,
    /// OFPGT_FF: the first live bucket.
    FastFailover,
    /// Anything else (answer OFPGMFC_BAD_TYPE).
    Other(u8),
}

impl GroupType {
    /// Decodes the type.
    pub fn from_u8(v: u8) -> GroupType {
        match v {
            0 => GroupType::All,
            1 => GroupType::Select,
            2 => GroupType::Indirect,
            3 => GroupType::FastFailover,
            v => GroupType::Other(v),
        }
    }

    /// The type code.
    pub fn to_u8(self) -> u8 {
        match self {
            GroupType::All => 0,
            GroupType::Select => 1,
            GroupType::Indirect => 2,
            GroupType::FastFailover => 3,
            GroupType::Other(v) => v,
        }
    }
}

/// One bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Relative weight (select groups).
    pub weight: u16,
    /// Port whose liveness gates the bucket (fast failover), OFPP_ANY otherwise.
    pub watch_port: u32,
    /// Group whose liveness gates the bucket, OFPG_ANY otherwise.
    pub watch_group: u32,
    /// The bucket's actions.
    pub actions: Vec<Action>,
}

impl Bucket {
    /// Parses one bucket at the front of `buf`; returns it and its length. "len:
    /// Length of the bucket in bytes, including this header and any padding to make it
    /// 64-bit aligned."
    pub fn parse(buf: &[u8]) -> Result<(Bucket, usize)> {
        check_len(buf, bfield::LEN)?;
        let len = u16_at(buf, bfield::LENGTH) as usize;
        if len < bfield::LEN || !len.is_multiple_of(8) {
            return Err(Error::BadLength(
                "bucket length not a multiple of 8 of at least 16",
            ));
        }
        let b = buf
            .get(..len)
            .ok_or(Error::BadLength("bucket runs past the message"))?;
        Ok((
            Bucket {
                weight: u16_at(b, bfield::WEIGHT),
                watch_port: u32_at(b, bfield::WATCH_PORT),
                watch_group: u32_at(b, bfield::WATCH_GROUP),
                actions: Action::parse_list(&b[bfield::ACTIONS..])?,
            },
            len,
        ))
    }

    /// Parses a list of buckets filling `buf`.
    pub fn parse_list(mut buf: &[u8]) -> Result<Vec<Bucket>> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (b, n) = Bucket::parse(buf)?;
            out.push(b);
            buf = &buf[n..];
        }
        Ok(out)
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        bfield::LEN + Action::list_len(&self.actions)
    }

    /// Appends the bucket.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let len = self.buffer_len();
        if len > u16::MAX as usize {
            return Err(Error::TooLong(len));
        }
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&self.weight.to_be_bytes());
        out.extend_from_slice(&self.watch_port.to_be_bytes());
        out.extend_from_slice(&self.watch_group.to_be_bytes());
        zeros(out, 4);
        Action::emit_list(&self.actions, out)
    }

    /// Bytes a list occupies.
    pub fn list_len(list: &[Bucket]) -> usize {
        list.iter().map(Bucket::buffer_len).sum()
    }

    /// Appends a list.
    pub fn emit_list(list: &[Bucket], out: &mut Vec<u8>) -> Result<()> {
        list.iter().try_for_each(|b| b.emit(out))
    }
}

/// A group table modification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMod {
    /// What to do.
    pub command: GroupCommand,
    /// Group type.
    pub group_type: GroupType,
    /// Group id.
    pub group_id: u32,
    /// Buckets.
    pub buckets: Vec<Bucket>,
}

impl GroupMod {
    /// Parses a whole GROUP_MOD.
    pub fn parse(msg: &[u8]) -> Result<GroupMod> {
        check_len(msg, field::LEN)?;
        Ok(GroupMod {
            command: GroupCommand::from_u16(u16_at(msg, field::COMMAND)),
            group_type: GroupType::from_u8(u8_at(msg, field::TYPE)),
            group_id: u32_at(msg, field::GROUP_ID),
            buckets: Bucket::parse_list(&msg[field::BUCKETS..])?,
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN + Bucket::list_len(&self.buckets)
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.command.to_u16().to_be_bytes());
        out.push(self.group_type.to_u8());
        out.push(0);
        out.extend_from_slice(&self.group_id.to_be_bytes());
        Bucket::emit_list(&self.buckets, out)
    }
}
