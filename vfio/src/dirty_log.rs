//! The dirty-page log of live migration (vhost-user spec, "Migration"):
//! while the VMM migrates guest RAM it asks the back end to mark every page
//! the back end writes, so the VMM copies those pages again.
//!
//! The VMM shares the log as a memfd (`VHOST_USER_SET_LOG_BASE` with
//! `VHOST_USER_PROTOCOL_F_LOG_SHMFD`): one bit per 4 KiB page of *guest
//! physical* address space, from address 0. The spec's pseudo-code:
//!
//! ```text
//! page = addr / VHOST_LOG_PAGE
//! log[page / 8] |= 1 << page % 8
//! ```
//!
//! "Use atomic operations, as the log may be concurrently manipulated": the
//! VMM clears words of it (QEMU: an atomic exchange per 64 bits) while the
//! device sets bits, so a bit is set with one atomic OR on its byte.
//!
//! What the device writes, and so marks (a [`QueueLog`] per queue):
//! * the buffers of a chain it wrote into (a disk read's data, the status
//!   byte): "All the modifications to memory pointed by vring 'descriptor'
//!   should be marked"; the device knows them as host ranges
//!   ([`IoVec`]), translated back to guest addresses here;
//! * the ring areas it writes (split: the used ring, at `log_guest_addr` of
//!   `SET_VRING_ADDR`: "the write to first byte of the used ring is logged at
//!   this offset from log start"; packed: the descriptor ring and the device
//!   event area), only when the ring has `VHOST_VRING_F_LOG`.
//!
//! A device that is not logging holds no `QueueLog`: its cost is one
//! `Option` test per completion and per used-ring publication.
//!
//! # The rule
//!
//! Spec ("Migration"): "All the modifications to memory pointed by vring
//! 'descriptor' should be marked. Modifications to 'used' vring should be
//! marked if `VHOST_VRING_F_LOG` is part of ring's flags", and "Once the
//! source has finished migration, rings will be stopped by the source. No
//! further update must be done before rings are restarted." So, while a
//! queue holds a [`QueueLog`], every store of the device into guest memory
//! is followed by a mark of its page:
//!
//! * on every path that stores: a completion (read data, GET_ID, status
//!   byte), a publication (used elements and index, packed used
//!   descriptors), and the kick-suppression fields wherever they are
//!   written (`flags`/`avail_event` or the device event area: at each
//!   publication, when the poller arms and disarms kicks around a sleep,
//!   when a ring (re)starts). Linux vhost learnt the last one the hard way
//!   (commit 2723feaa8ec6, "vhost: set log when updating used flags or
//!   avail event": "Otherwise the guest may see a stale value after
//!   migration and miss notifying the host");
//! * after the store, never before: the VMM's sync takes a bit and clears
//!   it, then copies the page; a mark made before the store can be taken
//!   and the page copied before the data is in it. Data a backend writes
//!   asynchronously is marked when its completion is reaped, before the
//!   used element that tells the guest about it is published;
//! * before the ring is reported stopped (`GET_VRING_BASE`): the VMM's last
//!   sync follows that reply, and nothing is written after it.
//!
//! `vhost_user::tests::shadow` checks this byte for byte: it compares guest
//! memory before and after each device step (poll, kicks armed and
//! disarmed, a ring restart, the stop) with the bits the step set, over
//! split and packed rings with and without event index. A change to the
//! poll loop that stores somewhere new must mark there too, or that test
//! fails.
//!
//! The log's size and offset come from the VMM and are checked here
//! ([`DirtyLog::from_file`]); a guest address beyond the log is not marked
//! (counted in [`DirtyLog::missed`]), never written out of bounds.

use std::fs::File;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use vm_memory::{FileOffset, MmapRegion};

use crate::guest_memory::GuestMemory;
use crate::iovec::IoVec;

/// Size of one logged page (vhost-user spec: `#define VHOST_LOG_PAGE 0x1000`).
pub const VHOST_LOG_PAGE: u64 = 0x1000;

/// Largest log accepted: 1 GiB of bits covers 32 TiB of guest addresses.
pub const MAX_LOG_SIZE: u64 = 1 << 30;

/// Why a log area was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    /// Size 0 or above [`MAX_LOG_SIZE`].
    BadSize(u64),
    /// `offset + size` overflows or lies past the end of the fd.
    PastEnd {
        /// Offset in the fd.
        offset: u64,
        /// Size of the area.
        size: u64,
        /// Length of the fd.
        file_len: u64,
    },
    /// fstat or mmap failed.
    Map(String),
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogError::BadSize(s) => write!(
                f,
                "dirty log of {s} bytes refused (1 to {MAX_LOG_SIZE} bytes)"
            ),
            LogError::PastEnd {
                offset,
                size,
                file_len,
            } => write!(
                f,
                "dirty log at offset {offset} of {size} bytes lies past the end of its fd ({file_len} bytes)"
            ),
            LogError::Map(e) => write!(f, "dirty log cannot be mapped: {e}"),
        }
    }
}

impl std::error::Error for LogError {}

/// Bytes of log needed to cover guest addresses `[0, end)`.
pub fn log_size_for(end: u64) -> u64 {
    end.div_ceil(VHOST_LOG_PAGE).div_ceil(8)
}

/// The mapped dirty bitmap.
#[derive(Debug)]
pub struct DirtyLog {
    map: MmapRegion<()>,
    /// Offset of log byte 0 inside `map` (the fd offset need not be
    /// page-aligned; the mapping starts at the page below it).
    start: usize,
    size: u64,
    missed: AtomicU64,
    /// Every bit this device set, kept privately (the VMM clears the log
    /// as it copies pages): replayed into the log at the final stop.
    shadow: Box<[AtomicU8]>,
}

// SAFETY: the mapping is shared memory that is only accessed through atomic
// byte operations (`mark`, `is_marked`); no reference to plain bytes of it
// is ever made, so any number of threads may use it.
unsafe impl Send for DirtyLog {}
// SAFETY: see Send.
unsafe impl Sync for DirtyLog {}

impl DirtyLog {
    /// Maps `size` bytes of `file` from `offset` (the `VhostUserLog` payload
    /// of `SET_LOG_BASE`), after checking them against the fd.
    pub fn from_file(file: File, offset: u64, size: u64) -> Result<Self, LogError> {
        if size == 0 || size > MAX_LOG_SIZE {
            return Err(LogError::BadSize(size));
        }
        let file_len = file
            .metadata()
            .map_err(|e| LogError::Map(e.to_string()))?
            .len();
        let past_end = LogError::PastEnd {
            offset,
            size,
            file_len,
        };
        let end = offset.checked_add(size).ok_or(past_end.clone())?;
        // A mapping past the end of the file would SIGBUS on first touch.
        if end > file_len {
            return Err(past_end);
        }
        let page = page_size();
        let map_off = offset - offset % page;
        let start = (offset - map_off) as usize;
        let map =
            MmapRegion::<()>::from_file(FileOffset::new(file, map_off), start + size as usize)
                .map_err(|e| LogError::Map(e.to_string()))?;
        Ok(DirtyLog {
            map,
            start,
            size,
            missed: AtomicU64::new(0),
            shadow: (0..size).map(|_| AtomicU8::new(0)).collect(),
        })
    }

    /// Log size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the log covers guest addresses `[0, end)`.
    pub fn covers(&self, end: u64) -> bool {
        log_size_for(end) <= self.size
    }

    #[inline]
    fn byte(&self, i: u64) -> &AtomicU8 {
        debug_assert!(i < self.size);
        // SAFETY: i < size, so the byte is inside the mapping (start + size
        // bytes); AtomicU8 has the layout of u8 and no alignment need; the
        // mapping lives as long as `self`.
        unsafe { &*(self.map.as_ptr().add(self.start + i as usize) as *const AtomicU8) }
    }

    /// Marks the pages of guest range `[gpa, gpa+len)` dirty. Pages beyond
    /// the log are not marked and are counted in [`missed`](Self::missed).
    pub fn mark(&self, gpa: u64, len: u64) {
        if len == 0 {
            return;
        }
        let first = gpa / VHOST_LOG_PAGE;
        let last = gpa.saturating_add(len - 1) / VHOST_LOG_PAGE;
        let limit = self.size * 8;
        if last >= limit {
            self.missed
                .fetch_add(last - first.max(limit) + 1, Ordering::Relaxed);
        }
        let mut page = first;
        while page <= last && page < limit {
            let (i, bit) = (page / 8, page % 8);
            let stop = last.min(limit - 1);
            if bit == 0 && stop - page >= 7 {
                // A whole byte of pages at once.
                self.byte(i).fetch_or(0xff, Ordering::Release);
                self.shadow[i as usize].fetch_or(0xff, Ordering::Relaxed);
                page += 8;
            } else {
                self.byte(i).fetch_or(1 << bit, Ordering::Release);
                self.shadow[i as usize].fetch_or(1 << bit, Ordering::Relaxed);
                page += 1;
            }
        }
    }

    /// Whether the page holding `gpa` is marked.
    pub fn is_marked(&self, gpa: u64) -> bool {
        let page = gpa / VHOST_LOG_PAGE;
        page / 8 < self.size && self.byte(page / 8).load(Ordering::Acquire) & (1 << (page % 8)) != 0
    }

    /// Sets again in the log every bit this log ever set, and returns how
    /// many pages that covers. Used at the switch-over: the VMM's last sync
    /// then re-sends every page the device wrote while logging, not only
    /// the ones written since its previous sync (with QEMU 7.2 some bits
    /// set between syncs are lost otherwise, see vfio/README.md).
    pub fn replay(&self) -> u64 {
        let mut pages = 0;
        for (i, s) in self.shadow.iter().enumerate() {
            let b = s.load(Ordering::Relaxed);
            if b != 0 {
                self.byte(i as u64).fetch_or(b, Ordering::Release);
                pages += b.count_ones() as u64;
            }
        }
        pages
    }

    /// Pages the device wrote that lay beyond the log (a VMM whose log is
    /// smaller than guest memory).
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// What one queue logs while migration runs: the guest buffers it writes,
/// and the ring areas it writes (when the ring asked for it).
#[derive(Debug, Clone)]
pub struct QueueLog {
    log: Arc<DirtyLog>,
    mem: GuestMemory,
    rings: [(u64, u64); 2],
}

impl QueueLog {
    /// A queue log into `log` for buffers in `mem`; `rings` are the
    /// `(guest address, length)` ring areas to mark after each
    /// publication (length 0: none).
    pub fn new(log: Arc<DirtyLog>, mem: GuestMemory, rings: [(u64, u64); 2]) -> Self {
        QueueLog { log, mem, rings }
    }

    /// The log itself.
    pub fn log(&self) -> &DirtyLog {
        &self.log
    }

    /// Marks the ring areas (after used elements, the used index or the
    /// notification fields were written).
    #[inline]
    pub fn mark_rings(&self) {
        for &(gpa, len) in &self.rings {
            self.log.mark(gpa, len);
        }
    }

    /// Marks the guest pages behind host ranges the device wrote. A range
    /// that is not guest memory of this queue cannot occur (every `IoVec`
    /// was translated from it); it would be skipped.
    pub fn mark_written(&self, iovs: &[IoVec]) {
        for v in iovs {
            if let Some(gpa) = self.mem.host_to_guest(v.as_ptr(), v.len() as u64) {
                self.log.mark(gpa, v.len() as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::io::FromRawFd;

    pub(crate) fn memfd(len: u64) -> File {
        // SAFETY: plain syscall; the fd is checked and then owned by File.
        let f = unsafe {
            let fd = libc::memfd_create(c"dirty-log-test".as_ptr(), libc::MFD_CLOEXEC);
            assert!(fd >= 0);
            File::from_raw_fd(fd)
        };
        f.set_len(len).unwrap();
        f
    }

    #[test]
    fn marks_bits_per_page() {
        let log = DirtyLog::from_file(memfd(64), 0, 64).unwrap();
        log.mark(0x1000, 1);
        assert!(log.is_marked(0x1fff));
        assert!(!log.is_marked(0x0));
        assert!(!log.is_marked(0x2000));
        // Straddles pages 2..=12: a partial byte, a whole byte, a partial byte.
        log.mark(0x2ffe, 0xa002);
        for p in 2..=12u64 {
            assert!(log.is_marked(p * 0x1000), "page {p}");
        }
        assert!(!log.is_marked(13 * 0x1000));
        assert_eq!(log.missed(), 0);
        // Beyond the 512 pages the log covers: counted, never written.
        log.mark(511 * 0x1000, 3 * 0x1000);
        assert!(log.is_marked(511 * 0x1000));
        assert_eq!(log.missed(), 2);
        log.mark(u64::MAX - 10, 100);
        assert_eq!(log.missed(), 3);
        assert!(log.covers(512 * 0x1000));
        assert!(!log.covers(512 * 0x1000 + 1));
    }

    #[test]
    fn replay_sets_again_what_the_vmm_cleared() {
        use std::os::unix::fs::FileExt;
        let f = memfd(4096);
        let log = DirtyLog::from_file(f.try_clone().unwrap(), 0, 64).unwrap();
        log.mark(0x3000, 1);
        log.mark(0x10000, 0x8000);
        // The VMM syncs: it reads and clears the log.
        f.write_all_at(&[0u8; 64], 0).unwrap();
        assert!(!log.is_marked(0x3000));
        assert_eq!(log.replay(), 9);
        assert!(log.is_marked(0x3000));
        assert!((0x10..0x18).all(|p| log.is_marked(p * 0x1000)));
        assert!(!log.is_marked(0x4000));
    }

    #[test]
    fn bits_land_in_the_shared_file_at_its_offset() {
        use std::os::unix::fs::FileExt;
        let f = memfd(8192);
        let log = DirtyLog::from_file(f.try_clone().unwrap(), 100, 16).unwrap();
        log.mark(9 * 0x1000, 0x1000);
        let mut b = [0u8; 2];
        f.read_exact_at(&mut b, 101).unwrap();
        assert_eq!(b, [0b10, 0]);
    }

    #[test]
    fn bad_sizes_and_offsets_are_refused() {
        let f = || memfd(8192);
        assert_eq!(
            DirtyLog::from_file(f(), 0, 0).unwrap_err(),
            LogError::BadSize(0)
        );
        assert!(matches!(
            DirtyLog::from_file(f(), 0, MAX_LOG_SIZE + 1),
            Err(LogError::BadSize(_))
        ));
        assert!(matches!(
            DirtyLog::from_file(f(), 4096, 4097),
            Err(LogError::PastEnd { .. })
        ));
        assert!(matches!(
            DirtyLog::from_file(f(), u64::MAX - 1, 16),
            Err(LogError::PastEnd { .. })
        ));
        assert!(DirtyLog::from_file(f(), 4096, 4096).is_ok());
    }
}
