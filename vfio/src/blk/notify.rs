//! Config-change notifications to the front end (online resize).
//!
//! vhost-user spec, "Back-end message types":
//! `VHOST_USER_BACKEND_CONFIG_CHANGE_MSG` (id 2, formerly
//! `VHOST_USER_SLAVE_CONFIG_CHANGE_MSG`) goes on the back-end request
//! channel (the socket the front end passed with
//! `VHOST_USER_SET_BACKEND_REQ_FD` once `VHOST_USER_PROTOCOL_F_BACKEND_REQ`
//! was negotiated); it has no payload. The front end answers by reading the
//! config space again (`VHOST_USER_GET_CONFIG`) and, for virtio-blk when
//! `capacity` changed, raising the virtio config interrupt, after which the
//! guest driver re-reads `capacity` (VIRTIO 1.2 §5.2.4).
//!
//! rust-vmm's `vhost` crate (0.18) receives the channel but its
//! `vhost_user::Backend` has no way to send this message, so the server
//! keeps its own duplicate of the socket
//! ([`crate::vhost_user::server`]) and this type writes the 12-byte header
//! itself. `VHOST_USER_NEED_REPLY` is not set, so no answer comes back on
//! the channel the crate also owns.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

/// Request id of `VHOST_USER_BACKEND_CONFIG_CHANGE_MSG`.
pub const BACKEND_CONFIG_CHANGE_MSG: u32 = 2;
/// Header flags: protocol version 1 in bits 0..2, no reply wanted.
const VERSION_1: u32 = 0x1;

/// Sends config-change notifications on a back-end request channel.
#[derive(Debug, Clone)]
pub struct ConfigNotifier {
    sock: Arc<OwnedFd>,
}

impl ConfigNotifier {
    /// Notifies on `sock` (a connected `AF_UNIX` stream socket).
    pub fn new(sock: OwnedFd) -> Self {
        ConfigNotifier {
            sock: Arc::new(sock),
        }
    }

    /// The message: `u32 request, u32 flags, u32 size` (little-endian, as
    /// every vhost-user header), size 0.
    pub fn message() -> [u8; 12] {
        let mut m = [0u8; 12];
        m[0..4].copy_from_slice(&BACKEND_CONFIG_CHANGE_MSG.to_le_bytes());
        m[4..8].copy_from_slice(&VERSION_1.to_le_bytes());
        m
    }

    /// Sends one notification without blocking (a front end whose channel
    /// is full is told nothing: an error, never a stalled poller).
    pub fn notify(&self) -> io::Result<()> {
        let m = Self::message();
        // SAFETY: send(2) of a 12-byte stack buffer on an fd this value owns.
        let n = unsafe {
            libc::send(
                self.sock.as_raw_fd(),
                m.as_ptr().cast(),
                m.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != m.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "partial config-change message",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn sends_the_header() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let n = ConfigNotifier::new(OwnedFd::from(a));
        n.clone().notify().unwrap();
        let mut got = [0u8; 12];
        b.read_exact(&mut got).unwrap();
        assert_eq!(got, [2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        drop(b);
        assert!(n.notify().is_err(), "peer gone: an error, no SIGPIPE");
    }
}
