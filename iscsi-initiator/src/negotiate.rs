//! Operational parameter negotiation (RFC 7143 sections 6 and 13).
//!
//! Each key has a default and a result function (section 6.2: "the result is the
//! minimum/maximum/AND/OR of the offered and responding values", or a list choice, or a
//! declaration). The initiator offers [`Proposal`]; the target's answers are checked
//! against the function (a target may not answer a `min` key with more than offered)
//! and folded into [`Params`].

use std::fmt;

/// The negotiated (or default) operational parameters of a session/connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// HeaderDigest=CRC32C.
    pub header_digest: bool,
    /// DataDigest=CRC32C.
    pub data_digest: bool,
    /// MaxConnections (min).
    pub max_connections: u32,
    /// InitialR2T (OR).
    pub initial_r2t: bool,
    /// ImmediateData (AND).
    pub immediate_data: bool,
    /// MaxRecvDataSegmentLength the initiator declared: the most the target may send us
    /// in one PDU.
    pub initiator_mrdsl: u32,
    /// MaxRecvDataSegmentLength the target declared: the most we may send in one PDU.
    pub target_mrdsl: u32,
    /// MaxBurstLength (min).
    pub max_burst_length: u32,
    /// FirstBurstLength (min).
    pub first_burst_length: u32,
    /// DefaultTime2Wait (max).
    pub default_time2wait: u32,
    /// DefaultTime2Retain (min).
    pub default_time2retain: u32,
    /// MaxOutstandingR2T (min).
    pub max_outstanding_r2t: u32,
    /// DataPDUInOrder (OR).
    pub data_pdu_in_order: bool,
    /// DataSequenceInOrder (OR).
    pub data_sequence_in_order: bool,
    /// ErrorRecoveryLevel (min).
    pub error_recovery_level: u32,
}

impl Default for Params {
    /// The RFC 7143 section 13 defaults.
    fn default() -> Params {
        Params {
            header_digest: false,
            data_digest: false,
            max_connections: 1,
            initial_r2t: true,
            immediate_data: true,
            initiator_mrdsl: 8192,
            target_mrdsl: 8192,
            max_burst_length: 262_144,
            first_burst_length: 65_536,
            default_time2wait: 2,
            default_time2retain: 20,
            max_outstanding_r2t: 1,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            error_recovery_level: 0,
        }
    }
}

/// What the initiator offers in the operational stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    /// Offer `CRC32C,None` (true) or `None` for HeaderDigest.
    pub header_digest: bool,
    /// Same for DataDigest.
    pub data_digest: bool,
    /// InitialR2T offered.
    pub initial_r2t: bool,
    /// ImmediateData offered.
    pub immediate_data: bool,
    /// Our MaxRecvDataSegmentLength (declarative, 512..=2^24-1).
    pub max_recv_data_segment_length: u32,
    /// MaxBurstLength offered.
    pub max_burst_length: u32,
    /// FirstBurstLength offered.
    pub first_burst_length: u32,
    /// MaxOutstandingR2T offered.
    pub max_outstanding_r2t: u32,
}

impl Default for Proposal {
    fn default() -> Proposal {
        Proposal {
            header_digest: false,
            data_digest: false,
            initial_r2t: false,
            immediate_data: true,
            max_recv_data_segment_length: 262_144,
            max_burst_length: 1 << 20,
            first_burst_length: 262_144,
            max_outstanding_r2t: 1,
        }
    }
}

/// Result function of a key (section 6.2 and the key definitions in section 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// Boolean AND.
    And,
    /// Boolean OR.
    Or,
    /// Numerical minimum.
    Min,
    /// Numerical maximum.
    Max,
    /// The responder picks the first value of the offered list it supports.
    List,
    /// Each side declares its own value.
    Declarative,
}

/// Key table: name, result function, valid numeric range.
pub const KEYS: &[(&str, Function, u32, u32)] = &[
    ("HeaderDigest", Function::List, 0, 0),
    ("DataDigest", Function::List, 0, 0),
    ("MaxConnections", Function::Min, 1, 65535),
    ("InitialR2T", Function::Or, 0, 0),
    ("ImmediateData", Function::And, 0, 0),
    (
        "MaxRecvDataSegmentLength",
        Function::Declarative,
        512,
        16_777_215,
    ),
    ("MaxBurstLength", Function::Min, 512, 16_777_215),
    ("FirstBurstLength", Function::Min, 512, 16_777_215),
    ("DefaultTime2Wait", Function::Max, 0, 3600),
    ("DefaultTime2Retain", Function::Min, 0, 3600),
    ("MaxOutstandingR2T", Function::Min, 1, 65535),
    ("DataPDUInOrder", Function::Or, 0, 0),
    ("DataSequenceInOrder", Function::Or, 0, 0),
    ("ErrorRecoveryLevel", Function::Min, 0, 2),
];

/// A negotiation failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiationError {
    /// The key.
    pub key: String,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "negotiation of {} failed: {}", self.key, self.reason)
    }
}

impl std::error::Error for NegotiationError {}

fn err(key: &str, reason: impl Into<String>) -> NegotiationError {
    NegotiationError {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Looks up a key's function and range.
pub fn function_of(key: &str) -> Option<(Function, u32, u32)> {
    KEYS.iter()
        .find(|(k, ..)| *k == key)
        .map(|&(_, f, lo, hi)| (f, lo, hi))
}

fn parse_bool(key: &str, v: &str) -> Result<bool, NegotiationError> {
    match v {
        "Yes" => Ok(true),
        "No" => Ok(false),
        _ => Err(err(key, format!("{v:?} is not Yes or No"))),
    }
}

fn parse_num(key: &str, v: &str, lo: u32, hi: u32) -> Result<u32, NegotiationError> {
    // Section 6.1: numerical values may be decimal or hex (0x...).
    let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(h, 16)
    } else {
        v.parse::<u32>()
    }
    .map_err(|_| err(key, format!("{v:?} is not a number")))?;
    if n < lo || n > hi {
        return Err(err(key, format!("{n} outside {lo}..={hi}")));
    }
    Ok(n)
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

impl Proposal {
    /// The key=value pairs offered in the operational stage, in order.
    pub fn offer(&self) -> Vec<(&'static str, String)> {
        let dig = |on: bool| if on { "CRC32C,None" } else { "None" }.to_owned();
        vec![
            ("HeaderDigest", dig(self.header_digest)),
            ("DataDigest", dig(self.data_digest)),
            ("InitialR2T", bool_str(self.initial_r2t).into()),
            ("ImmediateData", bool_str(self.immediate_data).into()),
            (
                "MaxRecvDataSegmentLength",
                self.max_recv_data_segment_length.to_string(),
            ),
            ("MaxBurstLength", self.max_burst_length.to_string()),
            ("FirstBurstLength", self.first_burst_length.to_string()),
            ("DefaultTime2Wait", "2".into()),
            ("DefaultTime2Retain", "0".into()),
            ("MaxOutstandingR2T", self.max_outstanding_r2t.to_string()),
            ("ErrorRecoveryLevel", "0".into()),
            ("MaxConnections", "1".into()),
            ("DataPDUInOrder", "Yes".into()),
            ("DataSequenceInOrder", "Yes".into()),
        ]
    }
}

/// Negotiation state: our offers and the parameters so far.
#[derive(Debug, Clone)]
pub struct Negotiator {
    offered: Vec<(&'static str, String)>,
    /// Parameters as negotiated so far (defaults until answered).
    pub params: Params,
}

impl Negotiator {
    /// Starts from the RFC defaults with our proposal.
    pub fn new(p: &Proposal) -> Negotiator {
        let params = Params {
            initiator_mrdsl: p.max_recv_data_segment_length,
            ..Params::default()
        };
        Negotiator {
            offered: p.offer(),
            params,
        }
    }

    /// Pairs to send in the first operational Login Request.
    pub fn offered(&self) -> &[(&'static str, String)] {
        &self.offered
    }

    /// Folds in one key from a target response. Returns a pair to send back when the
    /// target itself offered a key we did not (we answer with the result).
    pub fn on_target_key(
        &mut self,
        key: &str,
        value: &str,
    ) -> Result<Option<(String, String)>, NegotiationError> {
        let Some((func, lo, hi)) = function_of(key) else {
            // Not an operational key (TargetPortalGroupTag, TargetAlias, IFMarker ...).
            return Ok(None);
        };
        if matches!(value, "Reject" | "Irrelevant" | "NotUnderstood") {
            // Section 6.2: the key keeps its default.
            return Ok(None);
        }
        let ours = self
            .offered
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone());
        let (result, reply) = match (func, ours) {
            (Function::Declarative, _) => {
                let n = parse_num(key, value, lo, hi)?;
                (Value::Num(n), None)
            }
            (Function::List, Some(offer)) => {
                if !offer.split(',').any(|o| o == value) {
                    return Err(err(key, format!("answer {value:?} not in offer {offer:?}")));
                }
                (Value::Text(value.to_owned()), None)
            }
            (Function::List, None) => {
                // Target offered: pick its first value we support.
                let pick = value
                    .split(',')
                    .find(|v| *v == "None" || *v == "CRC32C")
                    .ok_or_else(|| err(key, format!("no supported value in {value:?}")))?;
                (Value::Text(pick.to_owned()), Some(pick.to_owned()))
            }
            (Function::And | Function::Or, ours) => {
                let theirs = parse_bool(key, value)?;
                match ours {
                    Some(o) => {
                        let o = parse_bool(key, &o)?;
                        let expect = if func == Function::And {
                            o && theirs
                        } else {
                            o || theirs
                        };
                        // Section 6.2.2: for AND an offer of No forces No; for OR an offer
                        // of Yes forces Yes; the answer must be consistent.
                        if theirs != expect {
                            return Err(err(
                                key,
                                format!("answer {value} inconsistent with offer {o}"),
                            ));
                        }
                        (Value::Bool(theirs), None)
                    }
                    None => {
                        let mine = default_bool(key);
                        let r = if func == Function::And {
                            mine && theirs
                        } else {
                            mine || theirs
                        };
                        (Value::Bool(r), Some(bool_str(r).to_owned()))
                    }
                }
            }
            (Function::Min | Function::Max, ours) => {
                let theirs = parse_num(key, value, lo, hi)?;
                match ours {
                    Some(o) => {
                        let o = parse_num(key, &o, lo, hi)?;
                        let ok = if func == Function::Min {
                            theirs <= o
                        } else {
                            theirs >= o
                        };
                        if !ok {
                            return Err(err(
                                key,
                                format!("answer {theirs} violates {func:?} of offer {o}"),
                            ));
                        }
                        (Value::Num(theirs), None)
                    }
                    None => {
                        let mine = default_num(key);
                        let r = if func == Function::Min {
                            mine.min(theirs)
                        } else {
                            mine.max(theirs)
                        };
                        (Value::Num(r), Some(r.to_string()))
                    }
                }
            }
        };
        self.apply(key, result);
        Ok(reply.map(|v| (key.to_owned(), v)))
    }

    fn apply(&mut self, key: &str, v: Value) {
        let p = &mut self.params;
        match (key, v) {
            ("HeaderDigest", Value::Text(t)) => p.header_digest = t == "CRC32C",
            ("DataDigest", Value::Text(t)) => p.data_digest = t == "CRC32C",
            ("MaxConnections", Value::Num(n)) => p.max_connections = n,
            ("InitialR2T", Value::Bool(b)) => p.initial_r2t = b,
            ("ImmediateData", Value::Bool(b)) => p.immediate_data = b,
            ("MaxRecvDataSegmentLength", Value::Num(n)) => p.target_mrdsl = n,
            ("MaxBurstLength", Value::Num(n)) => p.max_burst_length = n,
            ("FirstBurstLength", Value::Num(n)) => p.first_burst_length = n,
            ("DefaultTime2Wait", Value::Num(n)) => p.default_time2wait = n,
            ("DefaultTime2Retain", Value::Num(n)) => p.default_time2retain = n,
            ("MaxOutstandingR2T", Value::Num(n)) => p.max_outstanding_r2t = n,
            ("DataPDUInOrder", Value::Bool(b)) => p.data_pdu_in_order = b,
            ("DataSequenceInOrder", Value::Bool(b)) => p.data_sequence_in_order = b,
            ("ErrorRecoveryLevel", Value::Num(n)) => p.error_recovery_level = n,
            _ => {}
        }
    }

    /// Final consistency checks once the target moved to full feature phase.
    pub fn finish(&mut self) -> Result<Params, NegotiationError> {
        let p = &mut self.params;
        // Section 13.14: "FirstBurstLength MUST NOT exceed MaxBurstLength".
        if p.first_burst_length > p.max_burst_length {
            p.first_burst_length = p.max_burst_length;
        }
        if p.error_recovery_level != 0 {
            return Err(err("ErrorRecoveryLevel", "only level 0 is implemented"));
        }
        if !p.data_pdu_in_order || !p.data_sequence_in_order {
            return Err(err("DataPDUInOrder", "out-of-order data is not supported"));
        }
        Ok(*p)
    }
}

enum Value {
    Bool(bool),
    Num(u32),
    Text(String),
}

fn default_bool(key: &str) -> bool {
    let d = Params::default();
    match key {
        "InitialR2T" => d.initial_r2t,
        "ImmediateData" => d.immediate_data,
        "DataPDUInOrder" => d.data_pdu_in_order,
        _ => d.data_sequence_in_order,
    }
}

fn default_num(key: &str) -> u32 {
    let d = Params::default();
    match key {
        "MaxConnections" => d.max_connections,
        "MaxBurstLength" => d.max_burst_length,
        "FirstBurstLength" => d.first_burst_length,
        "DefaultTime2Wait" => d.default_time2wait,
        "DefaultTime2Retain" => d.default_time2retain,
        "MaxOutstandingR2T" => d.max_outstanding_r2t,
        _ => d.error_recovery_level,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg() -> Negotiator {
        Negotiator::new(&Proposal {
            header_digest: true,
            ..Proposal::default()
        })
    }

    #[test]
    fn tgtd_answers_apply() {
        // The answer tgtd gave libiscsi in the captured login.
        let mut n = neg();
        for (k, v) in [
            ("HeaderDigest", "None"),
            ("InitialR2T", "Yes"),
            ("ImmediateData", "Yes"),
            ("MaxBurstLength", "262144"),
            ("FirstBurstLength", "65536"),
            ("MaxRecvDataSegmentLength", "8192"),
            ("TargetPortalGroupTag", "1"),
        ] {
            assert_eq!(n.on_target_key(k, v).unwrap(), None);
        }
        let p = n.finish().unwrap();
        assert!(p.initial_r2t && p.immediate_data && !p.header_digest);
        assert_eq!(p.max_burst_length, 262_144);
        assert_eq!(p.first_burst_length, 65_536);
        assert_eq!(p.target_mrdsl, 8192);
        assert_eq!(p.initiator_mrdsl, 262_144);
    }

    #[test]
    fn min_answer_above_offer_is_rejected() {
        let mut n = neg();
        assert!(n.on_target_key("MaxBurstLength", "2000000").is_err());
    }

    #[test]
    fn or_and_consistency() {
        let mut n = Negotiator::new(&Proposal {
            initial_r2t: true,
            immediate_data: false,
            ..Proposal::default()
        });
        // We offered InitialR2T=Yes: OR forces Yes.
        assert!(n.on_target_key("InitialR2T", "No").is_err());
        // We offered ImmediateData=No: AND forces No.
        assert!(n.on_target_key("ImmediateData", "Yes").is_err());
        assert!(n.on_target_key("ImmediateData", "No").is_ok());
    }

    #[test]
    fn digest_answer_must_be_from_offer() {
        let mut n = Negotiator::new(&Proposal::default());
        assert!(n.on_target_key("HeaderDigest", "CRC32C").is_err());
        let mut n = neg();
        n.on_target_key("HeaderDigest", "CRC32C").unwrap();
        assert!(n.params.header_digest);
    }

    #[test]
    fn target_offers_are_answered() {
        let mut n = neg();
        n.offered
            .retain(|(k, _)| *k != "MaxOutstandingR2T" && *k != "DataDigest");
        assert_eq!(
            n.on_target_key("MaxOutstandingR2T", "8").unwrap(),
            Some(("MaxOutstandingR2T".into(), "1".into()))
        );
        assert_eq!(
            n.on_target_key("DataDigest", "CRC32C,None").unwrap(),
            Some(("DataDigest".into(), "CRC32C".into()))
        );
    }

    #[test]
    fn bad_values() {
        let mut n = neg();
        assert!(n.on_target_key("MaxRecvDataSegmentLength", "100").is_err());
        assert!(n
            .on_target_key("MaxRecvDataSegmentLength", "0x1000")
            .is_ok());
        assert_eq!(n.params.target_mrdsl, 4096);
        assert!(n.on_target_key("ImmediateData", "Maybe").is_err());
        assert!(n.on_target_key("ErrorRecoveryLevel", "7").is_err());
        assert_eq!(n.on_target_key("InitialR2T", "Reject").unwrap(), None);
    }

    #[test]
    fn first_burst_clamped_to_max_burst() {
        let mut n = neg();
        n.on_target_key("MaxBurstLength", "65536").unwrap();
        n.on_target_key("FirstBurstLength", "262144").unwrap();
        assert_eq!(n.finish().unwrap().first_burst_length, 65536);
    }
}
