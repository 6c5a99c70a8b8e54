//! Inflight I/O tracking (vhost-user `INFLIGHT_SHMFD`) for split rings: a
//! shared-memory area the VMM keeps across back-end restarts, recording which
//! chains the back end had taken and not yet returned, so a restarted back end
//! resubmits them instead of losing them.
//!
//! The area's layout is the back end's own (the VMM only stores the fd). Per
//! queue, 64-byte aligned:
//!
//! ```text
//! header (16 bytes): le16 version, le16 desc_num, 12 bytes reserved, le64 counter
//! desc[desc_num] (16 bytes each): u8 inflight, u8 pending, le16 used_pos, 4 reserved, le64 counter
//! ```
//!
//! A chain is marked `inflight` when taken; when its used element is written,
//! `pending` and `used_pos` (the used index that publishes it) are set; after
//! the used index is published, `inflight` is cleared. Recovery treats a
//! pending chain whose `used_pos` the ring's used index has reached as done,
//! every other inflight chain as still to do (in `counter` order), and starts
//! the available ring at used index + that count. Unlike a single
//! "last batch head", this stays exact when a whole batch was published at
//! once.

use std::fs::File;
use std::os::unix::io::FromRawFd;
use std::ptr;
use std::sync::Arc;

use vm_memory::{FileOffset, MmapRegion};

const HEADER: usize = 16;
const DESC: usize = 16;

fn per_queue(queue_size: u16) -> usize {
    (HEADER + DESC * queue_size as usize).next_multiple_of(64)
}

/// The whole inflight area of a device.
#[derive(Debug, Clone)]
pub struct InflightArea {
    map: Arc<MmapRegion<()>>,
    num_queues: u16,
    queue_size: u16,
}

// SAFETY: the mapping is shared memory accessed only through raw pointers by
// the one thread that owns the device at a time.
unsafe impl Send for InflightArea {}
// SAFETY: see Send; `InflightArea` itself is never written through `&self`.
unsafe impl Sync for InflightArea {}

impl InflightArea {
    /// Creates a zeroed area in a new memfd (`GET_INFLIGHT_FD`); returns it and
    /// the fd for the VMM, and the area size.
    pub fn create(num_queues: u16, queue_size: u16) -> Result<(Self, File, u64), String> {
        if num_queues == 0 || queue_size == 0 {
            return Err("inflight area for zero queues".into());
        }
        let size = per_queue(queue_size) * num_queues as usize;
        // SAFETY: plain syscall; the fd is checked, then owned by File.
        let file = unsafe {
            let fd = libc::memfd_create(c"vfio-blk-inflight".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
            }
            File::from_raw_fd(fd)
        };
        file.set_len(size as u64).map_err(|e| e.to_string())?;
        let area = Self::from_file(
            file.try_clone().map_err(|e| e.to_string())?,
            0,
            size as u64,
            num_queues,
            queue_size,
        )?;
        Ok((area, file, size as u64))
    }

    /// Maps an area the VMM hands back (`SET_INFLIGHT_FD`).
    pub fn from_file(
        file: File,
        offset: u64,
        size: u64,
        num_queues: u16,
        queue_size: u16,
    ) -> Result<Self, String> {
        let need = per_queue(queue_size) as u64 * num_queues as u64;
        if num_queues == 0 || queue_size == 0 || size < need {
            return Err(format!("inflight area of {size} bytes, {need} needed"));
        }
        let end = offset.checked_add(size).ok_or("inflight area overflows")?;
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if meta.is_file() && end > meta.len() {
            return Err("inflight area extends past its fd".into());
        }
        let map = MmapRegion::<()>::from_file(FileOffset::new(file, offset), need as usize)
            .map_err(|e| e.to_string())?;
        Ok(InflightArea {
            map: Arc::new(map),
            num_queues,
            queue_size,
        })
    }

    /// The part of the area for queue `qi`.
    pub fn queue(&self, qi: usize) -> Option<InflightQueue> {
        if qi >= self.num_queues as usize {
            return None;
        }
        // SAFETY: qi < num_queues, so the queue's part is inside the mapping.
        let base = unsafe { self.map.as_ptr().add(qi * per_queue(self.queue_size)) };
        Some(InflightQueue {
            _area: self.clone(),
            base,
            size: self.queue_size,
        })
    }
}

/// One queue's part of the inflight area.
#[derive(Debug)]
pub struct InflightQueue {
    _area: InflightArea,
    base: *mut u8,
    size: u16,
}

// SAFETY: see InflightArea.
unsafe impl Send for InflightQueue {}

impl InflightQueue {
    #[inline]
    fn desc(&self, head: u16) -> *mut u8 {
        debug_assert!(head < self.size);
        // SAFETY: callers pass head < size (ring size <= area queue size,
        // checked in `recover`), so the entry is inside this queue's part.
        unsafe { self.base.add(HEADER + DESC * head as usize) }
    }

    /// Chain `head` was taken from the ring.
    #[inline]
    pub fn taken(&mut self, head: u16) {
        // SAFETY: header and entry inside the mapping (see `desc`); aligned.
        unsafe {
            let c = self.base.add(8) as *mut u64;
            let n = ptr::read_volatile(c).wrapping_add(1);
            ptr::write_volatile(c, n);
            let d = self.desc(head);
            ptr::write_volatile(d.add(8) as *mut u64, n);
            ptr::write_volatile(d.add(1), 0);
            ptr::write_volatile(d, 1);
        }
    }

    /// The used element of `head` was written; publishing used index
    /// `used_pos` makes it visible.
    #[inline]
    pub fn used(&mut self, head: u16, used_pos: u16) {
        let d = self.desc(head);
        // SAFETY: entry inside the mapping; 2-aligned at offset 2.
        unsafe {
            ptr::write_volatile(d.add(2) as *mut u16, used_pos.to_le());
            ptr::write_volatile(d.add(1), 1);
        }
    }

    /// The used index covering `head` was published.
    #[inline]
    pub fn published(&mut self, head: u16) {
        // SAFETY: entry inside the mapping.
        unsafe { ptr::write_volatile(self.desc(head), 0) };
    }

    /// On queue start: for a ring of `ring_size` whose used index is
    /// `used_idx`, returns the chains to resubmit (oldest first) and the
    /// available index to continue from. A fresh area is initialised.
    pub fn recover(
        &mut self,
        ring_size: u16,
        used_idx: u16,
        resubmit: &mut Vec<u16>,
    ) -> Result<u16, String> {
        if ring_size > self.size {
            return Err(format!(
                "ring of {ring_size} entries, inflight area for {}",
                self.size
            ));
        }
        resubmit.clear();
        // SAFETY: header inside the mapping.
        let version = unsafe { ptr::read_volatile(self.base as *const u16) };
        if version != 1 {
            // SAFETY: the whole part of this queue is inside the mapping.
            unsafe {
                ptr::write_bytes(self.base, 0, HEADER + DESC * self.size as usize);
                ptr::write_volatile(self.base as *mut u16, 1);
                ptr::write_volatile(self.base.add(2) as *mut u16, ring_size.to_le());
            }
            return Ok(used_idx);
        }
        let mut found: Vec<(u64, u16)> = Vec::new();
        for head in 0..ring_size {
            let d = self.desc(head);
            // SAFETY: entry inside the mapping.
            let (inflight, pending, used_pos, counter) = unsafe {
                (
                    ptr::read_volatile(d),
                    ptr::read_volatile(d.add(1)),
                    u16::from_le(ptr::read_volatile(d.add(2) as *const u16)),
                    ptr::read_volatile(d.add(8) as *const u64),
                )
            };
            if inflight != 1 {
                continue;
            }
            // Published already if the ring's used index reached used_pos.
            if pending == 1 && used_idx.wrapping_sub(used_pos) < 0x8000 {
                self.published(head);
                continue;
            }
            found.push((counter, head));
        }
        found.sort_unstable();
        resubmit.extend(found.iter().map(|&(_, h)| h));
        Ok(used_idx.wrapping_add(found.len() as u16))
    }
}
