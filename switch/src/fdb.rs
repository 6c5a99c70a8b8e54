//! The MAC learning table of the `normal` action: per-VLAN, shared by all
//! workers, fixed size (set-associative, 4 ways per 64-byte bucket), aging.
//!
//! Lock-free: each entry is two `AtomicU64` words, `key = VALID | vlan << 48
//! | mac` and `val = port << 48 | check << 32 | time_ms (32 bits, wrapping)`.
//! A reader loads key, value, key again and accepts the value only when both
//! key loads agree and the value's 16-bit `check` (derived from the key)
//! matches, so a concurrent replacement by another worker shows as a miss
//! (the frame is flooded), never as a wrong port. Learning writes only when
//! the port changes or the entry is more than `REFRESH_MS` old, so steady
//! traffic does not bounce the cache line between cores.
//!
//! Size limit: the capacity is fixed at construction; when a bucket is full,
//! the expired or oldest entry is replaced (counted as an eviction).

use core::sync::atomic::{AtomicU64, Ordering::*};

const WAYS: usize = 4;
const VALID: u64 = 1 << 63;
/// A learned entry is re-stamped at most this often.
pub const REFRESH_MS: u32 = 1000;
/// OVS default MAC aging time.
pub const DEFAULT_AGING_MS: u32 = 300_000;

#[repr(C, align(64))]
#[derive(Default)]
struct Bucket {
    e: [[AtomicU64; 2]; WAYS],
}

/// One learned entry, as shown by `vswitch fdb show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FdbEntry {
    /// VLAN id (0 = untagged).
    pub vlan: u16,
    /// MAC address.
    pub mac: [u8; 6],
    /// Port it was learned on.
    pub port: u16,
    /// Milliseconds since it was last seen.
    pub age_ms: u32,
}

/// Outcome of [`Fdb::learn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// Already known on that port and fresh: nothing written.
    Unchanged,
    /// Timestamp refreshed.
    Refreshed,
    /// New entry.
    New,
    /// New entry that replaced a live one (table full).
    Evicted,
    /// Known on another port: moved.
    Moved,
    /// Source is multicast/broadcast: not learned.
    Ignored,
}

/// The shared MAC table.
pub struct Fdb {
    buckets: Box<[Bucket]>,
    mask: usize,
    aging_ms: u32,
}

fn pack_key(vlan: u16, mac: [u8; 6]) -> u64 {
    let mut m = [0u8; 8];
    m[2..].copy_from_slice(&mac);
    VALID | (u64::from(vlan & 0x0fff) << 48) | u64::from_be_bytes(m)
}

fn mix(k: u64) -> u64 {
    let r = u128::from(k ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xd6e8_feb8_6659_fd93);
    (r as u64) ^ ((r >> 64) as u64)
}

fn check_of(k: u64) -> u64 {
    (mix(k) >> 48) & 0xffff
}

fn pack_val(k: u64, port: u16, now: u32) -> u64 {
    (u64::from(port) << 48) | (check_of(k) << 32) | u64::from(now)
}

impl Fdb {
    /// A table of at least `capacity` entries (rounded up to a power of two
    /// number of 4-entry buckets), entries expiring after `aging_ms`.
    pub fn new(capacity: usize, aging_ms: u32) -> Self {
        let n = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        let buckets: Box<[Bucket]> = (0..n).map(|_| Bucket::default()).collect();
        Fdb {
            buckets,
            mask: n - 1,
            aging_ms,
        }
    }

    /// Total capacity in entries.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// Aging time in milliseconds.
    pub fn aging_ms(&self) -> u32 {
        self.aging_ms
    }

    fn bucket(&self, k: u64) -> &Bucket {
        &self.buckets[(mix(k) as usize) & self.mask]
    }

    fn read(e: &[AtomicU64; 2], k: u64) -> Option<u64> {
        if e[0].load(Acquire) != k {
            return None;
        }
        let v = e[1].load(Acquire);
        if e[0].load(Acquire) != k || (v >> 32) & 0xffff != check_of(k) {
            return None;
        }
        Some(v)
    }

    fn alive(&self, v: u64, now: u32) -> bool {
        now.wrapping_sub(v as u32) < self.aging_ms
    }

    /// Port `mac` was last seen on in `vlan`, if learned and not aged out.
    #[inline]
    pub fn lookup(&self, vlan: u16, mac: [u8; 6], now_ms: u64) -> Option<u16> {
        let k = pack_key(vlan, mac);
        let now = now_ms as u32;
        for e in &self.bucket(k).e {
            if let Some(v) = Self::read(e, k) {
                return self.alive(v, now).then_some((v >> 48) as u16);
            }
        }
        None
    }

    /// Learn that `mac` in `vlan` is behind `port`.
    #[inline]
    pub fn learn(&self, vlan: u16, mac: [u8; 6], port: u16, now_ms: u64) -> Learned {
        if mac[0] & 1 != 0 {
            return Learned::Ignored;
        }
        let k = pack_key(vlan, mac);
        let now = now_ms as u32;
        let b = self.bucket(k);
        for e in &b.e {
            if let Some(v) = Self::read(e, k) {
                let old_port = (v >> 48) as u16;
                let alive = self.alive(v, now);
                if old_port == port && now.wrapping_sub(v as u32) < REFRESH_MS {
                    return Learned::Unchanged;
                }
                e[1].store(pack_val(k, port, now), Release);
                return if old_port != port && alive {
                    Learned::Moved
                } else {
                    Learned::Refreshed
                };
            }
        }
        // Pick a victim: empty, else expired, else oldest.
        let mut victim = 0;
        let mut best_age = 0u32;
        let mut evict = true;
        for (i, e) in b.e.iter().enumerate() {
            let key = e[0].load(Relaxed);
            if key & VALID == 0 {
                victim = i;
                evict = false;
                break;
            }
            let v = e[1].load(Relaxed);
            let age = now.wrapping_sub(v as u32);
            if age >= self.aging_ms {
                victim = i;
                evict = false;
                break;
            }
            if age >= best_age {
                best_age = age;
                victim = i;
            }
        }
        let e = &b.e[victim];
        e[0].store(0, Release);
        e[1].store(pack_val(k, port, now), Release);
        e[0].store(k, Release);
        if evict {
            Learned::Evicted
        } else {
            Learned::New
        }
    }

    /// Forget every entry learned on `port` (port removed).
    pub fn flush_port(&self, port: u16) {
        for b in self.buckets.iter() {
            for e in &b.e {
                if e[0].load(Acquire) & VALID != 0 && (e[1].load(Acquire) >> 48) as u16 == port {
                    e[0].store(0, Release);
                }
            }
        }
    }

    /// Live entries (not aged out), sorted by VLAN then MAC.
    pub fn entries(&self, now_ms: u64) -> Vec<FdbEntry> {
        let now = now_ms as u32;
        let mut out = Vec::new();
        for b in self.buckets.iter() {
            for e in &b.e {
                let k = e[0].load(Acquire);
                if k & VALID == 0 {
                    continue;
                }
                if let Some(v) = Self::read(e, k) {
                    if self.alive(v, now) {
                        let m = k.to_be_bytes();
                        out.push(FdbEntry {
                            vlan: ((k >> 48) & 0x0fff) as u16,
                            mac: m[2..].try_into().unwrap(),
                            port: (v >> 48) as u16,
                            age_ms: now.wrapping_sub(v as u32),
                        });
                    }
                }
            }
        }
        out.sort_by_key(|e| (e.vlan, e.mac));
        out
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const M1: [u8; 6] = [2, 0, 0, 0, 0, 1];

    #[test]
    fn learn_lookup_move_age() {
        let f = Fdb::new(64, 10_000);
        assert_eq!(f.lookup(0, M1, 0), None);
        assert_eq!(f.learn(0, M1, 3, 0), Learned::New);
        assert_eq!(f.lookup(0, M1, 5), Some(3));
        assert_eq!(f.lookup(7, M1, 5), None, "per-VLAN");
        assert_eq!(f.learn(0, M1, 3, 10), Learned::Unchanged);
        assert_eq!(f.learn(0, M1, 4, 20), Learned::Moved);
        assert_eq!(f.lookup(0, M1, 20), Some(4));
        assert_eq!(f.learn(0, M1, 4, 5000), Learned::Refreshed);
        assert_eq!(f.lookup(0, M1, 14_999), Some(4));
        assert_eq!(f.lookup(0, M1, 15_000), None, "aged out");
        assert!(f.entries(15_000).is_empty());
        assert_eq!(f.learn(0, [1, 0, 0, 0, 0, 1], 1, 0), Learned::Ignored);
    }

    #[test]
    fn size_limit_evicts_oldest() {
        let f = Fdb::new(4, 1_000_000);
        assert_eq!(f.capacity(), 4);
        for i in 0..4u8 {
            assert_eq!(
                f.learn(0, [2, 0, 0, 0, 0, i], 1, u64::from(i)),
                Learned::New
            );
        }
        assert_eq!(f.learn(0, [2, 0, 0, 0, 1, 0], 2, 10), Learned::Evicted);
        assert_eq!(f.lookup(0, [2, 0, 0, 0, 0, 0], 10), None, "oldest evicted");
        assert_eq!(f.lookup(0, [2, 0, 0, 0, 0, 1], 10), Some(1));
        assert_eq!(f.entries(10).len(), 4);
        f.flush_port(1);
        assert_eq!(f.entries(10).len(), 1);
    }

    #[test]
    fn concurrent_learners_never_yield_a_wrong_port() {
        // 3 threads hammer a tiny table (heavy slot contention); MAC i always
        // lives on port i % 7 + 1, so any lookup result other than that (or
        // a miss) is a torn entry.
        use std::sync::Arc;
        let f = Arc::new(Fdb::new(16, 1_000_000));
        let mac = |i: u32| [2, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8, 0];
        let handles: Vec<_> = (0..3u32)
            .map(|t| {
                let f = Arc::clone(&f);
                std::thread::spawn(move || {
                    let mut hits = 0u32;
                    for n in 0..60_000u32 {
                        let i = (n * 7 + t * 13) % 500;
                        f.learn(0, mac(i), (i % 7 + 1) as u16, u64::from(n / 16));
                        let j = (n * 11 + t) % 500;
                        if let Some(p) = f.lookup(0, mac(j), u64::from(n / 16)) {
                            assert_eq!(p, (j % 7 + 1) as u16, "mac {j}");
                            hits += 1;
                        }
                    }
                    hits
                })
            })
            .collect();
        let hits: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(hits > 0);
    }
}
