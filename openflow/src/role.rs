//! OFPT_ROLE_REQUEST / OFPT_ROLE_REPLY (spec section 7.3.9).
//!
//! ```text
//! ofp_header | role (4) | pad (4) | generation_id (8)
//! ```

use crate::bytes::{u32_at, u64_at, zeros};
use crate::error::exact_len;
use crate::field::role as field;
use crate::Result;

/// OFPCR_ROLE_* values.
pub mod roles {
    /// OFPCR_ROLE_NOCHANGE: keep the current role (a query).
    pub const NOCHANGE: u32 = 0;
    /// OFPCR_ROLE_EQUAL: full access, as every other equal controller.
    pub const EQUAL: u32 = 1;
    /// OFPCR_ROLE_MASTER: full access; at most one master.
    pub const MASTER: u32 = 2;
    /// OFPCR_ROLE_SLAVE: read-only access.
    pub const SLAVE: u32 = 3;
}

/// A role request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// One of [`roles`].
    pub role: u32,
    /// Master election generation id.
    pub generation_id: u64,
}

impl Role {
    /// Parses a whole ROLE_REQUEST or ROLE_REPLY.
    pub fn parse(msg: &[u8]) -> Result<Role> {
        exact_len(msg, field::LEN)?;
        Ok(Role {
            role: u32_at(msg, field::ROLE),
            generation_id: u64_at(msg, field::GENERATION_ID),
        })
    }

    /// Whole message length.
    pub fn buffer_len(&self) -> usize {
        field::LEN
    }

    /// Appends the body.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&self.role.to_be_bytes());
        zeros(out, 4);
        out.extend_from_slice(&self.generation_id.to_be_bytes());
        Ok(())
    }
}
