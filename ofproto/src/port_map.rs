//! OpenFlow port numbers ↔ switch port numbers.
//!
//! They are the same numbers (1..=62; `vswitch run --ovsdb` numbers
//! interfaces from 1, or as `ofport_request` says), except two reserved
//! ports: the bridge's own internal port, OpenFlow's `LOCAL`, which the
//! switch keeps as an ordinary port number (0 when it was free), and
//! OpenFlow's `CONTROLLER`, the switch's controller channel
//! ([`switch::verdict::CONTROLLER_PORT`]).

use switch::verdict::CONTROLLER_PORT;

/// OpenFlow 1.3 `OFPP_LOCAL`.
pub const OFPP_LOCAL: u32 = 0xffff_fffe;
/// Highest OpenFlow number of a physical port (`OFPP_MAX`).
pub const OFPP_MAX: u32 = 0xffff_ff00;
/// OpenFlow 1.3 `OFPP_CONTROLLER`.
pub const OFPP_CONTROLLER: u32 = 0xffff_fffd;

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
        if p == OFPP_CONTROLLER {
            return Some(CONTROLLER_PORT);
        }
        if p == 0 || p >= u32::from(CONTROLLER_PORT) {
            return None;
        }
        let no = p as u16;
        (Some(no) != self.local).then_some(no)
    }

    /// The OpenFlow number of switch port `no`.
    pub fn to_openflow(&self, no: u16) -> u32 {
        if Some(no) == self.local {
            OFPP_LOCAL
        } else if no == CONTROLLER_PORT {
            OFPP_CONTROLLER
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
        assert_eq!(m.to_switch(63), None, "63 is the controller channel");
        assert_eq!(m.to_switch(OFPP_CONTROLLER), Some(CONTROLLER_PORT));
        assert_eq!(m.to_openflow(CONTROLLER_PORT), OFPP_CONTROLLER);
        assert_eq!(m.to_openflow(0), OFPP_LOCAL);
        assert_eq!(m.to_openflow(7), 7);
        let n = PortMap::new(None);
        assert_eq!(n.to_switch(OFPP_LOCAL), None);
    }
}
