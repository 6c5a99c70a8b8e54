//! Login Request and Response (RFC 7143 sections 11.12 and 11.13).

use crate::bhs::{field, Bhs};
use crate::{Opcode, Result};

const TRANSIT: u8 = 0x80;
const CONTINUE: u8 = 0x40;

/// Login stages (section 11.12.3: CSG and NSG).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// 0: SecurityNegotiation.
    Security,
    /// 1: LoginOperationalNegotiation.
    Operational,
    /// 3: FullFeaturePhase.
    FullFeature,
    /// 2: reserved, preserved so a malformed PDU can be reported.
    Reserved,
}

impl Stage {
    fn from_bits(v: u8) -> Stage {
        match v & 3 {
            0 => Stage::Security,
            1 => Stage::Operational,
            3 => Stage::FullFeature,
            _ => Stage::Reserved,
        }
    }
    fn bits(self) -> u8 {
        match self {
            Stage::Security => 0,
            Stage::Operational => 1,
            Stage::Reserved => 2,
            Stage::FullFeature => 3,
        }
    }
}

/// Login Request header; the data segment is a text key=value list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginRequest {
    /// T bit: the initiator is ready to move to `nsg`.
    pub transit: bool,
    /// C bit: the text continues in the next PDU.
    pub continue_flag: bool,
    /// Current stage.
    pub csg: Stage,
    /// Next stage (valid with T).
    pub nsg: Stage,
    /// Version-max.
    pub version_max: u8,
    /// Version-min.
    pub version_min: u8,
    /// ISID (6 bytes).
    pub isid: [u8; 6],
    /// TSIH: 0 for a new session (or reinstatement), else the session's.
    pub tsih: u16,
    /// Initiator Task Tag.
    pub itt: u32,
    /// Connection ID.
    pub cid: u16,
    /// CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN.
    pub exp_stat_sn: u32,
}

impl LoginRequest {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<LoginRequest> {
        let f = b.flags();
        let mut isid = [0u8; 6];
        isid.copy_from_slice(&b.as_bytes()[field::ISID]);
        Ok(LoginRequest {
            transit: f & TRANSIT != 0,
            continue_flag: f & CONTINUE != 0,
            csg: Stage::from_bits(f >> 2),
            nsg: Stage::from_bits(f),
            version_max: b.byte(field::BYTE2),
            version_min: b.byte(field::BYTE3),
            isid,
            tsih: b.u16_at(field::TSIH),
            itt: b.itt(),
            cid: b.u16_at(field::CID),
            cmd_sn: b.u32_at(field::CMD_SN),
            exp_stat_sn: b.u32_at(field::EXP_STAT_SN),
        })
    }

    /// Emits into a cleared BHS. Login requests are always immediate (section 11.12).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::LoginRequest, true);
        b.set_flags(stage_flags(
            self.transit,
            self.continue_flag,
            self.csg,
            self.nsg,
        ));
        b.set_byte(field::BYTE2, self.version_max);
        b.set_byte(field::BYTE3, self.version_min);
        b.field_mut(field::ISID).copy_from_slice(&self.isid);
        b.set_u16_at(field::TSIH, self.tsih);
        b.set_itt(self.itt);
        b.set_u16_at(field::CID, self.cid);
        b.set_u32_at(field::CMD_SN, self.cmd_sn);
        b.set_u32_at(field::EXP_STAT_SN, self.exp_stat_sn);
    }
}

fn stage_flags(transit: bool, cont: bool, csg: Stage, nsg: Stage) -> u8 {
    let mut f = (csg.bits() << 2) | nsg.bits();
    if transit {
        f |= TRANSIT;
    }
    if cont {
        f |= CONTINUE;
    }
    f
}

/// Login Response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginResponse {
    /// T bit.
    pub transit: bool,
    /// C bit.
    pub continue_flag: bool,
    /// Current stage.
    pub csg: Stage,
    /// Next stage.
    pub nsg: Stage,
    /// Version-max.
    pub version_max: u8,
    /// Version-active.
    pub version_active: u8,
    /// ISID.
    pub isid: [u8; 6],
    /// TSIH assigned by the target (on the final response).
    pub tsih: u16,
    /// Initiator Task Tag.
    pub itt: u32,
    /// StatSN.
    pub stat_sn: u32,
    /// ExpCmdSN.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN.
    pub max_cmd_sn: u32,
    /// Status-Class (section 11.13.5): 0 success, 1 redirect, 2 initiator error,
    /// 3 target error.
    pub status_class: u8,
    /// Status-Detail.
    pub status_detail: u8,
}

impl LoginResponse {
    /// Parses from a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<LoginResponse> {
        let f = b.flags();
        let mut isid = [0u8; 6];
        isid.copy_from_slice(&b.as_bytes()[field::ISID]);
        Ok(LoginResponse {
            transit: f & TRANSIT != 0,
            continue_flag: f & CONTINUE != 0,
            csg: Stage::from_bits(f >> 2),
            nsg: Stage::from_bits(f),
            version_max: b.byte(field::BYTE2),
            version_active: b.byte(field::BYTE3),
            isid,
            tsih: b.u16_at(field::TSIH),
            itt: b.itt(),
            stat_sn: b.u32_at(field::STAT_SN),
            exp_cmd_sn: b.u32_at(field::EXP_CMD_SN),
            max_cmd_sn: b.u32_at(field::MAX_CMD_SN),
            status_class: b.byte(field::STATUS_CLASS),
            status_detail: b.byte(field::STATUS_DETAIL),
        })
    }

    /// Emits into a cleared BHS.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.set_opcode(Opcode::LoginResponse, false);
        b.set_flags(stage_flags(
            self.transit,
            self.continue_flag,
            self.csg,
            self.nsg,
        ));
        b.set_byte(field::BYTE2, self.version_max);
        b.set_byte(field::BYTE3, self.version_active);
        b.field_mut(field::ISID).copy_from_slice(&self.isid);
        b.set_u16_at(field::TSIH, self.tsih);
        b.set_itt(self.itt);
        b.set_u32_at(field::STAT_SN, self.stat_sn);
        b.set_u32_at(field::EXP_CMD_SN, self.exp_cmd_sn);
        b.set_u32_at(field::MAX_CMD_SN, self.max_cmd_sn);
        b.set_byte(field::STATUS_CLASS, self.status_class);
        b.set_byte(field::STATUS_DETAIL, self.status_detail);
    }
}
