//! OpenFlow errors in their OpenFlow 1.0 form. 1.0 has fewer error types
//! than 1.3 and numbers them differently (section 5.4.4: HELLO_FAILED 0,
//! BAD_REQUEST 1, BAD_ACTION 2, FLOW_MOD_FAILED 3, PORT_MOD_FAILED 4,
//! QUEUE_OP_FAILED 5); an error 1.0 cannot say goes as a Nicira vendor
//! error, as Open vSwitch sends it (`include/openvswitch/ofp-errors.h`,
//! the "NX1.0(type,code)" encodings; `lib/ofp-errors.c`):
//!
//! ```text
//! ofp_error_msg: type = NXET_VENDOR (0xb0c2) | code = NXVC_VENDOR_ERROR (0)
//!                | vendor = 0x00002320 (4) | type (2) | code (2) | the request's first 64 bytes
//! ```

use crate::error_msg::{ErrorMsg, ErrorType, OFFENDING_BYTES};
use crate::nicira::NX_VENDOR_ID;

/// NXET_VENDOR: the error type of a vendor error in OpenFlow 1.0.
pub const NXET_VENDOR: u16 = 0xb0c2;

/// An error as OpenFlow 1.0 carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code10 {
    /// A 1.0 type and code.
    Std(u16, u16),
    /// A Nicira (type, code) inside an NXET_VENDOR error.
    Nx(u16, u16),
}

/// NXBRC_UNENCODABLE_ERROR: what an error without a 1.0 form becomes.
const UNENCODABLE: Code10 = Code10::Nx(1, 521);

/// The 1.0 form of the OpenFlow 1.3 error (`ty`, `code`), per Open vSwitch's
/// table of encodings.
pub fn encode(ty: ErrorType, code: u16) -> Code10 {
    use Code10::{Nx, Std};
    use ErrorType as T;
    match (ty, code) {
        (T::HelloFailed, c) => Std(0, c),
        (T::BadRequest, c @ 0..=8) => Std(1, c),
        (T::BadRequest, 9) => Nx(1, 512),
        (T::BadRequest, 10) => Std(1, 5),
        (T::BadRequest, 11) => Nx(1, 514),
        (T::BadAction, c @ 0..=8) => Std(2, c),
        (T::BadAction, 9) => Nx(2, 9),
        (T::BadAction, 10) => Nx(1, 522),
        (T::BadAction, c @ 13..=15) => Nx(1, 510 + c),
        (T::BadInstruction, 1) => Nx(2, 257),
        (T::BadMatch, 0 | 1) => Nx(1, 256),
        (T::BadMatch, 5) => Nx(1, 262),
        (T::BadMatch, 6) => Nx(0, 263),
        (T::BadMatch, 7) => Nx(1, 258),
        (T::BadMatch, c @ 8..=10) => Nx(1, 251 + c),
        (T::FlowModFailed, 1) => Std(3, 0),
        (T::FlowModFailed, 2) => Nx(5, 257),
        (T::FlowModFailed, 3) => Std(3, 1),
        (T::FlowModFailed, 4) => Std(3, 2),
        (T::FlowModFailed, 6) => Std(3, 4),
        (T::FlowModFailed, 7) => Nx(3, 258),
        (T::GroupModFailed, c) => Nx(6, c),
        (T::PortModFailed, c @ 0..=1) => Std(4, c),
        (T::QueueOpFailed, c @ 0..=2) => Std(5, c),
        (T::RoleRequestFailed, 2) => Nx(1, 513),
        _ => UNENCODABLE,
    }
}

/// The OFPT_ERROR body (1.0 form) for the 1.3 error (`ty`, `code`) about
/// `offending`, which carries its first 64 bytes.
pub fn error_msg(ty: ErrorType, code: u16, offending: &[u8]) -> ErrorMsg {
    let data = &offending[..offending.len().min(OFFENDING_BYTES)];
    match encode(ty, code) {
        Code10::Std(t, c) => ErrorMsg {
            err_type: ErrorType::from_u16(t),
            code: c,
            experimenter: None,
            data: data.to_vec(),
        },
        Code10::Nx(t, c) => {
            let mut d = NX_VENDOR_ID.to_be_bytes().to_vec();
            d.extend_from_slice(&t.to_be_bytes());
            d.extend_from_slice(&c.to_be_bytes());
            d.extend_from_slice(data);
            ErrorMsg {
                err_type: ErrorType::from_u16(NXET_VENDOR),
                code: 0,
                experimenter: None,
                data: d,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_msg::{bad_action, bad_match, flow_mod_failed};

    #[test]
    fn codes_as_ovs_encodes_them() {
        assert_eq!(
            encode(ErrorType::BadAction, bad_action::BAD_OUT_PORT),
            Code10::Std(2, 4)
        );
        assert_eq!(
            encode(ErrorType::BadAction, bad_action::MATCH_INCONSISTENT),
            Code10::Nx(1, 522)
        );
        assert_eq!(
            encode(ErrorType::BadAction, bad_action::BAD_SET_ARGUMENT),
            Code10::Nx(1, 525)
        );
        assert_eq!(
            encode(ErrorType::BadMatch, bad_match::BAD_PREREQ),
            Code10::Nx(1, 260)
        );
        assert_eq!(
            encode(ErrorType::BadMatch, bad_match::DUP_FIELD),
            Code10::Nx(1, 261)
        );
        assert_eq!(
            encode(ErrorType::FlowModFailed, flow_mod_failed::OVERLAP),
            Code10::Std(3, 1)
        );
        assert_eq!(encode(ErrorType::SwitchConfigFailed, 0), UNENCODABLE);
        let m = error_msg(
            ErrorType::BadMatch,
            bad_match::BAD_PREREQ,
            &[1, 14, 0, 8, 0, 0, 0, 5],
        );
        assert_eq!(m.err_type.to_u16(), NXET_VENDOR);
        assert_eq!(
            m.data,
            [0, 0, 0x23, 0x20, 0, 1, 1, 4, 1, 14, 0, 8, 0, 0, 0, 5]
        );
    }
}
