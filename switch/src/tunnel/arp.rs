//! The tunnel endpoints' neighbour table: next-hop MACs of remote
//! endpoints, learned from ARP (RFC 826) replies and gratuitous ARPs on
//! the underlay, with expiry, and the ARP frames the endpoints send
//! (requests for unresolved remotes, replies for their local IPs).
//!
//! Remote endpoints are reached directly on the underlay's link (no
//! routing table: a remote behind a router is not supported).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::wire::arp::{field as af, PACKET_LEN};
use crate::wire::ethernet::{ethertype, HEADER_LEN};

/// How long a learned MAC is used (ms); after half of it a request
/// refreshes the entry while it is still used.
pub const ENTRY_TTL_MS: u64 = 300_000;
/// `expires_ms` of an entry set by [`ArpCache::set_static`].
pub const STATIC: u64 = u64::MAX;
/// At most one request per remote IP per this many ms.
pub const REQUEST_INTERVAL_MS: u64 = 1_000;

/// A resolved neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    /// Its MAC.
    pub mac: [u8; 6],
    /// The switch port it was learned on.
    pub port: u16,
    /// When it stops being used (ms).
    pub expires_ms: u64,
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Known; `refresh`: send a request now (the entry is half-way old).
    Known(Neighbour, bool),
    /// Unknown: send a request now.
    Request,
    /// Unknown, a request went out less than [`REQUEST_INTERVAL_MS`] ago.
    Pending,
}

#[derive(Default)]
struct Table {
    entries: HashMap<[u8; 4], Neighbour>,
    requested: HashMap<[u8; 4], u64>,
}

/// The neighbour table, shared by every worker. Lookups lock it once per
/// (burst, remote); [`ArpCache::generation`] lets a worker keep a copy of
/// an entry and notice changes with one atomic load.
#[derive(Default)]
pub struct ArpCache {
    table: Mutex<Table>,
    generation: AtomicU64,
}

impl ArpCache {
    /// Changes whenever an entry is learned, moves or is removed.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Learn `ip` at `mac` on `port` (ARP replies, gratuitous ARPs, and
    /// the senders of requests for a local IP).
    pub fn learn(&self, ip: [u8; 4], mac: [u8; 6], port: u16, now_ms: u64) {
        if ip == [0; 4] || mac[0] & 1 != 0 {
            return;
        }
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if t.entries.get(&ip).is_some_and(|o| o.expires_ms == STATIC) {
            return;
        }
        let n = Neighbour {
            mac,
            port,
            expires_ms: now_ms + ENTRY_TTL_MS,
        };
        let old = t.entries.insert(ip, n);
        t.requested.remove(&ip);
        if old.is_none_or(|o| o.mac != mac || o.port != port) {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Fix `ip` at `mac` on `port` (a tunnel's `remote_mac`): never
    /// expires, never refreshed, and ARP does not move it.
    pub fn set_static(&self, ip: [u8; 4], mac: [u8; 6], port: u16) {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let n = Neighbour {
            mac,
            port,
            expires_ms: STATIC,
        };
        if t.entries.insert(ip, n) != Some(n) {
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Look `ip` up at `now_ms`, deciding whether a request should go out
    /// (and recording that it does).
    pub fn resolve(&self, ip: [u8; 4], now_ms: u64) -> Resolve {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let may_ask = t
            .requested
            .get(&ip)
            .is_none_or(|&at| now_ms >= at + REQUEST_INTERVAL_MS);
        match t.entries.get(&ip).copied() {
            Some(n) if now_ms < n.expires_ms => {
                let refresh = may_ask && now_ms + ENTRY_TTL_MS / 2 >= n.expires_ms;
                if refresh {
                    t.requested.insert(ip, now_ms);
                }
                Resolve::Known(n, refresh)
            }
            stale => {
                if stale.is_some() {
                    t.entries.remove(&ip);
                    self.generation.fetch_add(1, Ordering::Release);
                }
                if may_ask {
                    t.requested.insert(ip, now_ms);
                    Resolve::Request
                } else {
                    Resolve::Pending
                }
            }
        }
    }

    /// Every entry: (IP, neighbour).
    pub fn entries(&self) -> Vec<([u8; 4], Neighbour)> {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        t.entries.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// Length of the ARP frames built here (Ethernet + ARP, padded to the
/// 60-byte Ethernet minimum).
pub const FRAME_LEN: usize = 60;

fn write_arp(
    b: &mut [u8],
    eth_dst: [u8; 6],
    op: u16,
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
) {
    b[..FRAME_LEN].fill(0);
    b[0..6].copy_from_slice(&eth_dst);
    b[6..12].copy_from_slice(&sha);
    b[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
    let a = &mut b[HEADER_LEN..HEADER_LEN + PACKET_LEN];
    a[af::HTYPE].copy_from_slice(&1u16.to_be_bytes());
    a[af::PTYPE].copy_from_slice(&ethertype::IPV4.to_be_bytes());
    a[af::HLEN] = 6;
    a[af::PLEN] = 4;
    a[af::OPER].copy_from_slice(&op.to_be_bytes());
    a[af::SHA].copy_from_slice(&sha);
    a[af::SPA].copy_from_slice(&spa);
    a[af::THA].copy_from_slice(&tha);
    a[af::TPA].copy_from_slice(&tpa);
}

/// Write into `b[..FRAME_LEN]` a broadcast request "who has `target`, tell
/// `sender_ip`" from `sender_mac`.
pub fn build_request(b: &mut [u8], sender_mac: [u8; 6], sender_ip: [u8; 4], target: [u8; 4]) {
    write_arp(b, [0xff; 6], 1, sender_mac, sender_ip, [0; 6], target);
}

/// Write into `b[..FRAME_LEN]` the reply "`ip` is at `mac`" to the asker
/// `to_mac`/`to_ip`.
pub fn build_reply(b: &mut [u8], mac: [u8; 6], ip: [u8; 4], to_mac: [u8; 6], to_ip: [u8; 4]) {
    write_arp(b, to_mac, 2, mac, ip, to_mac, to_ip);
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::arp::ArpPacket;

    #[test]
    fn learn_resolve_expire() {
        let c = ArpCache::default();
        let ip = [10, 0, 0, 2];
        assert_eq!(c.resolve(ip, 0), Resolve::Request);
        assert_eq!(c.resolve(ip, 10), Resolve::Pending);
        assert_eq!(c.resolve(ip, REQUEST_INTERVAL_MS), Resolve::Request);
        let g = c.generation();
        c.learn(ip, [2, 0, 0, 0, 0, 2], 3, 2000);
        assert_ne!(c.generation(), g);
        let n = Neighbour {
            mac: [2, 0, 0, 0, 0, 2],
            port: 3,
            expires_ms: 2000 + ENTRY_TTL_MS,
        };
        assert_eq!(c.resolve(ip, 3000), Resolve::Known(n, false));
        // Half-way: still used, and a refresh goes out (once per interval).
        let half = 2000 + ENTRY_TTL_MS / 2;
        assert_eq!(c.resolve(ip, half), Resolve::Known(n, true));
        assert_eq!(c.resolve(ip, half + 1), Resolve::Known(n, false));
        // Expired: gone.
        assert_eq!(c.resolve(ip, n.expires_ms), Resolve::Request);
        // Multicast senders and 0.0.0.0 are not learned.
        c.learn([10, 0, 0, 9], [1, 0, 0, 0, 0, 1], 0, 0);
        c.learn([0; 4], [2, 0, 0, 0, 0, 1], 0, 0);
        assert!(c.entries().is_empty());
    }

    #[test]
    fn static_entries_stay() {
        let c = ArpCache::default();
        let ip = [10, 0, 0, 2];
        c.set_static(ip, [2, 0, 0, 0, 0, 2], 1);
        c.learn(ip, [2, 0, 0, 0, 0, 3], 4, 0);
        let n = Neighbour {
            mac: [2, 0, 0, 0, 0, 2],
            port: 1,
            expires_ms: STATIC,
        };
        assert_eq!(c.resolve(ip, 0), Resolve::Known(n, false));
        assert_eq!(c.resolve(ip, 1 << 50), Resolve::Known(n, false));
    }

    #[test]
    fn frames_parse_back() {
        let mut b = [0xeeu8; 64];
        build_request(&mut b, [2, 0, 0, 0, 0, 1], [10, 0, 0, 1], [10, 0, 0, 2]);
        assert_eq!(&b[0..6], &[0xff; 6]);
        let a = ArpPacket::new_checked(&b[14..FRAME_LEN]).unwrap();
        assert_eq!(
            (a.operation(), a.spa(), a.tpa()),
            (1, [10, 0, 0, 1], [10, 0, 0, 2])
        );
        assert_eq!(&b[42..60], &[0; 18]);
        build_reply(
            &mut b,
            [2, 0, 0, 0, 0, 1],
            [10, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            [10, 0, 0, 2],
        );
        let a = ArpPacket::new_checked(&b[14..FRAME_LEN]).unwrap();
        assert_eq!(a.operation(), 2);
        assert_eq!((a.sha(), a.tha()), ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]));
        assert_eq!(&b[0..6], &[2, 0, 0, 0, 0, 2]);
    }
}
