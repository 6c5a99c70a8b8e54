//! Per-zone connection counts and limits (OVS's `ct-set-limits`): a commit
//! in a zone at its limit is refused, the packet stays `+new` and
//! `limit_drops` counts it; connections already in the table keep flowing.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::mem::zeroed_slice;

const ZONES: usize = 1 << 16;

/// Counts and limits for the 65536 zones.
pub(crate) struct Zones {
    count: Box<[AtomicU32]>,
    /// 0: the default limit; n + 1: at most n connections.
    limit: Box<[AtomicU32]>,
    /// 0: no limit.
    default: u32,
}

impl Zones {
    /// All zones empty, limited by `default` (0: unlimited).
    pub(crate) fn new(default: u32) -> Zones {
        Zones {
            count: zeroed_slice(ZONES),
            limit: zeroed_slice(ZONES),
            default,
        }
    }

    /// Set (Some) or reset to the default (None) a zone's limit.
    pub(crate) fn set_limit(&self, zone: u16, limit: Option<u32>) {
        let v = limit.map_or(0, |n| n.saturating_add(1));
        self.limit[zone as usize].store(v, Relaxed);
    }

    /// The limit in force for `zone` (None: unlimited).
    pub(crate) fn limit(&self, zone: u16) -> Option<u32> {
        match self.limit[zone as usize].load(Relaxed) {
            0 if self.default == 0 => None,
            0 => Some(self.default),
            n => Some(n - 1),
        }
    }

    /// Take one connection of `zone`'s allowance; false if at the limit.
    #[inline]
    pub(crate) fn acquire(&self, zone: u16) -> bool {
        let c = &self.count[zone as usize];
        match self.limit(zone) {
            None => {
                c.fetch_add(1, Relaxed);
                true
            }
            Some(lim) => {
                if c.fetch_add(1, Relaxed) >= lim {
                    c.fetch_sub(1, Relaxed);
                    false
                } else {
                    true
                }
            }
        }
    }

    /// Give one back (a connection of `zone` ended).
    #[inline]
    pub(crate) fn release(&self, zone: u16) {
        self.count[zone as usize].fetch_sub(1, Relaxed);
    }

    /// Connections in `zone`.
    pub(crate) fn count(&self, zone: u16) -> u32 {
        self.count[zone as usize].load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_limit_default_and_override() {
        let z = Zones::new(2);
        assert!(z.acquire(3) && z.acquire(3));
        assert!(!z.acquire(3));
        assert_eq!(z.count(3), 2);
        z.set_limit(3, Some(3));
        assert!(z.acquire(3));
        assert!(!z.acquire(3));
        z.release(3);
        assert!(z.acquire(3));
        z.set_limit(4, Some(0));
        assert!(!z.acquire(4));
        let u = Zones::new(0);
        assert_eq!(u.limit(9), None);
        assert!((0..100).all(|_| u.acquire(9)));
    }
}
