//! Interrupts delivered through eventfd.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

/// An eventfd the kernel signals on each interrupt.
#[derive(Debug)]
pub struct EventFd {
    file: File,
}

impl EventFd {
    /// A new non-blocking eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor we own.
        Ok(EventFd {
            file: unsafe { File::from_raw_fd(fd) },
        })
    }

    /// The raw descriptor (to hand to the kernel).
    pub fn raw(&self) -> i32 {
        self.file.as_raw_fd()
    }

    /// Waits up to `timeout` for interrupts; returns how many arrived since
    /// the last wait (0 on timeout).
    pub fn wait(&self, timeout: Duration) -> io::Result<u64> {
        let mut p = libc::pollfd {
            fd: self.raw(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `p` is one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if r == 0 {
            return Ok(0);
        }
        let mut b = [0u8; 8];
        match (&self.file).read(&mut b) {
            Ok(8) => Ok(u64::from_ne_bytes(b)),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short eventfd read",
            )),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Signals the eventfd (as the kernel does on an interrupt).
    pub fn signal(&self) -> io::Result<()> {
        use std::io::Write;
        (&self.file).write_all(&1u64.to_ne_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_signals() {
        let e = EventFd::new().unwrap();
        assert_eq!(e.wait(Duration::from_millis(1)).unwrap(), 0);
        e.signal().unwrap();
        e.signal().unwrap();
        assert_eq!(e.wait(Duration::from_millis(100)).unwrap(), 2);
    }
}
