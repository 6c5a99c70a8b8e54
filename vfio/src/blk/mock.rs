//! virtio-blk requests placed by the guest-driver simulator, as the Linux
//! driver lays them out: header (readable), data, status (writable).

use super::request::HEADER_LEN;
use crate::guest_memory::GuestMemory;
use crate::virtq::mock::{Buf, MockQueue};

/// Descriptors per indirect table slot.
const TABLE_ENTRIES: u64 = 130;

/// A request the simulator made available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlkReq {
    /// Head descriptor index.
    pub head: u16,
    /// Guest address of its status byte.
    pub status_addr: u64,
}

/// A virtio-blk driver on one simulated queue.
#[derive(Debug)]
pub struct BlkDriver {
    /// The queue.
    pub q: MockQueue,
    mem: GuestMemory,
    scratch: u64,
    size: u16,
    next_slot: u16,
}

impl BlkDriver {
    /// Guest memory needed after `scratch` for a queue of `size`.
    pub fn scratch_len(size: u16) -> u64 {
        size as u64 * (32 + 16 * TABLE_ENTRIES)
    }

    /// A driver with its queue at `queue_base` and request headers, status
    /// bytes and indirect tables at `scratch` (see [`scratch_len`](Self::scratch_len)).
    pub fn new(mem: &GuestMemory, queue_base: u64, size: u16, scratch: u64) -> Self {
        BlkDriver {
            q: MockQueue::new(mem, queue_base, size),
            mem: mem.clone(),
            scratch,
            size,
            next_slot: 0,
        }
    }

    /// Places a request and makes it available (published). `data` are the
    /// data buffers between header and status.
    pub fn request(&mut self, req_type: u32, sector: u64, data: &[Buf], indirect: bool) -> BlkReq {
        let slot = self.next_slot as u64;
        self.next_slot = (self.next_slot + 1) % self.size;
        let hdr = self.scratch + slot * 32;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&req_type.to_le_bytes());
        h[8..16].copy_from_slice(&sector.to_le_bytes());
        self.mem.write(hdr, &h).expect("scratch in guest memory");
        let status_addr = hdr + HEADER_LEN;
        self.mem
            .write(status_addr, &[0xff])
            .expect("scratch in guest memory");
        let mut bufs = Vec::with_capacity(data.len() + 2);
        bufs.push(Buf::r(hdr, 16));
        bufs.extend_from_slice(data);
        bufs.push(Buf::w(status_addr, 1));
        let head = if indirect {
            let table = self.scratch + self.size as u64 * 32 + slot * 16 * TABLE_ENTRIES;
            self.q.add_indirect_chain(table, &bufs)
        } else {
            self.q.add_chain(&bufs)
        };
        self.q.push_avail(head);
        self.q.publish();
        BlkReq { head, status_addr }
    }

    /// A discard or write-zeroes request whose segments
    /// (`sector, num_sectors, flags`, §5.2.6 `virtio_blk_discard_write_zeroes`)
    /// are written at `at` and sent as `len` readable bytes (the segments'
    /// size unless a test wants a short or long buffer).
    pub fn segments(
        &mut self,
        req_type: u32,
        at: u64,
        segs: &[(u64, u32, u32)],
        len: u32,
    ) -> BlkReq {
        for (i, &(sector, num, flags)) in segs.iter().enumerate() {
            let mut b = [0u8; 16];
            b[0..8].copy_from_slice(&sector.to_le_bytes());
            b[8..12].copy_from_slice(&num.to_le_bytes());
            b[12..16].copy_from_slice(&flags.to_le_bytes());
            self.mem
                .write(at + 16 * i as u64, &b)
                .expect("segments in guest memory");
        }
        self.request(req_type, 0, &[Buf::r(at, len)], false)
    }

    /// The status byte the device wrote (0xff: not yet).
    pub fn status(&self, r: &BlkReq) -> u8 {
        let mut b = [0u8];
        self.mem
            .read(r.status_addr, &mut b)
            .expect("scratch in guest memory");
        b[0]
    }
}
