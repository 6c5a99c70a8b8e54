//! Typed representations of every PDU, one module per PDU family.
//!
//! Each representation parses from and emits into a [`Bhs`] view; the data segment and
//! the AHS are handled by [`crate::frame`], so representations are `Copy` and never
//! allocate.

mod async_message;
mod data;
mod login;
mod logout;
mod nop;
mod r2t;
mod reject;
mod scsi_command;
mod scsi_response;
mod snack;
mod task_mgmt;
mod text_pdu;

pub use async_message::{event as async_event, AsyncMessage};
pub use data::{DataIn, DataOut};
pub use login::{LoginRequest, LoginResponse, Stage};
pub use logout::{reason as logout_reason, LogoutRequest, LogoutResponse};
pub use nop::{NopIn, NopOut, RESERVED_TAG};
pub use r2t::R2t;
pub use reject::Reject;
pub use scsi_command::{ScsiCommand, TaskAttribute};
pub use scsi_response::ScsiResponse;
pub use snack::Snack;
pub use task_mgmt::{function as tmf, TaskMgmtRequest, TaskMgmtResponse};
pub use text_pdu::{TextRequest, TextResponse};

use crate::{Bhs, Opcode, Result};

/// Any iSCSI PDU header, initiator or target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pdu {
    /// NOP-Out.
    NopOut(NopOut),
    /// SCSI Command.
    ScsiCommand(ScsiCommand),
    /// Task Management Function Request.
    TaskMgmtRequest(TaskMgmtRequest),
    /// Login Request.
    LoginRequest(LoginRequest),
    /// Text Request.
    TextRequest(TextRequest),
    /// SCSI Data-Out.
    DataOut(DataOut),
    /// Logout Request.
    LogoutRequest(LogoutRequest),
    /// SNACK Request.
    Snack(Snack),
    /// NOP-In.
    NopIn(NopIn),
    /// SCSI Response.
    ScsiResponse(ScsiResponse),
    /// Task Management Function Response.
    TaskMgmtResponse(TaskMgmtResponse),
    /// Login Response.
    LoginResponse(LoginResponse),
    /// Text Response.
    TextResponse(TextResponse),
    /// SCSI Data-In.
    DataIn(DataIn),
    /// Logout Response.
    LogoutResponse(LogoutResponse),
    /// Ready To Transfer.
    R2t(R2t),
    /// Asynchronous Message.
    AsyncMessage(AsyncMessage),
    /// Reject.
    Reject(Reject),
}

impl Pdu {
    /// Parses the header of a checked BHS.
    pub fn parse<T: AsRef<[u8]>>(b: &Bhs<T>) -> Result<Pdu> {
        b.check_len()?;
        Ok(match b.opcode()? {
            Opcode::NopOut => Pdu::NopOut(NopOut::parse(b)?),
            Opcode::ScsiCommand => Pdu::ScsiCommand(ScsiCommand::parse(b)?),
            Opcode::TaskMgmtRequest => Pdu::TaskMgmtRequest(TaskMgmtRequest::parse(b)?),
            Opcode::LoginRequest => Pdu::LoginRequest(LoginRequest::parse(b)?),
            Opcode::TextRequest => Pdu::TextRequest(TextRequest::parse(b)?),
            Opcode::DataOut => Pdu::DataOut(DataOut::parse(b)?),
            Opcode::LogoutRequest => Pdu::LogoutRequest(LogoutRequest::parse(b)?),
            Opcode::Snack => Pdu::Snack(Snack::parse(b)?),
            Opcode::NopIn => Pdu::NopIn(NopIn::parse(b)?),
            Opcode::ScsiResponse => Pdu::ScsiResponse(ScsiResponse::parse(b)?),
            Opcode::TaskMgmtResponse => Pdu::TaskMgmtResponse(TaskMgmtResponse::parse(b)?),
            Opcode::LoginResponse => Pdu::LoginResponse(LoginResponse::parse(b)?),
            Opcode::TextResponse => Pdu::TextResponse(TextResponse::parse(b)?),
            Opcode::DataIn => Pdu::DataIn(DataIn::parse(b)?),
            Opcode::LogoutResponse => Pdu::LogoutResponse(LogoutResponse::parse(b)?),
            Opcode::R2t => Pdu::R2t(R2t::parse(b)?),
            Opcode::AsyncMessage => Pdu::AsyncMessage(AsyncMessage::parse(b)?),
            Opcode::Reject => Pdu::Reject(Reject::parse(b)?),
        })
    }

    /// Clears the BHS and emits this header into it. TotalAHSLength and
    /// DataSegmentLength are left 0 for [`crate::frame`] to fill.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Bhs<T>) {
        b.clear();
        match self {
            Pdu::NopOut(p) => p.emit(b),
            Pdu::ScsiCommand(p) => p.emit(b),
            Pdu::TaskMgmtRequest(p) => p.emit(b),
            Pdu::LoginRequest(p) => p.emit(b),
            Pdu::TextRequest(p) => p.emit(b),
            Pdu::DataOut(p) => p.emit(b),
            Pdu::LogoutRequest(p) => p.emit(b),
            Pdu::Snack(p) => p.emit(b),
            Pdu::NopIn(p) => p.emit(b),
            Pdu::ScsiResponse(p) => p.emit(b),
            Pdu::TaskMgmtResponse(p) => p.emit(b),
            Pdu::LoginResponse(p) => p.emit(b),
            Pdu::TextResponse(p) => p.emit(b),
            Pdu::DataIn(p) => p.emit(b),
            Pdu::LogoutResponse(p) => p.emit(b),
            Pdu::R2t(p) => p.emit(b),
            Pdu::AsyncMessage(p) => p.emit(b),
            Pdu::Reject(p) => p.emit(b),
        }
    }

    /// The opcode of this PDU.
    pub fn opcode(&self) -> Opcode {
        match self {
            Pdu::NopOut(_) => Opcode::NopOut,
            Pdu::ScsiCommand(_) => Opcode::ScsiCommand,
            Pdu::TaskMgmtRequest(_) => Opcode::TaskMgmtRequest,
            Pdu::LoginRequest(_) => Opcode::LoginRequest,
            Pdu::TextRequest(_) => Opcode::TextRequest,
            Pdu::DataOut(_) => Opcode::DataOut,
            Pdu::LogoutRequest(_) => Opcode::LogoutRequest,
            Pdu::Snack(_) => Opcode::Snack,
            Pdu::NopIn(_) => Opcode::NopIn,
            Pdu::ScsiResponse(_) => Opcode::ScsiResponse,
            Pdu::TaskMgmtResponse(_) => Opcode::TaskMgmtResponse,
            Pdu::LoginResponse(_) => Opcode::LoginResponse,
            Pdu::TextResponse(_) => Opcode::TextResponse,
            Pdu::DataIn(_) => Opcode::DataIn,
            Pdu::LogoutResponse(_) => Opcode::LogoutResponse,
            Pdu::R2t(_) => Opcode::R2t,
            Pdu::AsyncMessage(_) => Opcode::AsyncMessage,
            Pdu::Reject(_) => Opcode::Reject,
        }
    }
}
