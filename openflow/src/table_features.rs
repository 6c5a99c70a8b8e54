//! ofp_table_features and its properties (spec section 7.3.5.5), the body of
//! OFPMP_TABLE_FEATURES requests (a controller such as Faucet configuring the pipeline)
//! and replies (what `ovs-ofctl` reads to learn table names).
//!
//! ```text
//! entry:    length (2) | table_id | pad (5) | name[32] | metadata_match (8)
//!           | metadata_write (8) | config (4) | max_entries (4) | properties ...
//! property: type (2) | length (2, excl. padding) | body | pad to 8
//! ```
//!
//! Section 7.3.5.5.2: each property "is followed by 0-7 bytes of all-zero bytes so that
//! the total length is a multiple of 8"; the entry's "length is padded to 64 bits".

use crate::bytes::{pad8, put_str, round8, str_at, u16_at, u32_at, u64_at, u8_at, zeros};
use crate::error::check_len;
use crate::field::table_features as field;
use crate::oxm::class;
use crate::{Error, Result};

/// OFPTFPT_* property types.
pub mod prop_type {
    /// OFPTFPT_INSTRUCTIONS: instructions a flow may use.
    pub const INSTRUCTIONS: u16 = 0;
    /// OFPTFPT_INSTRUCTIONS_MISS: instructions the table-miss flow may use.
    pub const INSTRUCTIONS_MISS: u16 = 1;
    /// OFPTFPT_NEXT_TABLES: tables GOTO_TABLE may reach.
    pub const NEXT_TABLES: u16 = 2;
    /// OFPTFPT_NEXT_TABLES_MISS: tables the table-miss flow may reach.
    pub const NEXT_TABLES_MISS: u16 = 3;
    /// OFPTFPT_WRITE_ACTIONS: actions WRITE_ACTIONS may hold.
    pub const WRITE_ACTIONS: u16 = 4;
    /// OFPTFPT_WRITE_ACTIONS_MISS: the same for the table-miss flow.
    pub const WRITE_ACTIONS_MISS: u16 = 5;
    /// OFPTFPT_APPLY_ACTIONS: actions APPLY_ACTIONS may hold.
    pub const APPLY_ACTIONS: u16 = 6;
    /// OFPTFPT_APPLY_ACTIONS_MISS: the same for the table-miss flow.
    pub const APPLY_ACTIONS_MISS: u16 = 7;
    /// OFPTFPT_MATCH: OXM fields the table matches.
    pub const MATCH: u16 = 8;
    /// OFPTFPT_WILDCARDS: OXM fields that may be wildcarded.
    pub const WILDCARDS: u16 = 10;
    /// OFPTFPT_WRITE_SETFIELD: fields SET_FIELD may write in WRITE_ACTIONS.
    pub const WRITE_SETFIELD: u16 = 12;
    /// OFPTFPT_WRITE_SETFIELD_MISS: the same for the table-miss flow.
    pub const WRITE_SETFIELD_MISS: u16 = 13;
    /// OFPTFPT_APPLY_SETFIELD: fields SET_FIELD may write in APPLY_ACTIONS.
    pub const APPLY_SETFIELD: u16 = 14;
    /// OFPTFPT_APPLY_SETFIELD_MISS: the same for the table-miss flow.
    pub const APPLY_SETFIELD_MISS: u16 = 15;
    /// OFPTFPT_EXPERIMENTER: an experimenter property.
    pub const EXPERIMENTER: u16 = 0xfffe;
    /// OFPTFPT_EXPERIMENTER_MISS: an experimenter property for the table-miss flow.
    pub const EXPERIMENTER_MISS: u16 = 0xffff;
}

/// The property types Open vSwitch requires in every table (without them `ovs-ofctl`
/// refuses the reply: "table features message missing 8 required properties").
pub const REQUIRED: [u16; 8] = [
    prop_type::INSTRUCTIONS,
    prop_type::NEXT_TABLES,
    prop_type::WRITE_ACTIONS,
    prop_type::APPLY_ACTIONS,
    prop_type::MATCH,
    prop_type::WILDCARDS,
    prop_type::WRITE_SETFIELD,
    prop_type::APPLY_SETFIELD,
];

/// An instruction or action id: its type and the bytes after its 4-byte header (the
/// experimenter id for experimenter ones; empty otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlvId {
    /// OFPIT_* or OFPAT_* type.
    pub id_type: u16,
    /// Bytes after type and len.
    pub data: Vec<u8>,
}

impl TlvId {
    /// A plain (4-byte) id.
    pub fn new(id_type: u16) -> TlvId {
        TlvId {
            id_type,
            data: Vec::new(),
        }
    }
}

/// An OXM id: a 32-bit OXM header (class, field, hasmask, length), with the
/// experimenter id when the class is 0xffff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OxmId {
    /// The OXM header.
    pub header: u32,
    /// Experimenter id (class 0xffff only).
    pub experimenter: Option<u32>,
}

/// One table feature property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableFeatureProp {
    /// OFPTFPT_INSTRUCTIONS / _MISS.
    Instructions {
        /// The table-miss variant.
        miss: bool,
        /// Supported instructions.
        ids: Vec<TlvId>,
    },
    /// OFPTFPT_NEXT_TABLES / _MISS: tables goto_table may reach.
    NextTables {
        /// The table-miss variant.
        miss: bool,
        /// Table ids.
        tables: Vec<u8>,
    },
    /// OFPTFPT_WRITE_ACTIONS / _MISS.
    WriteActions {
        /// The table-miss variant.
        miss: bool,
        /// Supported actions.
        ids: Vec<TlvId>,
    },
    /// OFPTFPT_APPLY_ACTIONS / _MISS.
    ApplyActions {
        /// The table-miss variant.
        miss: bool,
        /// Supported actions.
        ids: Vec<TlvId>,
    },
    /// OFPTFPT_MATCH: fields the table can match.
    Match(Vec<OxmId>),
    /// OFPTFPT_WILDCARDS: fields that may be wildcarded.
    Wildcards(Vec<OxmId>),
    /// OFPTFPT_WRITE_SETFIELD / _MISS.
    WriteSetfield {
        /// The table-miss variant.
        miss: bool,
        /// Settable fields.
        oxms: Vec<OxmId>,
    },
    /// OFPTFPT_APPLY_SETFIELD / _MISS.
    ApplySetfield {
        /// The table-miss variant.
        miss: bool,
        /// Settable fields.
        oxms: Vec<OxmId>,
    },
    /// Experimenter or unknown properties, body raw (without padding).
    Other {
        /// Property type.
        prop_type: u16,
        /// Body after type and length.
        data: Vec<u8>,
    },
}

fn tlv_ids(mut b: &[u8]) -> Result<Vec<TlvId>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        check_len(b, 4)?;
        let len = u16_at(b, 2..4) as usize;
        if len < 4 || len > b.len() {
            return Err(Error::BadLength("table feature id length out of range"));
        }
        out.push(TlvId {
            id_type: u16_at(b, 0..2),
            data: b[4..len].to_vec(),
        });
        b = &b[len..];
    }
    Ok(out)
}

fn oxm_ids(mut b: &[u8]) -> Result<Vec<OxmId>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        check_len(b, 4)?;
        let header = u32_at(b, 0..4);
        let mut n = 4;
        let experimenter = if (header >> 16) as u16 == class::EXPERIMENTER {
            check_len(b, 8)?;
            n = 8;
            Some(u32_at(b, 4..8))
        } else {
            None
        };
        out.push(OxmId {
            header,
            experimenter,
        });
        b = &b[n..];
    }
    Ok(out)
}

impl TableFeatureProp {
    /// The eight [`REQUIRED`] properties, each with an empty list.
    pub fn required_empty() -> Vec<TableFeatureProp> {
        vec![
            TableFeatureProp::Instructions {
                miss: false,
                ids: vec![],
            },
            TableFeatureProp::NextTables {
                miss: false,
                tables: vec![],
            },
            TableFeatureProp::WriteActions {
                miss: false,
                ids: vec![],
            },
            TableFeatureProp::ApplyActions {
                miss: false,
                ids: vec![],
            },
            TableFeatureProp::Match(vec![]),
            TableFeatureProp::Wildcards(vec![]),
            TableFeatureProp::WriteSetfield {
                miss: false,
                oxms: vec![],
            },
            TableFeatureProp::ApplySetfield {
                miss: false,
                oxms: vec![],
            },
        ]
    }

    /// Parses a list of properties filling `b`.
    pub fn parse_list(mut b: &[u8]) -> Result<Vec<TableFeatureProp>> {
        let mut out = Vec::new();
        while !b.is_empty() {
            check_len(b, 4)?;
            let ty = u16_at(b, 0..2);
            let len = u16_at(b, 2..4) as usize;
            if len < 4 || len > b.len() {
                return Err(Error::BadLength(
                    "table feature property length out of range",
                ));
            }
            let body = &b[4..len];
            use prop_type as p;
            out.push(match ty {
                p::INSTRUCTIONS | p::INSTRUCTIONS_MISS => TableFeatureProp::Instructions {
                    miss: ty & 1 == 1,
                    ids: tlv_ids(body)?,
                },
                p::NEXT_TABLES | p::NEXT_TABLES_MISS => TableFeatureProp::NextTables {
                    miss: ty & 1 == 1,
                    tables: body.to_vec(),
                },
                p::WRITE_ACTIONS | p::WRITE_ACTIONS_MISS => TableFeatureProp::WriteActions {
                    miss: ty & 1 == 1,
                    ids: tlv_ids(body)?,
                },
                p::APPLY_ACTIONS | p::APPLY_ACTIONS_MISS => TableFeatureProp::ApplyActions {
                    miss: ty & 1 == 1,
                    ids: tlv_ids(body)?,
                },
                p::MATCH => TableFeatureProp::Match(oxm_ids(body)?),
                p::WILDCARDS => TableFeatureProp::Wildcards(oxm_ids(body)?),
                p::WRITE_SETFIELD | p::WRITE_SETFIELD_MISS => TableFeatureProp::WriteSetfield {
                    miss: ty & 1 == 1,
                    oxms: oxm_ids(body)?,
                },
                p::APPLY_SETFIELD | p::APPLY_SETFIELD_MISS => TableFeatureProp::ApplySetfield {
                    miss: ty & 1 == 1,
                    oxms: oxm_ids(body)?,
                },
                _ => TableFeatureProp::Other {
                    prop_type: ty,
                    data: body.to_vec(),
                },
            });
            // The padding may be missing after the last property only if the entry
            // ends there; the entry length check (a multiple of 8) covers that.
            b = &b[round8(len).min(b.len())..];
        }
        Ok(out)
    }

    fn prop_type(&self) -> u16 {
        use prop_type as p;
        let m = |miss: bool, t: u16| t | miss as u16;
        match self {
            TableFeatureProp::Instructions { miss, .. } => m(*miss, p::INSTRUCTIONS),
            TableFeatureProp::NextTables { miss, .. } => m(*miss, p::NEXT_TABLES),
            TableFeatureProp::WriteActions { miss, .. } => m(*miss, p::WRITE_ACTIONS),
            TableFeatureProp::ApplyActions { miss, .. } => m(*miss, p::APPLY_ACTIONS),
            TableFeatureProp::Match(_) => p::MATCH,
            TableFeatureProp::Wildcards(_) => p::WILDCARDS,
            TableFeatureProp::WriteSetfield { miss, .. } => m(*miss, p::WRITE_SETFIELD),
            TableFeatureProp::ApplySetfield { miss, .. } => m(*miss, p::APPLY_SETFIELD),
            TableFeatureProp::Other { prop_type, .. } => *prop_type,
        }
    }

    fn body_len(&self) -> usize {
        let ids = |v: &[TlvId]| v.iter().map(|i| 4 + i.data.len()).sum::<usize>();
        let oxms = |v: &[OxmId]| {
            v.iter()
                .map(|o| if o.experimenter.is_some() { 8 } else { 4 })
                .sum::<usize>()
        };
        match self {
            TableFeatureProp::Instructions { ids: v, .. }
            | TableFeatureProp::WriteActions { ids: v, .. }
            | TableFeatureProp::ApplyActions { ids: v, .. } => ids(v),
            TableFeatureProp::NextTables { tables, .. } => tables.len(),
            TableFeatureProp::Match(v)
            | TableFeatureProp::Wildcards(v)
            | TableFeatureProp::WriteSetfield { oxms: v, .. }
            | TableFeatureProp::ApplySetfield { oxms: v, .. } => oxms(v),
            TableFeatureProp::Other { data, .. } => data.len(),
        }
    }

    /// Bytes on the wire, padding included.
    pub fn buffer_len(&self) -> usize {
        round8(4 + self.body_len())
    }

    /// Appends the property and its padding.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let len = 4 + self.body_len();
        if len > u16::MAX as usize {
            return Err(Error::TooLong(len));
        }
        out.extend_from_slice(&self.prop_type().to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
        let put_ids = |out: &mut Vec<u8>, v: &[TlvId]| {
            for i in v {
                out.extend_from_slice(&i.id_type.to_be_bytes());
                out.extend_from_slice(&((4 + i.data.len()) as u16).to_be_bytes());
                out.extend_from_slice(&i.data);
            }
        };
        let put_oxms = |out: &mut Vec<u8>, v: &[OxmId]| {
            for o in v {
                out.extend_from_slice(&o.header.to_be_bytes());
                if let Some(e) = o.experimenter {
                    out.extend_from_slice(&e.to_be_bytes());
                }
            }
        };
        match self {
            TableFeatureProp::Instructions { ids: v, .. }
            | TableFeatureProp::WriteActions { ids: v, .. }
            | TableFeatureProp::ApplyActions { ids: v, .. } => put_ids(out, v),
            TableFeatureProp::NextTables { tables, .. } => out.extend_from_slice(tables),
            TableFeatureProp::Match(v)
            | TableFeatureProp::Wildcards(v)
            | TableFeatureProp::WriteSetfield { oxms: v, .. }
            | TableFeatureProp::ApplySetfield { oxms: v, .. } => put_oxms(out, v),
            TableFeatureProp::Other { data, .. } => out.extend_from_slice(data),
        }
        zeros(out, pad8(len));
        Ok(())
    }
}

/// One table's features.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableFeatures {
    /// Table.
    pub table_id: u8,
    /// Name (31 bytes max).
    pub name: String,
    /// Metadata bits the table can match.
    pub metadata_match: u64,
    /// Metadata bits the table can write.
    pub metadata_write: u64,
    /// OFPTC_* bits.
    pub config: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// The properties, in wire order.
    pub properties: Vec<TableFeatureProp>,
}

impl TableFeatures {
    /// Parses a list of entries filling `b` (a multipart body).
    pub fn parse_list(mut b: &[u8]) -> Result<Vec<TableFeatures>> {
        let mut out = Vec::new();
        while !b.is_empty() {
            check_len(b, field::LEN)?;
            let len = u16_at(b, field::LENGTH) as usize;
            if len < field::LEN || len > b.len() || !len.is_multiple_of(8) {
                return Err(Error::BadLength("table features length out of range"));
            }
            let e = &b[..len];
            out.push(TableFeatures {
                table_id: u8_at(e, field::TABLE_ID),
                name: str_at(e, field::NAME),
                metadata_match: u64_at(e, field::METADATA_MATCH),
                metadata_write: u64_at(e, field::METADATA_WRITE),
                config: u32_at(e, field::CONFIG),
                max_entries: u32_at(e, field::MAX_ENTRIES),
                properties: TableFeatureProp::parse_list(&e[field::PROPERTIES..])?,
            });
            b = &b[len..];
        }
        Ok(out)
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        field::LEN
            + self
                .properties
                .iter()
                .map(TableFeatureProp::buffer_len)
                .sum::<usize>()
    }

    /// Appends the entry.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<()> {
        let len = self.buffer_len();
        if len > u16::MAX as usize {
            return Err(Error::TooLong(len));
        }
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(self.table_id);
        zeros(out, 5);
        put_str(out, &self.name, field::NAME.len());
        out.extend_from_slice(&self.metadata_match.to_be_bytes());
        out.extend_from_slice(&self.metadata_write.to_be_bytes());
        out.extend_from_slice(&self.config.to_be_bytes());
        out.extend_from_slice(&self.max_entries.to_be_bytes());
        self.properties.iter().try_for_each(|p| p.emit(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construct_and_parse_table_features() {
        let mut props = TableFeatureProp::required_empty();
        props.push(TableFeatureProp::Match(vec![
            OxmId {
                header: 0x8000_0004,
                experimenter: None,
            },
            OxmId {
                header: 0xffff_5406,
                experimenter: Some(crate::oxm::ONF_EXPERIMENTER),
            },
        ]));
        props.push(TableFeatureProp::NextTables {
            miss: true,
            tables: vec![1, 2, 3],
        });
        let t = TableFeatures {
            table_id: 0,
            name: "t0".into(),
            max_entries: 10,
            properties: props,
            ..TableFeatures::default()
        };
        let mut out = Vec::new();
        t.emit(&mut out).unwrap();
        assert_eq!(out.len(), t.buffer_len());
        assert_eq!(out.len() % 8, 0);
        assert_eq!(TableFeatures::parse_list(&out).unwrap(), vec![t]);
    }
}
