//! The file backend: a regular file or block device, read and written
//! straight between guest memory and the file.
//!
//! Reads, writes and flushes go through io_uring (the `io-uring` crate):
//! `submit` queues a submission entry, `commit` makes one `io_uring_enter`
//! for the whole batch, `poll` reaps completions in whatever order the
//! kernel finishes them, so a slow disk never stalls the poller that also
//! serves other queues and devices. Where io_uring is unavailable (seccomp,
//! `kernel.io_uring_disabled`), the same requests run synchronously with
//! `preadv`/`pwritev`. Discard and write-zeroes (rare, with a fallback chain)
//! always run synchronously.
//!
//! It opens the file twice: with `O_DIRECT` (bypassing the host page cache,
//! as a storage data plane should) and without. Requests whose offset,
//! length or buffers are not 512-byte aligned, and file systems that refuse
//! `O_DIRECT` (tmpfs), use the buffered descriptor.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;

use io_uring::{opcode, types, IoUring};

use super::{
    in_range, Backend, BackendInfo, DoneQueue, IoCompletion, IoOp, IoRequest, IoStatus, SubmitError,
};
use crate::iovec::IoVec;

const DIRECT_ALIGN: u64 = 512;
/// `preadv` takes at most IOV_MAX (1024) vectors per call.
const IOV_MAX: usize = 1024;

/// One request in flight in the ring; its iovec array must not move until
/// the completion arrives (the kernel reads it at submission, but a request
/// retried on the buffered fd is submitted again from it).
struct UringSlot {
    id: u64,
    op: IoOp,
    offset: u64,
    expect: u64,
    direct: bool,
    iov: Vec<libc::iovec>,
}

struct Uring {
    ring: IoUring,
    slots: Vec<UringSlot>,
    free: Vec<u32>,
    inflight: usize,
    unsubmitted: bool,
}

/// A file-backed disk.
pub struct FileBackend {
    direct: Option<File>,
    buffered: File,
    capacity: u64,
    max_inflight: usize,
    done: DoneQueue,
    iov: Vec<libc::iovec>,
    uring: Option<Uring>,
}

impl std::fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBackend")
            .field("capacity", &self.capacity)
            .field("direct", &self.direct.is_some())
            .field("io_uring", &self.uring.is_some())
            .finish()
    }
}

// SAFETY: `iov` holds raw pointers only while one request runs inside
// `submit`; between calls it is empty. The files are Send.
unsafe impl Send for FileBackend {}

impl FileBackend {
    /// Opens an existing file or block device; capacity is its size rounded
    /// down to 512 bytes. Uses io_uring when the kernel allows it.
    pub fn open(path: &str, max_inflight: usize) -> io::Result<Self> {
        Self::open_with(path, max_inflight, true)
    }

    /// As [`open`](Self::open), choosing whether to try io_uring.
    pub fn open_with(path: &str, max_inflight: usize, try_uring: bool) -> io::Result<Self> {
        let buffered = OpenOptions::new().read(true).write(true).open(path)?;
        let meta = buffered.metadata()?;
        let size = if meta.file_type().is_block_device() {
            let mut f = &buffered;
            io::Seek::seek(&mut f, io::SeekFrom::End(0))?
        } else {
            meta.len()
        };
        let capacity = size / 512 * 512;
        if capacity == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "file is smaller than one 512-byte sector",
            ));
        }
        let direct = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok();
        let max_inflight = max_inflight.clamp(1, 4096);
        let uring = if try_uring {
            IoUring::new(max_inflight.next_power_of_two() as u32)
                .ok()
                .map(|ring| Uring {
                    ring,
                    slots: (0..max_inflight)
                        .map(|_| UringSlot {
                            id: 0,
                            op: IoOp::Flush,
                            offset: 0,
                            expect: 0,
                            direct: false,
                            iov: Vec::with_capacity(IOV_MAX),
                        })
                        .collect(),
                    free: (0..max_inflight as u32).rev().collect(),
                    inflight: 0,
                    unsubmitted: false,
                })
        } else {
            None
        };
        Ok(FileBackend {
            max_inflight,
            uring,
            direct,
            buffered,
            capacity,
            done: DoneQueue::new(max_inflight),
            iov: Vec::with_capacity(IOV_MAX),
        })
    }

    /// Whether requests can go through `O_DIRECT`.
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// Whether reads, writes and flushes go through io_uring.
    pub fn is_uring(&self) -> bool {
        self.uring.is_some()
    }

    /// Queues a read, write or flush on the ring; `Err` if the ring cannot
    /// take it (then the caller runs it synchronously).
    fn uring_submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        let direct_ok = self.direct.is_some() && Self::aligned(req);
        let direct_fd = self.direct.as_ref().map(|f| f.as_raw_fd());
        let buffered = self.buffered.as_raw_fd();
        let u = self.uring.as_mut().expect("uring mode");
        if req.iovs.len() > IOV_MAX {
            return Err(SubmitError::Busy);
        }
        let Some(si) = u.free.pop() else {
            return Err(SubmitError::Busy);
        };
        let slot = &mut u.slots[si as usize];
        slot.id = req.id;
        slot.op = req.op;
        slot.offset = req.offset;
        slot.expect = req.len;
        slot.direct = direct_ok;
        slot.iov.clear();
        slot.iov.extend(req.iovs.iter().map(IoVec::as_libc));
        let fd = if direct_ok {
            direct_fd.expect("direct_ok")
        } else {
            buffered
        };
        let sqe = Self::sqe(slot, fd, si);
        if Self::push(u, &sqe).is_err() {
            u.free.push(si);
            return Err(SubmitError::Busy);
        }
        u.inflight += 1;
        Ok(())
    }

    fn sqe(slot: &UringSlot, fd: i32, si: u32) -> io_uring::squeue::Entry {
        let fd = types::Fd(fd);
        match slot.op {
            IoOp::Read => opcode::Readv::new(fd, slot.iov.as_ptr(), slot.iov.len() as u32)
                .offset(slot.offset)
                .build(),
            IoOp::Write => opcode::Writev::new(fd, slot.iov.as_ptr(), slot.iov.len() as u32)
                .offset(slot.offset)
                .build(),
            _ => opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build(),
        }
        .user_data(si as u64)
    }

    fn push(u: &mut Uring, sqe: &io_uring::squeue::Entry) -> Result<(), ()> {
        // SAFETY: the entry's iovec array lives in a slot that is neither
        // reused nor reallocated (fixed capacity, IOV_MAX checked) until its
        // completion is reaped, and the guest buffers it points to stay mapped
        // until the device sees the completion (crate::iovec contract).
        let pushed = unsafe { u.ring.submission().push(sqe).is_ok() };
        if pushed {
            u.unsubmitted = true;
            return Ok(());
        }
        // Submission queue full: hand what is queued to the kernel, retry once.
        let _ = u.ring.submit();
        // SAFETY: as above.
        if unsafe { u.ring.submission().push(sqe).is_ok() } {
            u.unsubmitted = true;
            Ok(())
        } else {
            Err(())
        }
    }

    fn uring_reap(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        let buffered = self.buffered.as_raw_fd();
        let Some(u) = self.uring.as_mut() else {
            return 0;
        };
        let mut n = 0;
        let mut retry = false;
        while out.len() < out.capacity() {
            let Some(cqe) = u.ring.completion().next() else {
                break;
            };
            let si = cqe.user_data() as u32;
            let res = cqe.result();
            // O_DIRECT refused this buffer layout: run it again buffered.
            let again = {
                let slot = &mut u.slots[si as usize];
                if res == -libc::EINVAL && slot.direct {
                    slot.direct = false;
                    Some(Self::sqe(slot, buffered, si))
                } else {
                    None
                }
            };
            if let Some(sqe) = again {
                if Self::push(u, &sqe).is_ok() {
                    retry = true;
                    continue;
                }
            }
            let slot = &u.slots[si as usize];
            let ok = match slot.op {
                IoOp::Read | IoOp::Write => res >= 0 && res as u64 == slot.expect,
                _ => res >= 0,
            };
            out.push(IoCompletion {
                id: slot.id,
                status: if ok { IoStatus::Ok } else { IoStatus::IoErr },
            });
            u.free.push(si);
            u.inflight -= 1;
            n += 1;
        }
        if retry {
            let _ = u.ring.submit();
            u.unsubmitted = false;
        }
        n
    }

    fn aligned(req: &IoRequest<'_>) -> bool {
        req.offset.is_multiple_of(DIRECT_ALIGN)
            && req.len.is_multiple_of(DIRECT_ALIGN)
            && req.iovs.iter().all(|v| {
                let l = v.as_libc();
                (l.iov_base as u64).is_multiple_of(DIRECT_ALIGN)
                    && (l.iov_len as u64).is_multiple_of(DIRECT_ALIGN)
            })
    }

    fn rw(&mut self, fd: i32, iovs: &[IoVec], mut offset: u64, write: bool) -> io::Result<()> {
        if iovs.len() > IOV_MAX {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.iov.clear();
        self.iov.extend(iovs.iter().map(IoVec::as_libc));
        let mut first = 0;
        let result = loop {
            if first == self.iov.len() {
                break Ok(());
            }
            let rest = &self.iov[first..];
            // SAFETY: every iovec points into checked, mapped guest memory
            // (crate::iovec); `rest` is a valid array of `rest.len()` entries.
            let n = unsafe {
                if write {
                    libc::pwritev(fd, rest.as_ptr(), rest.len() as i32, offset as i64)
                } else {
                    libc::preadv(fd, rest.as_ptr(), rest.len() as i32, offset as i64)
                }
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(e);
            }
            if n == 0 {
                break Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            offset += n as u64;
            let mut n = n as usize;
            while n > 0 && first < self.iov.len() {
                let v = &mut self.iov[first];
                if n >= v.iov_len {
                    n -= v.iov_len;
                    first += 1;
                } else {
                    // SAFETY: advancing inside the same checked range.
                    v.iov_base = unsafe { (v.iov_base as *mut u8).add(n) }.cast();
                    v.iov_len -= n;
                    n = 0;
                }
            }
        };
        self.iov.clear();
        result
    }

    fn fallocate(&self, mode: i32, offset: u64, len: u64) -> io::Result<()> {
        // SAFETY: plain syscall on an owned fd.
        let r =
            unsafe { libc::fallocate(self.buffered.as_raw_fd(), mode, offset as i64, len as i64) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// VIRTIO 1.2 §5.2.6.2: after a write zeroes the range reads zeroes;
    /// with the unmap flag the device may deallocate it as a discard would.
    /// So: `unmap` punches a hole first (blocks freed), else
    /// `FALLOC_FL_ZERO_RANGE` (blocks stay allocated); each falls back to the
    /// other, then to writing zeroes.
    fn write_zeroes(&mut self, offset: u64, len: u64, unmap: bool) -> io::Result<()> {
        let keep = libc::FALLOC_FL_KEEP_SIZE;
        let (zero, punch) = (
            libc::FALLOC_FL_ZERO_RANGE | keep,
            libc::FALLOC_FL_PUNCH_HOLE | keep,
        );
        let (first, second) = if unmap { (punch, zero) } else { (zero, punch) };
        if self.fallocate(first, offset, len).is_ok() || self.fallocate(second, offset, len).is_ok()
        {
            return Ok(());
        }
        let zeroes = vec![0u8; 64 << 10];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeroes.len() as u64) as usize;
            std::os::unix::fs::FileExt::write_all_at(&self.buffered, &zeroes[..n], offset + done)?;
            done += n as u64;
        }
        Ok(())
    }

    fn run(&mut self, req: &IoRequest<'_>) -> IoStatus {
        if !in_range(req, self.capacity) {
            return IoStatus::IoErr;
        }
        let res = match req.op {
            IoOp::Read | IoOp::Write => {
                let write = req.op == IoOp::Write;
                let direct = self
                    .direct
                    .as_ref()
                    .filter(|_| Self::aligned(req))
                    .map(|f| f.as_raw_fd());
                let buffered = self.buffered.as_raw_fd();
                match direct {
                    Some(fd) => match self.rw(fd, req.iovs, req.offset, write) {
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                            self.rw(buffered, req.iovs, req.offset, write)
                        }
                        r => r,
                    },
                    None => self.rw(buffered, req.iovs, req.offset, write),
                }
            }
            IoOp::Flush => self.buffered.sync_data(),
            IoOp::Discard => self.fallocate(
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                req.offset,
                req.len,
            ),
            IoOp::WriteZeroes { unmap } => self.write_zeroes(req.offset, req.len, unmap),
        };
        match res {
            Ok(()) => IoStatus::Ok,
            Err(e) if req.op == IoOp::Discard && e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                IoStatus::Unsupported
            }
            Err(_) => IoStatus::IoErr,
        }
    }
}

impl Backend for FileBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            capacity: self.capacity,
            read_only: false,
            flush: true,
            discard: true,
            write_zeroes: true,
            max_inflight: self.max_inflight,
        }
    }

    fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        if self.inflight() >= self.max_inflight {
            return Err(SubmitError::Busy);
        }
        let ring_op = matches!(req.op, IoOp::Read | IoOp::Write | IoOp::Flush);
        if ring_op
            && self.uring.is_some()
            && in_range(req, self.capacity)
            && self.uring_submit(req).is_ok()
        {
            return Ok(());
        }
        let status = self.run(req);
        self.done.push(IoCompletion { id: req.id, status })
    }

    fn commit(&mut self) {
        if let Some(u) = self.uring.as_mut() {
            if u.unsubmitted {
                let _ = u.ring.submit();
                u.unsubmitted = false;
            }
        }
    }

    fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        let n = self.done.drain_into(out);
        n + self.uring_reap(out)
    }

    fn inflight(&self) -> usize {
        self.done.len() + self.uring.as_ref().map_or(0, |u| u.inflight)
    }

    fn resize(&mut self, bytes: u64) -> Result<u64, String> {
        super::check_resize(bytes)?;
        let meta = self.buffered.metadata().map_err(|e| e.to_string())?;
        if meta.file_type().is_block_device() {
            return Err("a block device is resized by its owner, not by the server".into());
        }
        // ftruncate: a grown file reads zeroes past the old end (a sparse
        // tail), a shrunk one loses its tail.
        self.buffered.set_len(bytes).map_err(|e| e.to_string())?;
        self.capacity = bytes;
        Ok(bytes)
    }

    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        // An io_uring fd polls readable while its completion queue has
        // entries; `poll` reaps them.
        use std::os::fd::AsRawFd;
        self.uring
            .as_ref()
            .filter(|u| u.inflight > 0)
            .map(|u| u.ring.as_raw_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_memory::GuestMemory;

    #[test]
    fn read_write_zero_flush_io_uring() {
        read_write_zero_flush(true);
    }

    #[test]
    fn read_write_zero_flush_sync() {
        read_write_zero_flush(false);
    }

    fn read_write_zero_flush(uring: bool) {
        let dir =
            std::env::temp_dir().join(format!("vfio-file-backend-{uring}-{}", std::process::id()));
        std::fs::write(&dir, vec![0xabu8; 1 << 20]).unwrap();
        let mut b = FileBackend::open_with(dir.to_str().unwrap(), 4, uring).unwrap();
        if uring {
            assert!(
                b.is_uring(),
                "io_uring unavailable here; the sync test covers the fallback"
            );
        }
        assert_eq!(b.info().capacity, 1 << 20);
        let mem = GuestMemory::anonymous(&[(0, 1 << 16)]).unwrap();
        let buf = mem.host_range(0, 8192).unwrap();
        // SAFETY: inside the anonymous guest memory, which outlives the test.
        let iov = [unsafe { IoVec::new(buf, 4096) }, unsafe {
            IoVec::new(buf.add(4096), 4096)
        }];
        mem.write(0, &[0x11; 4096]).unwrap();
        mem.write(4096, &[0x22; 4096]).unwrap();
        let mut out = Vec::with_capacity(8);
        let mut go = |b: &mut FileBackend, op, offset, len, iovs: &[IoVec]| {
            b.submit(&IoRequest {
                id: 7,
                op,
                offset,
                len,
                iovs,
            })
            .unwrap();
            b.commit();
            out.clear();
            let t = std::time::Instant::now();
            while b.poll(&mut out) == 0 {
                assert!(t.elapsed().as_secs() < 10, "no completion");
            }
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].id, 7);
            assert_eq!(b.inflight(), 0);
            out[0].status
        };
        assert_eq!(go(&mut b, IoOp::Write, 8192, 8192, &iov), IoStatus::Ok);
        assert_eq!(go(&mut b, IoOp::Flush, 0, 0, &[]), IoStatus::Ok);
        let disk = std::fs::read(&dir).unwrap();
        assert!(
            disk[8192..12288].iter().all(|&x| x == 0x11)
                && disk[12288..16384].iter().all(|&x| x == 0x22)
        );
        assert_eq!(
            go(&mut b, IoOp::WriteZeroes { unmap: false }, 8192, 4096, &[]),
            IoStatus::Ok
        );
        assert_eq!(go(&mut b, IoOp::Read, 8192, 8192, &iov), IoStatus::Ok);
        let mut back = [0u8; 8192];
        mem.read(0, &mut back).unwrap();
        assert!(back[..4096].iter().all(|&x| x == 0) && back[4096..].iter().all(|&x| x == 0x22));
        // Unaligned offset goes through the buffered descriptor.
        let odd = [iov[0].slice(1, 100).unwrap()];
        assert_eq!(go(&mut b, IoOp::Read, 1, 100, &odd), IoStatus::Ok);
        assert_eq!(
            go(&mut b, IoOp::Read, (1 << 20) - 4096, 8192, &iov),
            IoStatus::IoErr,
            "past the end"
        );
        assert_eq!(
            go(&mut b, IoOp::Read, u64::MAX - 10, 8192, &iov),
            IoStatus::IoErr,
            "overflow"
        );
        std::fs::remove_file(&dir).unwrap();
    }
}
