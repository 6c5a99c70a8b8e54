//! Catching the back-end request channel on its way to the `vhost` crate.
//!
//! `VHOST_USER_SET_BACKEND_REQ_FD` (id 21) carries one fd, the channel on
//! which the back end sends requests to the front end. The `vhost` crate
//! takes it and wraps it in a `vhost_user::Backend` that cannot send
//! `VHOST_USER_BACKEND_CONFIG_CHANGE_MSG`. Before the crate reads each
//! message, [`peek_channel`] looks at its header with `MSG_PEEK`; for id 21
//! it peeks again with room for one fd. On Linux a peek of `SCM_RIGHTS`
//! data installs duplicates of the passed descriptors and leaves the
//! message, fds included, queued for the real read, so the crate still
//! gets its copy and we hold ours (same socket).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// `VHOST_USER_SET_BACKEND_REQ_FD` (formerly `SET_SLAVE_REQ_FD`).
pub const SET_BACKEND_REQ_FD: u32 = 21;
/// vhost-user header: request, flags, size (u32 each).
const HEADER_LEN: usize = 12;

/// Peeks at the next message on `sock` (blocking until one arrives); if it
/// is `SET_BACKEND_REQ_FD`, returns a duplicate of the fd it carries.
/// `Ok(None)` for any other message, a short header or end of stream.
pub fn peek_channel(sock: &UnixStream) -> io::Result<Option<OwnedFd>> {
    let mut hdr = [0u8; HEADER_LEN];
    // First look without a control buffer: no descriptor is installed.
    if peek(sock, &mut hdr, None)? < HEADER_LEN {
        return Ok(None);
    }
    if u32::from_le_bytes(hdr[0..4].try_into().expect("4 bytes")) != SET_BACKEND_REQ_FD {
        return Ok(None);
    }
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    let mut cbuf = [0u64; 8]; // 64 bytes, aligned for cmsghdr
    debug_assert!(space <= std::mem::size_of_val(&cbuf));
    let mut fd = None;
    peek(sock, &mut hdr, Some((&mut cbuf, space, &mut fd)))?;
    Ok(fd)
}

type Control<'a> = (&'a mut [u64; 8], usize, &'a mut Option<OwnedFd>);

fn peek(sock: &UnixStream, buf: &mut [u8], control: Option<Control<'_>>) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed msghdr is valid (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    let mut out_fd = None;
    if let Some((cbuf, space, fd)) = control {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        out_fd = Some(fd);
    }
    let n = loop {
        // SAFETY: recvmsg into `buf` and the control buffer, both live and
        // of the lengths given in `msg`.
        let n = unsafe {
            libc::recvmsg(
                sock.as_raw_fd(),
                &mut msg,
                libc::MSG_PEEK | libc::MSG_CMSG_CLOEXEC,
            )
        };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    if let Some(slot) = out_fd {
        // SAFETY: walking the control buffer recvmsg filled, with the
        // kernel's CMSG_* macros; each SCM_RIGHTS payload is an array of
        // fds now owned by this process.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(c) as *const libc::c_int;
                    let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                        / std::mem::size_of::<libc::c_int>();
                    for i in 0..count {
                        let fd = OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i)));
                        if slot.is_none() {
                            *slot = Some(fd);
                        }
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn send_with_fd(s: &UnixStream, bytes: &[u8], fd: i32) {
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut _,
            iov_len: bytes.len(),
        };
        let mut cbuf = [0u64; 8];
        // SAFETY: test-only sendmsg with one SCM_RIGHTS fd, buffers live.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut i32, fd);
            assert_eq!(libc::sendmsg(s.as_raw_fd(), &msg, 0), bytes.len() as isize);
        }
    }

    #[test]
    fn takes_a_copy_of_the_channel_and_leaves_the_message() {
        let (front, back) = UnixStream::pair().unwrap();
        let (chan_front, mut chan_back) = UnixStream::pair().unwrap();
        // Another message first: not ours.
        let mut other = [0u8; 12];
        other[0..4].copy_from_slice(&5u32.to_le_bytes());
        (&front).write_all(&other).unwrap();
        assert!(peek_channel(&back).unwrap().is_none());
        let mut got = [0u8; 12];
        (&back).read_exact(&mut got).unwrap();
        assert_eq!(got, other, "a peek consumes nothing");
        let mut msg = [0u8; 12];
        msg[0..4].copy_from_slice(&SET_BACKEND_REQ_FD.to_le_bytes());
        msg[4..8].copy_from_slice(&1u32.to_le_bytes());
        send_with_fd(&front, &msg, chan_front.as_raw_fd());
        let ours = peek_channel(&back).unwrap().expect("the channel");
        // The message is still there for the real reader.
        let mut again = [0u8; 12];
        assert_eq!(peek(&back, &mut again, None).unwrap(), 12);
        assert_eq!(again, msg);
        // Our copy reaches the front end's end of the channel.
        crate::blk::ConfigNotifier::new(ours).notify().unwrap();
        let mut n = [0u8; 12];
        chan_back.read_exact(&mut n).unwrap();
        assert_eq!(u32::from_le_bytes(n[0..4].try_into().unwrap()), 2);
    }
}
