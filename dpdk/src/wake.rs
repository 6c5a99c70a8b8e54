//! Receive wake-ups: a file descriptor that turns readable when a port's rx
//! queue has frames, so a poller that found nothing for a while can block in
//! `poll(2)` instead of spinning.
//!
//! DPDK offers this through rx interrupts (`rte_eth_dev_rx_intr_ctl_q_get_fd`)
//! on PMDs that implement them; `net_af_packet` does not, yet its queues are
//! kernel `AF_PACKET` sockets with a `PACKET_RX_RING`, and the kernel's
//! `packet_poll` reports `POLLIN` exactly while the ring holds a frame the
//! reader has not handed back (the frame before the kernel's head is not
//! `TP_STATUS_KERNEL`). The PMD does not expose its sockets, so they are
//! found by what it bound them to: `/proc/net/packet` lists every packet
//! socket of this network namespace with its interface index and inode, and
//! `/proc/self/fd` maps this process's descriptors to socket inodes.
//!
//! Reading the ring stays the PMD's: the descriptor is only polled.

use std::collections::HashSet;
use std::os::fd::RawFd;

/// This process's `AF_PACKET` sockets bound to interface `if_index`, in
/// descriptor order (the PMD opens one per queue pair, in queue order).
pub fn af_packet_fds(if_index: u32) -> Vec<RawFd> {
    let Ok(table) = std::fs::read_to_string("/proc/net/packet") else {
        return Vec::new();
    };
    let inodes = packet_socket_inodes(&table, if_index);
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut fds: Vec<RawFd> = dir
        .filter_map(|e| {
            let e = e.ok()?;
            let fd: RawFd = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            let inode = socket_inode(target.to_str()?)?;
            inodes.contains(&inode).then_some(fd)
        })
        .collect();
    fds.sort_unstable();
    fds
}

/// Inodes of the rows of `/proc/net/packet` whose `Iface` column is
/// `if_index`. The header is
/// `sk RefCnt Type Proto Iface R Rmem User Inode` (net/packet/af_packet.c,
/// `packet_seq_show`); a row that does not parse is skipped.
fn packet_socket_inodes(table: &str, if_index: u32) -> HashSet<u64> {
    let mut lines = table.lines();
    let Some(header) = lines.next() else {
        return HashSet::new();
    };
    let cols: Vec<&str> = header.split_whitespace().collect();
    let (Some(iface), Some(inode)) = (
        cols.iter().position(|c| *c == "Iface"),
        cols.iter().position(|c| *c == "Inode"),
    ) else {
        return HashSet::new();
    };
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let i: u32 = f.get(iface)?.parse().ok()?;
            (i == if_index).then(|| f.get(inode)?.parse().ok())?
        })
        .collect()
}

/// The inode of a `/proc/self/fd` link `socket:[N]`.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    static TABLE: &str = "\
sk               RefCnt Type Proto  Iface R Rmem   User   Inode
ffff8c1e4a2b5800 3      3    0003   7     1 0      0      88231
ffff8c1e4a2b6000 3      3    0003   2     1 0      0      88232
ffff8c1e4a2b6800 3      3    0003   7     1 0      0      88240
garbage
";

    #[test]
    fn parse_rows_of_one_interface() {
        let s = packet_socket_inodes(TABLE, 7);
        assert_eq!(s, HashSet::from([88231, 88240]));
        assert!(packet_socket_inodes(TABLE, 3).is_empty());
        assert!(packet_socket_inodes("", 7).is_empty());
        assert!(packet_socket_inodes("sk RefCnt\n1 2\n", 7).is_empty());
    }

    #[test]
    fn parse_socket_links() {
        assert_eq!(socket_inode("socket:[88231]"), Some(88231));
        assert_eq!(socket_inode("pipe:[88231]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
        assert_eq!(socket_inode("/dev/null"), None);
    }

    /// A real packet socket of this process, bound to loopback, is found.
    #[test]
    fn finds_a_bound_packet_socket() {
        // SAFETY: plain socket(2); the fd is closed below.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                (libc::ETH_P_ALL as u16).to_be() as i32,
            )
        };
        assert!(
            fd >= 0,
            "a packet socket needs CAP_NET_RAW (run the tests as root)"
        );
        let sll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
            sll_ifindex: 1,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
        let r = unsafe {
            libc::bind(
                fd,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(r, 0);
        let found = af_packet_fds(1);
        // SAFETY: closes the socket opened above, once.
        unsafe { libc::close(fd) };
        assert!(found.contains(&fd), "{found:?} should contain {fd}");
    }
}
