//! Socket readiness without a syscall per check.
//!
//! A busy poller that calls `recv` on an idle socket every round pays a
//! syscall (about 1 us with today's mitigations) to learn that nothing
//! arrived; profiles of the iSCSI backend showed that as most of the poller
//! thread's time. [`ReadyWatch`] arms one multishot io_uring `POLL_ADD`
//! (Linux 5.13) on the socket: the kernel posts a completion each time the
//! socket is woken readable, and checking for one is a load from the
//! completion ring shared with the kernel. The caller reads only when a
//! completion said so, and tells the watch when a read found the socket empty.
//!
//! No wake-up is lost: every byte the kernel queues on a socket wakes its
//! wait queue, which posts a completion; a completion that lands while the
//! caller is reading stays in the ring and makes the next check true (at
//! worst one `recv` that finds nothing).
//!
//! The kernel finishes a poll request in the context of the thread that
//! submitted it (task work), so the watch arms itself from the thread that
//! checks it, and again if another thread takes over (the backend is set up
//! on one thread and polled on another); a watch armed from a thread that
//! then spins or exits would see its completions late. By default the kernel
//! interrupts a spinning submitter (an IPI; tens of microseconds in a VM) to
//! run that task work: the ring is set up with `IORING_SETUP_COOP_TASKRUN`
//! (no IPI: the work runs at the thread's next syscall, which is the read
//! that follows) and `IORING_SETUP_TASKRUN_FLAG`, which raises
//! `IORING_SQ_TASKRUN` in the shared ring at wake-up time, so the check sees
//! a wake-up as soon as it happens, completion posted or not.
//!
//! Where io_uring is unavailable (seccomp, `kernel.io_uring_disabled`) the
//! watch says "maybe readable" every time: the caller then reads every round,
//! as without it.

use io_uring::{cqueue, opcode, types, IoUring};
use std::os::fd::RawFd;

const POLL_TAG: u64 = 0x5245_4144; // "READ"

/// A number per thread (`ThreadId` costs an atomic reference count).
fn thread_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static ME: u64 = NEXT.fetch_add(1, Ordering::Relaxed));
    ME.with(|m| *m)
}

/// Readiness of one socket, checked from user space.
pub struct ReadyWatch {
    ring: Option<IoUring>,
    fd: RawFd,
    /// The thread that armed the poll (0: not armed).
    owner: u64,
    /// io_uring failed once: read every time.
    fallback: bool,
    ready: bool,
}

impl std::fmt::Debug for ReadyWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyWatch")
            .field("fd", &self.fd)
            .field("io_uring", &self.ring.is_some())
            .field("ready", &self.ready)
            .finish()
    }
}

impl ReadyWatch {
    /// Watches `fd` for `POLLIN`. The caller keeps `fd` open for the watch's
    /// life (dropping the watch closes its ring, which cancels the poll).
    /// The poll is armed at the first check.
    pub fn new(fd: RawFd) -> ReadyWatch {
        ReadyWatch {
            ring: None,
            fd,
            owner: 0,
            fallback: false,
            ready: true,
        }
    }

    /// A watch that always says "maybe readable" (the caller reads every
    /// time).
    pub fn disabled() -> ReadyWatch {
        ReadyWatch {
            ring: None,
            fd: -1,
            owner: 0,
            fallback: true,
            ready: true,
        }
    }

    /// True when the kernel's check-free path is in use (io_uring works).
    pub fn is_cheap(&self) -> bool {
        self.ring.is_some()
    }

    /// Arms the poll from this thread, on a fresh ring (dropping the old
    /// one cancels its poll).
    fn arm(&mut self, me: u64) {
        self.ready = true;
        self.ring = None;
        self.owner = me;
        let ring = IoUring::builder()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .build(8)
            .or_else(|_| IoUring::new(8));
        let Ok(mut ring) = ring else {
            self.fallback = true;
            return;
        };
        let mask = (libc::POLLIN | libc::POLLRDHUP) as u32;
        let sqe = opcode::PollAdd::new(types::Fd(self.fd), mask)
            .multi(true)
            .build()
            .user_data(POLL_TAG);
        // SAFETY: a poll request references no user memory, only the fd
        // number, which the caller keeps open while the watch lives.
        let pushed = unsafe { ring.submission().push(&sqe) }.is_ok();
        if pushed && ring.submit().is_ok() {
            self.ring = Some(ring);
        } else {
            self.fallback = true;
        }
    }

    /// Whether the socket may have something to read (or hang-up/error to
    /// report). False only when no wake-up happened since the last
    /// [`ReadyWatch::drained`].
    pub fn maybe_readable(&mut self) -> bool {
        if self.fallback {
            return true;
        }
        let me = thread_number();
        if me != self.owner {
            self.arm(me);
        }
        let Some(ring) = self.ring.as_mut() else {
            return true;
        };
        let mut rearm = false;
        for cqe in ring.completion() {
            if cqe.user_data() != POLL_TAG {
                continue;
            }
            self.ready = true;
            // The multishot poll ended (error, CQ overflow): arm it again.
            if !cqueue::more(cqe.flags()) {
                rearm = true;
            }
        }
        if rearm {
            self.arm(me);
        } else if ring.submission().taskrun() {
            // A wake-up whose completion is not posted yet.
            self.ready = true;
        }
        self.ready
    }

    /// The caller's read found the socket empty (`WouldBlock`, or fewer
    /// bytes than it asked for): no read until the next wake-up.
    pub fn drained(&mut self) {
        if self.ring.is_some() {
            self.ready = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    /// Reads like a caller would: only when the watch says so.
    fn read_if_ready(w: &mut ReadyWatch, s: &mut UnixStream, buf: &mut [u8]) -> usize {
        if !w.maybe_readable() {
            return 0;
        }
        match s.read(buf) {
            Ok(n) => {
                if n < buf.len() {
                    w.drained();
                }
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                w.drained();
                0
            }
            Err(e) => panic!("read: {e}"),
        }
    }

    #[test]
    fn sees_every_write_and_nothing_else() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut w = ReadyWatch::new(b.as_raw_fd());
        let mut buf = [0u8; 64];
        // Nothing written: after one empty read the watch says "not ready".
        assert_eq!(read_if_ready(&mut w, &mut b, &mut buf), 0);
        assert!(w.is_cheap(), "io_uring is available on the CI kernel");
        assert!(!w.maybe_readable());
        for round in 0..100u8 {
            a.write_all(&[round; 3]).unwrap();
            // The completion is posted from the writer's context, before
            // write returns, for a Unix socket.
            let mut got = Vec::new();
            for _ in 0..1000 {
                let n = read_if_ready(&mut w, &mut b, &mut buf);
                got.extend_from_slice(&buf[..n]);
                if got.len() == 3 {
                    break;
                }
                std::thread::yield_now();
            }
            assert_eq!(got, vec![round; 3], "round {round}");
            assert_eq!(read_if_ready(&mut w, &mut b, &mut buf), 0);
            assert!(!w.maybe_readable(), "no wake-up without data");
        }
        // Hang-up is reported as readable (read returns 0).
        drop(a);
        let mut seen = false;
        for _ in 0..1000 {
            if w.maybe_readable() {
                seen = true;
                break;
            }
            std::thread::yield_now();
        }
        assert!(seen, "peer close wakes the watch");
        assert_eq!(b.read(&mut buf).unwrap(), 0);
    }
}
