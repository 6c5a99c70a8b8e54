//! The login phase (RFC 7143 section 6.3 and 11.12): security stage (AuthMethod None or
//! CHAP, one-way or mutual), then operational stage, then full feature phase.
//!
//! Pure state machine: it consumes Login Responses and produces the text and stage bits
//! of the next Login Request; the session frames them.

use crate::chap::{self, Chap};
use crate::negotiate::{Negotiator, Params, Proposal};
use crate::SessionError;
use iscsi_pdu::pdu::{LoginResponse, Stage};
use iscsi_pdu::text;

/// What the next Login Request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStep {
    /// CSG.
    pub csg: Stage,
    /// NSG.
    pub nsg: Stage,
    /// T bit.
    pub transit: bool,
    /// Text key=value data.
    pub data: Vec<u8>,
}

/// Login outcome of one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginProgress {
    /// Send another Login Request.
    Send(LoginStep),
    /// Full feature phase reached with these parameters.
    Done(Params),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// Sent AuthMethod=CHAP, waiting for the target's choice.
    Offered,
    /// Sent CHAP_A, waiting for CHAP_I/CHAP_C.
    AlgorithmSent,
    /// Sent CHAP_R; for mutual CHAP waiting to check the target's answer.
    Responded,
}

/// RFC 7143 section 11.13.5, Status-Class 1 (redirection): "the initiator
/// ... MUST ... reissue the login request to the TargetAddress" the response
/// carries (0x0101 moved temporarily, 0x0102 moved permanently).
fn redirect(r: &LoginResponse, data: &[u8]) -> SessionError {
    let address = text::pairs(data)
        .flatten()
        .find(|(k, _)| *k == "TargetAddress")
        .map(|(_, v)| v.to_owned());
    match address {
        Some(address) => SessionError::Redirected {
            address,
            permanent: r.status_detail == 0x02,
        },
        None => SessionError::Protocol(format!(
            "login redirect (status {:#04x}{:02x}) without a TargetAddress",
            r.status_class, r.status_detail
        )),
    }
}

/// The login state machine for one connection.
#[derive(Debug, Clone)]
pub struct Login {
    initiator_name: String,
    target_name: Option<String>,
    chap: Option<Chap>,
    negotiator: Negotiator,
    stage: Stage,
    auth: Auth,
    /// Text of a response split over several PDUs (C bit), reassembled.
    partial: Vec<u8>,
    /// Mutual CHAP: our identifier and challenge to the target.
    mutual_challenge: Option<(u8, Vec<u8>)>,
    /// Replies to keys the target offered.
    replies: Vec<(String, String)>,
    challenge_seed: u64,
}

impl Login {
    /// A login for a normal session (`target_name` set) or a discovery session.
    pub fn new(
        initiator_name: &str,
        target_name: Option<&str>,
        chap: Option<Chap>,
        proposal: &Proposal,
        challenge_seed: u64,
    ) -> Login {
        let mut p = *proposal;
        if target_name.is_none() {
            // Discovery sessions only need digests and the segment length.
            p.immediate_data = false;
            p.initial_r2t = true;
        }
        Login {
            initiator_name: initiator_name.to_owned(),
            target_name: target_name.map(str::to_owned),
            chap,
            negotiator: Negotiator::new(&p),
            stage: Stage::Security,
            auth: Auth::Offered,
            partial: Vec::new(),
            mutual_challenge: None,
            replies: Vec::new(),
            challenge_seed,
        }
    }

    fn names(&self, out: &mut Vec<u8>) {
        text::push(out, "InitiatorName", &self.initiator_name);
        match &self.target_name {
            Some(t) => {
                text::push(out, "TargetName", t);
                text::push(out, "SessionType", "Normal");
            }
            None => text::push(out, "SessionType", "Discovery"),
        }
    }

    fn operational_step(&self, first: bool) -> LoginStep {
        let mut data = Vec::new();
        if first {
            for (k, v) in self.negotiator.offered() {
                let discovery_key = matches!(
                    *k,
                    "HeaderDigest" | "DataDigest" | "MaxRecvDataSegmentLength"
                );
                if self.target_name.is_some() || discovery_key {
                    text::push(&mut data, k, v);
                }
            }
        }
        for (k, v) in &self.replies {
            text::push(&mut data, k, v);
        }
        LoginStep {
            csg: Stage::Operational,
            nsg: Stage::FullFeature,
            transit: true,
            data,
        }
    }

    /// The first Login Request.
    pub fn start(&mut self) -> LoginStep {
        let mut data = Vec::new();
        self.names(&mut data);
        if self.chap.is_some() {
            self.stage = Stage::Security;
            self.auth = Auth::Offered;
            text::push(&mut data, "AuthMethod", "CHAP");
            LoginStep {
                csg: Stage::Security,
                nsg: Stage::Operational,
                transit: false,
                data,
            }
        } else {
            // Section 6.3: the security stage may be skipped when no security is needed.
            self.stage = Stage::Operational;
            let mut s = self.operational_step(true);
            data.extend_from_slice(&s.data);
            s.data = data;
            s
        }
    }

    /// Processes a Login Response.
    pub fn on_response(
        &mut self,
        r: &LoginResponse,
        data: &[u8],
    ) -> Result<LoginProgress, SessionError> {
        if r.status_class == 1 {
            return Err(redirect(r, data));
        }
        if r.status_class != 0 {
            return Err(SessionError::LoginRejected {
                class: r.status_class,
                detail: r.status_detail,
            });
        }
        // Bound the reassembly: a target streaming endless C-bit responses is an error,
        // not an unbounded allocation.
        if self.partial.len() + data.len() > 64 << 10 {
            return Err(SessionError::Protocol(
                "login text over 64 KiB across continuations".into(),
            ));
        }
        self.partial.extend_from_slice(data);
        if r.continue_flag {
            // Section 11.13.3: answer a C-bit response with an empty request.
            return Ok(LoginProgress::Send(LoginStep {
                csg: self.stage,
                nsg: r.nsg,
                transit: false,
                data: Vec::new(),
            }));
        }
        let text_data = std::mem::take(&mut self.partial);
        let pairs = text::parse(&text_data)?;
        match (self.stage, r.csg) {
            (Stage::Security, Stage::Security) => self.on_security(r, &pairs),
            (Stage::Operational, Stage::Operational) => self.on_operational(r, &pairs),
            (ours, theirs) => Err(SessionError::Protocol(format!(
                "login response in stage {theirs:?} while we are in {ours:?}"
            ))),
        }
    }

    fn on_security(
        &mut self,
        r: &LoginResponse,
        pairs: &[(String, String)],
    ) -> Result<LoginProgress, SessionError> {
        let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        let chap = self
            .chap
            .clone()
            .ok_or_else(|| SessionError::Protocol("security stage without CHAP".into()))?;
        match self.auth {
            Auth::Offered => {
                match get("AuthMethod") {
                    Some("CHAP") => {}
                    other => {
                        return Err(SessionError::Auth(format!(
                            "target chose AuthMethod {other:?}, not CHAP"
                        )))
                    }
                }
                self.auth = Auth::AlgorithmSent;
                let mut data = Vec::new();
                // CHAP_A=5: MD5 (RFC 7143 section 12.1.3).
                text::push(&mut data, "CHAP_A", "5");
                Ok(LoginProgress::Send(LoginStep {
                    csg: Stage::Security,
                    nsg: Stage::Operational,
                    transit: false,
                    data,
                }))
            }
            Auth::AlgorithmSent => {
                if get("CHAP_A") != Some("5") {
                    return Err(SessionError::Auth("target did not accept CHAP_A=5".into()));
                }
                let id: u8 = get("CHAP_I")
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| SessionError::Auth("missing or bad CHAP_I".into()))?;
                let challenge = get("CHAP_C")
                    .and_then(chap::from_hex)
                    .ok_or_else(|| SessionError::Auth("missing or bad CHAP_C".into()))?;
                let resp = chap::response(id, chap.secret.as_bytes(), &challenge);
                let mut data = Vec::new();
                text::push(&mut data, "CHAP_N", &chap.user);
                text::push(&mut data, "CHAP_R", &chap::to_hex(&resp));
                if chap.mutual.is_some() {
                    let mut x = self.challenge_seed ^ 0x9e37_79b9_7f4a_7c15;
                    let mut c = Vec::with_capacity(16);
                    for _ in 0..16 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        c.push(x as u8);
                    }
                    let my_id = (x >> 8) as u8;
                    if c == challenge {
                        // Section 12.1.3: a reflected challenge must be refused.
                        c[0] ^= 0xff;
                    }
                    text::push(&mut data, "CHAP_I", &my_id.to_string());
                    text::push(&mut data, "CHAP_C", &chap::to_hex(&c));
                    self.mutual_challenge = Some((my_id, c));
                }
                self.auth = Auth::Responded;
                Ok(LoginProgress::Send(LoginStep {
                    csg: Stage::Security,
                    nsg: Stage::Operational,
                    transit: true,
                    data,
                }))
            }
            Auth::Responded => {
                if let (Some((name, secret)), Some((id, c))) =
                    (&chap.mutual, &self.mutual_challenge)
                {
                    if get("CHAP_N") != Some(name.as_str()) {
                        return Err(SessionError::Auth("target sent the wrong CHAP_N".into()));
                    }
                    let want = chap::response(*id, secret.as_bytes(), c);
                    if get("CHAP_R").and_then(chap::from_hex).as_deref() != Some(&want[..]) {
                        return Err(SessionError::Auth("target's CHAP_R is wrong".into()));
                    }
                }
                if !r.transit {
                    return Err(SessionError::Auth(
                        "target did not leave the security stage".into(),
                    ));
                }
                self.stage = Stage::Operational;
                Ok(LoginProgress::Send(self.operational_step(true)))
            }
        }
    }

    fn on_operational(
        &mut self,
        r: &LoginResponse,
        pairs: &[(String, String)],
    ) -> Result<LoginProgress, SessionError> {
        self.replies.clear();
        for (k, v) in pairs {
            if let Some(reply) = self.negotiator.on_target_key(k, v)? {
                self.replies.push(reply);
            }
        }
        if r.transit && r.nsg == Stage::FullFeature {
            return Ok(LoginProgress::Done(self.negotiator.finish()?));
        }
        Ok(LoginProgress::Send(self.operational_step(false)))
    }
}
