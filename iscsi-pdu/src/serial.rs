//! Serial number arithmetic (RFC 1982 with SERIAL_BITS = 32), used for CmdSN, StatSN,
//! DataSN and R2TSN (RFC 7143 section 4.2.2.1: "comparisons and arithmetic on
//! them use serial number arithmetic as defined in \[RFC1982\]").

use core::cmp::Ordering;

/// A 32-bit sequence number compared with RFC 1982 serial arithmetic.
///
/// `partial_cmp` returns `None` for the pair the RFC leaves undefined (exactly 2^31 apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SerialNumber(pub u32);

impl SerialNumber {
    /// Adds `n` (RFC 1982 section 3.1 allows 0..=2^31-1).
    pub fn plus(self, n: u32) -> SerialNumber {
        debug_assert!(n < 1 << 31);
        SerialNumber(self.0.wrapping_add(n))
    }

    /// Distance from `self` forward to `other`, when `other` is not before `self`.
    pub fn distance_to(self, other: SerialNumber) -> Option<u32> {
        match self.partial_cmp(&other) {
            Some(Ordering::Less) | Some(Ordering::Equal) => Some(other.0.wrapping_sub(self.0)),
            _ => None,
        }
    }

    /// `self < other` in serial arithmetic (false when undefined).
    pub fn lt(self, other: SerialNumber) -> bool {
        matches!(self.partial_cmp(&other), Some(Ordering::Less))
    }

    /// `self <= other` in serial arithmetic (false when undefined).
    pub fn le(self, other: SerialNumber) -> bool {
        matches!(
            self.partial_cmp(&other),
            Some(Ordering::Less) | Some(Ordering::Equal)
        )
    }
}

impl PartialOrd for SerialNumber {
    fn partial_cmp(&self, other: &SerialNumber) -> Option<Ordering> {
        // RFC 1982 section 3.2: i1 < i2 iff (i1 < i2 and i2 - i1 < 2^31)
        // or (i1 > i2 and i1 - i2 > 2^31).
        let (i1, i2) = (self.0, other.0);
        if i1 == i2 {
            return Some(Ordering::Equal);
        }
        let d = i2.wrapping_sub(i1);
        match d.cmp(&(1u32 << 31)) {
            Ordering::Less => Some(Ordering::Less),
            Ordering::Greater => Some(Ordering::Greater),
            Ordering::Equal => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_without_wrap() {
        assert!(SerialNumber(1).lt(SerialNumber(2)));
        assert!(!SerialNumber(2).lt(SerialNumber(1)));
        assert!(SerialNumber(5).le(SerialNumber(5)));
    }

    #[test]
    fn ordering_across_wrap() {
        assert!(SerialNumber(u32::MAX).lt(SerialNumber(0)));
        assert!(SerialNumber(0xffff_fff0).lt(SerialNumber(0x10)));
        assert!(!SerialNumber(0x10).lt(SerialNumber(0xffff_fff0)));
        assert_eq!(SerialNumber(u32::MAX).plus(2), SerialNumber(1));
        assert_eq!(SerialNumber(u32::MAX).distance_to(SerialNumber(3)), Some(4));
        assert_eq!(SerialNumber(3).distance_to(SerialNumber(u32::MAX)), None);
    }

    #[test]
    fn undefined_half_way() {
        assert_eq!(SerialNumber(0).partial_cmp(&SerialNumber(1 << 31)), None);
        assert!(!SerialNumber(0).lt(SerialNumber(1 << 31)));
        assert!(!SerialNumber(1 << 31).lt(SerialNumber(0)));
    }

    #[test]
    fn rfc1982_examples() {
        // RFC 1982 section 5.2 with SERIAL_BITS = 2 scaled to 32 bits: 0 < 1 < 2^31-1 < 2^31+1 < 0.
        let a = SerialNumber(0);
        let b = SerialNumber((1 << 31) - 1);
        let c = SerialNumber((1 << 31) + 1);
        assert!(a.lt(b));
        assert!(b.lt(c));
        assert!(c.lt(a));
    }
}
