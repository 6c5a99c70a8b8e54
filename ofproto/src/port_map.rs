//! OpenFlow port numbers ↔ switch port numbers.
//!
//! They are the same numbers (1..=63; `vswitch run --ovsdb` numbers
//! interfaces from 1, or as `ofport_request` says), except the bridge's
//! own internal port: OpenFlow's reserved `LOCAL` port, which the switch
//! keeps as an ordinary port number (0 when it was free).

/// OpenFlow 1.3 `OFPP_LOCAL`.
pub const OFPP_LOCAL: u32 = 0xffff_fffe;
/// Highest OpenFlow number of a physical port (`OFPP_MAX`).
pub const OFPP_MAX: u32 = 0xffff_ff00;

/// The numbering of one bridge's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMap {
    local: Option<u16>,
}

impl PortMap {
    /// A map whose `LOCAL` port is switch port `local` (if the bridge has one).
    pub fn new(local: Option<u16>) -> PortMap {
        PortMap { local }
    }

    /// The switch port behind OpenFlow port `p`, if it can exist.
    pub fn to_switch(&self, p: u32) -> Option<u16> {
        if p == OFPP_LOCAL {
            return self.local;
        }
        if p == 0 || p > u32::from(switch::verdict::MAX_PORTS - 1) {
            return None;
        }
        let no = p as u16;
        (Some(no) != self.local).then_some(no)
    }

    /// The OpenFlow number of switch port `no`.
    pub fn to_openflow(&self, no: u16) -> u32 {
        if Some(no) == self.local {
            OFPP_LOCAL
        } else {
            u32::from(no)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_plain_numbers() {
        let m = PortMap::new(Some(0));
        assert_eq!(m.to_switch(OFPP_LOCAL), Some(0));
        assert_eq!(m.to_switch(0), None);
        assert_eq!(m.to_switch(5), Some(5));
        assert_eq!(m.to_switch(64), None);
        assert_eq!(m.to_openflow(0), OFPP_LOCAL);
        assert_eq!(m.to_openflow(7), 7);
        let n = PortMap::new(None);
        assert_eq!(n.to_switch(OFPP_LOCAL), None);
    }
}
