//! Guest memory as the vhost library mapped it: the regions of the guest's
//! memory table (`rte_vhost_get_mem_table`: guest-physical start, size,
//! host address), and bounds-checked translation of guest-physical ranges.
//!
//! The guest is untrusted: a descriptor's address and length are only used
//! through [`GuestMem::translate`], which returns host pointers to ranges
//! that lie wholly inside one mapped region, or nothing.

/// At most this many regions (`VHOST_MEMORY_MAX_NREGIONS` in DPDK 22.11).
pub(crate) const MAX_REGIONS: usize = 8;

/// One mapped region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Region {
    /// Guest-physical start.
    pub gpa: u64,
    /// Size in bytes.
    pub size: u64,
    /// Host virtual address of `gpa`.
    pub host: u64,
}

/// The regions of one guest, with the last region a lookup hit.
#[derive(Debug, Clone, Default)]
pub(crate) struct GuestMem {
    regions: [Region; MAX_REGIONS],
    n: usize,
    last: usize,
}

impl GuestMem {
    /// A table of `regions` (those beyond [`MAX_REGIONS`], empty ones and
    /// those whose ends overflow are left out: nothing translates into
    /// them).
    pub(crate) fn new(regions: &[Region]) -> GuestMem {
        let mut m = GuestMem::default();
        for r in regions {
            let sound = r.size != 0
                && r.gpa.checked_add(r.size).is_some()
                && r.host.checked_add(r.size).is_some();
            if sound && m.n < MAX_REGIONS {
                m.regions[m.n] = *r;
                m.n += 1;
            }
        }
        m
    }

    /// The regions.
    #[cfg(test)]
    pub(crate) fn regions(&self) -> &[Region] {
        &self.regions[..self.n]
    }

    /// The host address of guest-physical `gpa` and how many bytes from
    /// there (at most `len`) lie in the same region; `None` when `gpa` is
    /// in no region.
    #[inline(always)]
    pub(crate) fn translate_part(&mut self, gpa: u64, len: u64) -> Option<(*mut u8, u64)> {
        // The last region hit, inline; the search out of line. (Inlined
        // whole, the search had every walk copy the eight regions to the
        // stack first: a dozen stores per chain, queued behind the
        // previous frame's stores into guest memory.)
        let r = &self.regions[self.last];
        let off = gpa.wrapping_sub(r.gpa);
        if self.last < self.n && off < r.size {
            // gpa >= r.gpa here: below it, the wrapped offset is at least
            // 2^64 - r.gpa > r.size (regions do not overflow, `new`).
            return Some(((r.host + off) as *mut u8, len.min(r.size - off)));
        }
        self.translate_search(gpa, len)
    }

    /// [`GuestMem::translate_part`] in the last region hit only: `None`
    /// elsewhere (no search, no call).
    #[inline(always)]
    pub(crate) fn translate_last(&self, gpa: u64, len: u64) -> Option<(*mut u8, u64)> {
        let r = &self.regions[self.last];
        let off = gpa.wrapping_sub(r.gpa);
        if self.last < self.n && off < r.size {
            // As in `translate_part`.
            return Some(((r.host + off) as *mut u8, len.min(r.size - off)));
        }
        None
    }

    /// [`GuestMem::translate_part`] outside the last region hit.
    #[cold]
    #[inline(never)]
    fn translate_search(&mut self, gpa: u64, len: u64) -> Option<(*mut u8, u64)> {
        let i = self.regions[..self.n]
            .iter()
            .position(|r| gpa >= r.gpa && gpa - r.gpa < r.size)?;
        self.last = i;
        let r = &self.regions[i];
        let off = gpa - r.gpa;
        Some(((r.host + off) as *mut u8, len.min(r.size - off)))
    }

    /// The host address of the whole range `gpa..gpa+len`, which must lie
    /// inside one region (`len` 0 needs `gpa` in a region).
    #[inline(always)]
    pub(crate) fn translate(&mut self, gpa: u64, len: u64) -> Option<*mut u8> {
        let (p, got) = self.translate_part(gpa, len)?;
        (got == len).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_must_lie_inside_one_region() {
        let mut m = GuestMem::new(&[
            Region {
                gpa: 0x1000,
                size: 0x1000,
                host: 0x10_0000,
            },
            Region {
                gpa: 0x4000,
                size: 0x2000,
                host: 0x20_0000,
            },
            // Overflowing and empty regions are refused.
            Region {
                gpa: u64::MAX - 1,
                size: 16,
                host: 0,
            },
            Region {
                gpa: 0x9000,
                size: 0,
                host: 0x30_0000,
            },
        ]);
        assert_eq!(m.regions().len(), 2);
        assert_eq!(m.translate(0x1000, 0x1000), Some(0x10_0000 as *mut u8));
        assert_eq!(m.translate(0x1800, 0x800), Some(0x10_0800 as *mut u8));
        assert_eq!(m.translate(0x1800, 0x801), None);
        assert_eq!(m.translate(0x2000, 1), None);
        assert_eq!(m.translate(0x5fff, 1), Some(0x20_1fff as *mut u8));
        assert_eq!(m.translate(0x0fff, 2), None);
        assert_eq!(m.translate(u64::MAX, 2), None);
        // A range crossing into a hole comes back in part.
        assert_eq!(
            m.translate_part(0x5000, 0x2000),
            Some((0x20_1000 as *mut u8, 0x1000))
        );
        assert_eq!(m.translate_part(0x3000, 1), None);
    }
}
