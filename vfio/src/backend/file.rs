//! The file backend: a regular file or block device, read and written with
//! `preadv`/`pwritev` straight between guest memory and the file.
//!
//! It opens the file twice: with `O_DIRECT` (bypassing the host page cache,
//! as a storage data plane should) and without. Requests whose offset,
//! length or buffers are not 512-byte aligned, and file systems that refuse
//! `O_DIRECT` (tmpfs), use the buffered descriptor.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;

use super::{
    in_range, Backend, BackendInfo, DoneQueue, IoCompletion, IoOp, IoRequest, IoStatus, SubmitError,
};
use crate::iovec::IoVec;

const DIRECT_ALIGN: u64 = 512;
/// `preadv` takes at most IOV_MAX (1024) vectors per call.
const IOV_MAX: usize = 1024;

/// A file-backed disk.
#[derive(Debug)]
pub struct FileBackend {
    direct: Option<File>,
    buffered: File,
    capacity: u64,
    done: DoneQueue,
    iov: Vec<libc::iovec>,
}

// SAFETY: `iov` holds raw pointers only while one request runs inside
// `submit`; between calls it is empty. The files are Send.
unsafe impl Send for FileBackend {}

impl FileBackend {
    /// Opens an existing file or block device; capacity is its size rounded
    /// down to 512 bytes.
    pub fn open(path: &str, max_inflight: usize) -> io::Result<Self> {
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
        Ok(FileBackend {
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

    fn write_zeroes(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let keep = libc::FALLOC_FL_KEEP_SIZE;
        if self
            .fallocate(libc::FALLOC_FL_ZERO_RANGE | keep, offset, len)
            .is_ok()
            || self
                .fallocate(libc::FALLOC_FL_PUNCH_HOLE | keep, offset, len)
                .is_ok()
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
            IoOp::WriteZeroes { .. } => self.write_zeroes(req.offset, req.len),
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
            max_inflight: self.done.cap_hint(),
        }
    }

    fn submit(&mut self, req: &IoRequest<'_>) -> Result<(), SubmitError> {
        if self.done.len() >= self.done.cap_hint() {
            return Err(SubmitError::Busy);
        }
        let status = self.run(req);
        self.done.push(IoCompletion { id: req.id, status })
    }

    fn poll(&mut self, out: &mut Vec<IoCompletion>) -> usize {
        self.done.drain_into(out)
    }

    fn inflight(&self) -> usize {
        self.done.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest_memory::GuestMemory;

    #[test]
    fn read_write_zero_flush() {
        let dir = std::env::temp_dir().join(format!("vfio-file-backend-{}", std::process::id()));
        std::fs::write(&dir, vec![0xabu8; 1 << 20]).unwrap();
        let mut b = FileBackend::open(dir.to_str().unwrap(), 4).unwrap();
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
            out.clear();
            assert_eq!(b.poll(&mut out), 1);
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
