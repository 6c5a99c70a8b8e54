//! The accelerator's physical resources and how they are carved into
//! virtual functions: compute units (a bit mask), device memory (granule-
//! aligned windows), work queues, doorbells and interrupt vectors (index
//! ranges).
//!
//! [`Partition`] is pure state with no I/O: every operation either succeeds
//! and returns the new state, or fails with a [`Completion`] code and leaves
//! the state untouched. The configuration module (`config`) turns that into
//! register atomicity.

use super::command::{Caps, Completion, VfRequest, AUTO};

/// The physical resources of one accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Physical {
    /// Compute units (at most 64).
    pub cu: u32,
    /// Device memory in bytes (a multiple of `granule`).
    pub mem_size: u64,
    /// Memory allocation granule (a power of two, at least the page size).
    pub granule: u64,
    /// Work queues.
    pub queues: u32,
    /// Doorbells.
    pub doorbells: u32,
    /// Interrupt vectors.
    pub vectors: u32,
    /// Virtual function slots (at most `regs::MAX_VFS`).
    pub max_vfs: u32,
    /// Bytes per second one compute unit processes.
    pub cu_rate: u64,
}

impl Default for Physical {
    fn default() -> Self {
        Physical {
            cu: 8,
            mem_size: 64 << 20,
            granule: super::regs::MEM_GRANULE,
            queues: 64,
            doorbells: 64,
            vectors: 64,
            max_vfs: 16,
            cu_rate: 512 << 20,
        }
    }
}

impl Physical {
    /// Checks the description is one the register map can express.
    pub fn validate(&self) -> Result<(), String> {
        if self.cu == 0 || self.cu > 64 {
            return Err(format!("compute units must be 1..=64, got {}", self.cu));
        }
        if !self.granule.is_power_of_two() || self.granule < 4096 {
            return Err(format!(
                "granule must be a power of two >= 4096, got {}",
                self.granule
            ));
        }
        if self.mem_size == 0 || !self.mem_size.is_multiple_of(self.granule) {
            return Err(format!(
                "memory size must be a non-zero multiple of {}",
                self.granule
            ));
        }
        if self.max_vfs == 0 || self.max_vfs as usize > super::regs::MAX_VFS {
            return Err(format!("max VFs must be 1..={}", super::regs::MAX_VFS));
        }
        if self.vectors as usize > super::regs::MAX_VECTORS {
            return Err(format!(
                "interrupt vectors must be 1..={}",
                super::regs::MAX_VECTORS
            ));
        }
        if self.queues == 0 || self.doorbells == 0 || self.vectors == 0 || self.cu_rate == 0 {
            return Err("queues, doorbells, vectors and cu_rate must be non-zero".into());
        }
        Ok(())
    }

    fn all_cu(&self) -> u64 {
        if self.cu == 64 {
            u64::MAX
        } else {
            (1u64 << self.cu) - 1
        }
    }
}

/// A half-open range `[base, base + len)` of some resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First unit.
    pub base: u64,
    /// Number of units.
    pub len: u64,
}

impl Span {
    fn end(&self) -> u64 {
        self.base + self.len
    }

    fn overlaps(&self, o: &Span) -> bool {
        self.len != 0 && o.len != 0 && self.base < o.end() && o.base < self.end()
    }
}

/// The resources assigned to one virtual function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfResources {
    /// Compute-unit mask.
    pub cu_mask: u64,
    /// Memory window (bytes).
    pub mem: Span,
    /// Work queues.
    pub queues: Span,
    /// Doorbells.
    pub doorbells: Span,
    /// Interrupt vectors.
    pub vectors: Span,
    /// Compute-unit quota in permille.
    pub quota: u32,
    /// Resets since creation.
    pub resets: u32,
}

/// How the physical resources are currently divided among VFs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    phys: Physical,
    vfs: Vec<Option<VfResources>>,
}

/// Places `len` units in `[0, total)` avoiding `used`: the exact `want`
/// placement, or first fit when `want` is [`AUTO`].
fn place(total: u64, len: u64, want: u64, used: &[Span], align: u64) -> Result<Span, Completion> {
    if len > total {
        return Err(Completion::NoResources);
    }
    let free: u64 = total - used.iter().map(|s| s.len).sum::<u64>();
    if len > free {
        return Err(Completion::NoResources);
    }
    if want != AUTO {
        if !want.is_multiple_of(align) {
            return Err(Completion::InvalidArgument);
        }
        let end = want.checked_add(len).ok_or(Completion::InvalidArgument)?;
        if end > total {
            return Err(Completion::InvalidArgument);
        }
        let s = Span { base: want, len };
        if used.iter().any(|u| u.overlaps(&s)) {
            return Err(Completion::Overlap);
        }
        return Ok(s);
    }
    let mut sorted: Vec<Span> = used.iter().copied().filter(|s| s.len != 0).collect();
    sorted.sort_by_key(|s| s.base);
    let mut cursor = 0u64;
    for s in &sorted {
        if s.base >= cursor && s.base - cursor >= len {
            return Ok(Span { base: cursor, len });
        }
        cursor = cursor.max(s.end());
    }
    if total - cursor >= len {
        return Ok(Span { base: cursor, len });
    }
    // Enough in total but fragmented: still a lack of (contiguous) resources.
    Err(Completion::NoResources)
}

impl Partition {
    /// An undivided device.
    pub fn new(phys: Physical) -> Self {
        Partition {
            phys,
            vfs: vec![None; phys.max_vfs as usize],
        }
    }

    /// The physical resources.
    pub fn physical(&self) -> &Physical {
        &self.phys
    }

    /// The resources of `vf`, if it exists.
    pub fn vf(&self, vf: u32) -> Option<&VfResources> {
        self.vfs.get(vf as usize).and_then(|v| v.as_ref())
    }

    /// Existing VFs in number order.
    pub fn vfs(&self) -> impl Iterator<Item = (u32, &VfResources)> {
        self.vfs
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|r| (i as u32, r)))
    }

    fn used(&self, f: impl Fn(&VfResources) -> Span) -> Vec<Span> {
        self.vfs.iter().flatten().map(f).collect()
    }

    /// Compute units not assigned to any VF.
    pub fn free_cu_mask(&self) -> u64 {
        self.phys.all_cu() & !self.vfs.iter().flatten().fold(0, |m, v| m | v.cu_mask)
    }

    /// Capabilities and free resources.
    pub fn caps(&self) -> Caps {
        let used_mem: u64 = self.vfs.iter().flatten().map(|v| v.mem.len).sum();
        Caps {
            cu: self.phys.cu,
            max_vfs: self.phys.max_vfs,
            queues: self.phys.queues,
            doorbells: self.phys.doorbells,
            vectors: self.phys.vectors,
            granule: self.phys.granule as u32,
            mem_size: self.phys.mem_size,
            cu_rate: self.phys.cu_rate,
            ring_size: super::regs::queue::RING_SIZE,
            free_cu_mask: self.free_cu_mask(),
            free_mem: self.phys.mem_size - used_mem,
        }
    }

    /// Creates a VF; returns its number and resources. On error `self` is
    /// unchanged.
    pub fn create(&mut self, r: &VfRequest) -> Result<(u32, VfResources), Completion> {
        let slot = self
            .vfs
            .iter()
            .position(|v| v.is_none())
            .ok_or(Completion::NoFreeVf)?;
        // Compute units.
        let free_cu = self.free_cu_mask();
        let cu_mask = if r.cu_mask != 0 {
            if r.cu_mask & !self.phys.all_cu() != 0 {
                return Err(Completion::InvalidArgument);
            }
            if r.cu_count != 0 && r.cu_count != r.cu_mask.count_ones() {
                return Err(Completion::InvalidArgument);
            }
            if r.cu_mask & !free_cu != 0 {
                return Err(Completion::Overlap);
            }
            r.cu_mask
        } else {
            if r.cu_count == 0 {
                return Err(Completion::InvalidArgument);
            }
            if r.cu_count > free_cu.count_ones() {
                return Err(Completion::NoResources);
            }
            let mut m = 0u64;
            let mut left = r.cu_count;
            for bit in 0..64 {
                if left == 0 {
                    break;
                }
                if free_cu & (1 << bit) != 0 {
                    m |= 1 << bit;
                    left -= 1;
                }
            }
            m
        };
        // Memory.
        if r.mem_size == 0 || !r.mem_size.is_multiple_of(self.phys.granule) {
            return Err(Completion::InvalidArgument);
        }
        let mem = place(
            self.phys.mem_size,
            r.mem_size,
            r.mem_base,
            &self.used(|v| v.mem),
            self.phys.granule,
        )?;
        // Queues, doorbells, vectors.
        if r.queues == 0 {
            return Err(Completion::InvalidArgument);
        }
        let queues = place(
            self.phys.queues.into(),
            r.queues.into(),
            r.queue_base,
            &self.used(|v| v.queues),
            1,
        )?;
        let nd = if r.doorbells == 0 {
            r.queues
        } else {
            r.doorbells
        };
        if nd < r.queues {
            // Every queue needs its doorbell.
            return Err(Completion::InvalidArgument);
        }
        let doorbells = place(
            self.phys.doorbells.into(),
            nd.into(),
            AUTO,
            &self.used(|v| v.doorbells),
            1,
        )?;
        let nv = if r.vectors == 0 { 1 } else { r.vectors };
        let vectors = place(
            self.phys.vectors.into(),
            nv.into(),
            AUTO,
            &self.used(|v| v.vectors),
            1,
        )?;
        let res = VfResources {
            cu_mask,
            mem,
            queues,
            doorbells,
            vectors,
            quota: 1000,
            resets: 0,
        };
        self.vfs[slot] = Some(res);
        Ok((slot as u32, res))
    }

    /// Destroys a VF and returns its resources.
    pub fn destroy(&mut self, vf: u32) -> Result<VfResources, Completion> {
        let slot = self.vfs.get_mut(vf as usize).ok_or(Completion::NoSuchVf)?;
        slot.take().ok_or(Completion::NoSuchVf)
    }

    /// Sets a VF's quota (1..=1000 permille).
    pub fn set_quota(&mut self, vf: u32, permille: u32) -> Result<(), Completion> {
        let v = self
            .vfs
            .get_mut(vf as usize)
            .and_then(|v| v.as_mut())
            .ok_or(Completion::NoSuchVf)?;
        if permille == 0 || permille > 1000 {
            return Err(Completion::InvalidArgument);
        }
        v.quota = permille;
        Ok(())
    }

    /// Counts a reset of a VF.
    pub fn reset(&mut self, vf: u32) -> Result<(), Completion> {
        let v = self
            .vfs
            .get_mut(vf as usize)
            .and_then(|v| v.as_mut())
            .ok_or(Completion::NoSuchVf)?;
        v.resets = v.resets.wrapping_add(1);
        Ok(())
    }

    /// Checks the invariants: no two VFs share any resource and every
    /// resource lies inside the device.
    pub fn check_invariants(&self) -> Result<(), String> {
        let all: Vec<(u32, &VfResources)> = self.vfs().collect();
        for (i, (a, ra)) in all.iter().enumerate() {
            if ra.cu_mask & !self.phys.all_cu() != 0 || ra.cu_mask == 0 {
                return Err(format!("vf{a}: bad cu mask {:#x}", ra.cu_mask));
            }
            if ra.mem.end() > self.phys.mem_size
                || ra.queues.end() > self.phys.queues.into()
                || ra.doorbells.end() > self.phys.doorbells.into()
                || ra.vectors.end() > self.phys.vectors.into()
            {
                return Err(format!("vf{a}: resource outside the device"));
            }
            for (b, rb) in &all[i + 1..] {
                if ra.cu_mask & rb.cu_mask != 0
                    || ra.mem.overlaps(&rb.mem)
                    || ra.queues.overlaps(&rb.queues)
                    || ra.doorbells.overlaps(&rb.doorbells)
                    || ra.vectors.overlaps(&rb.vectors)
                {
                    return Err(format!("vf{a} and vf{b} share resources"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = super::super::regs::MEM_GRANULE;

    #[test]
    fn auto_placement_is_disjoint() {
        let mut p = Partition::new(Physical::default());
        let (a, ra) = p.create(&VfRequest::new(2, 4 * G, 2)).unwrap();
        let (b, rb) = p.create(&VfRequest::new(3, 2 * G, 1)).unwrap();
        assert_eq!((a, b), (0, 1));
        assert_eq!(ra.cu_mask, 0b11);
        assert_eq!(rb.cu_mask, 0b11100);
        assert_eq!(rb.mem.base, 4 * G);
        assert_eq!(rb.queues.base, 2);
        p.check_invariants().unwrap();
        p.destroy(a).unwrap();
        let (c, rc) = p.create(&VfRequest::new(1, G, 1)).unwrap();
        assert_eq!(c, 0);
        assert_eq!(rc.mem.base, 0);
        p.check_invariants().unwrap();
    }

    #[test]
    fn overcommit_and_overlap_rejected_without_change() {
        let mut p = Partition::new(Physical::default());
        p.create(&VfRequest::new(6, 32 << 20, 8)).unwrap();
        let before = p.clone();
        assert_eq!(
            p.create(&VfRequest::new(3, G, 1)),
            Err(Completion::NoResources)
        );
        assert_eq!(
            p.create(&VfRequest::new(1, 33 << 20, 1)),
            Err(Completion::NoResources)
        );
        assert_eq!(
            p.create(&VfRequest::new(1, G, 57)),
            Err(Completion::NoResources)
        );
        let mut r = VfRequest::new(0, G, 1);
        r.cu_mask = 0b1;
        assert_eq!(p.create(&r), Err(Completion::Overlap));
        let mut r = VfRequest::new(1, G, 1);
        r.mem_base = 31 << 20;
        assert_eq!(p.create(&r), Err(Completion::Overlap));
        let mut r = VfRequest::new(1, G, 1);
        r.queue_base = 7;
        assert_eq!(p.create(&r), Err(Completion::Overlap));
        let mut r = VfRequest::new(1, G, 1);
        r.mem_base = 40 << 20 | 4096;
        assert_eq!(p.create(&r), Err(Completion::InvalidArgument));
        let mut r = VfRequest::new(1, G, 1);
        r.mem_base = u64::MAX - G;
        assert_eq!(p.create(&r), Err(Completion::InvalidArgument));
        assert_eq!(
            p.create(&VfRequest::new(1, G + 1, 1)),
            Err(Completion::InvalidArgument)
        );
        assert_eq!(
            p.create(&VfRequest::new(0, G, 1)),
            Err(Completion::InvalidArgument)
        );
        assert_eq!(
            p.create(&VfRequest::new(1, G, 0)),
            Err(Completion::InvalidArgument)
        );
        assert_eq!(p, before);
    }
}
