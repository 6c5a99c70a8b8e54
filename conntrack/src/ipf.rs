//! IP fragment reassembly before tracking, as Open vSwitch's `ipf`
//! (`lib/ipf.c`, `ovs-appctl dpctl/ipf-*`), enabled by default as in OVS
//! 3.1.
//!
//! ```text
//!  fragment at a ct action ─► frag::check ─ not a fragment ──────────► the tracker
//!                               │ invalid (length, IPv4 header checksum,
//!                               │ non-last fragment under the minimum size) ─► +trk+inv
//!                               ▼
//!                   Reassembler::add  (list per src, dst, id, proto, zone, pass)
//!                     refused (disabled, fragments in process ≥ max, list done
//!                              or too long) ─► the tracker (a fragment: +trk+inv)
//!                     overlap / duplicate ─► +trk+inv
//!                     held ─► waits (expires after 15 s: dropped, counted)
//!                     complete ─► Reassembler::take (fragments by offset)
//!                                  ─► reass::reassemble ─► the tracker runs once on the datagram
//!                                  ─► reass::write_back (NAT: addresses, first fragment's L4)
//!                                  ─► every fragment continues with the datagram's ct fields
//! ```
//!
//! [`Ipf`] is the shared part (settings and counters, what `dpctl/ipf-set-*`
//! and `dpctl/ipf-get-status` read and write); a [`Reassembler`] holds the
//! fragments themselves; [`Shards`] puts reassemblers behind spin locks,
//! sharded by list key, so that every forwarding lcore shares them (the
//! switch keeps one, with the frames held by reference). The rules are OVS's, including its
//! corner cases (`ipf_is_frag_duped` only refuses a fragment whose first
//! or last byte falls inside one already held; data bytes are 16-bit
//! counters): a differential against OVS-DPDK sees the same frames.

mod frag;
mod reass;
mod shards;
mod table;

pub use frag::{check, Check, FragInfo};
pub use reass::{reassemble, write_back};
pub use shards::{ShardGuard, Shards, SHARDS};
pub use table::{Add, FragPos, ListKey, Reassembler};

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// OVS's `IPF_V4_FRAG_SIZE_MIN_DEF`: non-last IPv4 fragments shorter
/// than this (IP header included) are invalid.
pub const V4_MIN_FRAG_DEFAULT: u32 = 1200;
/// OVS's `IPF_V6_FRAG_SIZE_MIN_DEF`.
pub const V6_MIN_FRAG_DEFAULT: u32 = 1280;
/// The smallest minimum fragment size that may be set (OVS's
/// `IPF_V4_FRAG_SIZE_LBOUND`, `IPF_V6_FRAG_SIZE_LBOUND`).
pub const MIN_FRAG_LOWER_BOUND: u32 = 400;
/// Fragments in process at most, by default (OVS's `IPF_MAX_FRAGS_DEFAULT`).
pub const MAX_FRAGS_DEFAULT: u32 = 1000;
/// The largest `max_frags` that may be set (OVS's `IPF_NFRAG_UBOUND`);
/// also what a [`Reassembler`] preallocates.
pub const MAX_FRAGS_UPPER_BOUND: u32 = 5000;
/// A list of fragments expires this long after its first fragment (OVS's
/// `IPF_FRAG_LIST_TIMEOUT`).
pub const LIST_TIMEOUT_MS: u64 = 15_000;

/// Counters of one address family, as `dpctl/ipf-get-status` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FamilyStatus {
    /// Reassembly on for this family.
    pub enabled: bool,
    /// Non-last fragments shorter than this are invalid.
    pub min_frag_size: u32,
    /// Fragments taken into a list.
    pub accepted: u64,
    /// Fragments sent on after their datagram completed.
    pub completed: u64,
    /// Fragments dropped because their list expired.
    pub expired: u64,
    /// Fragments refused as too small.
    pub too_small: u64,
    /// Fragments refused as overlapping (or duplicating) a held one.
    pub overlapped: u64,
    /// Fragments dropped otherwise (their pass no longer exists).
    pub purged: u64,
}

/// `dpctl/ipf-get-status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpfStatus {
    /// Fragments in process at most.
    pub max_frags: u32,
    /// Fragments in process now.
    pub frags: u32,
    /// IPv4.
    pub v4: FamilyStatus,
    /// IPv6.
    pub v6: FamilyStatus,
}

/// Counter indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// See [`FamilyStatus::accepted`].
    Accepted,
    /// See [`FamilyStatus::completed`].
    Completed,
    /// See [`FamilyStatus::expired`].
    Expired,
    /// See [`FamilyStatus::too_small`].
    TooSmall,
    /// See [`FamilyStatus::overlapped`].
    Overlapped,
    /// See [`FamilyStatus::purged`].
    Purged,
}

const COUNTERS: usize = 6;

/// Reassembly settings and counters, shared by every forwarding lcore
/// (atomics only: the fast path reads one flag).
#[derive(Debug)]
pub struct Ipf {
    enabled: [AtomicBool; 2],
    min_frag: [AtomicU32; 2],
    max_frags: AtomicU32,
    frags: AtomicU32,
    counters: [[AtomicU64; COUNTERS]; 2],
}

impl Default for Ipf {
    fn default() -> Self {
        Ipf {
            enabled: [AtomicBool::new(true), AtomicBool::new(true)],
            min_frag: [
                AtomicU32::new(V4_MIN_FRAG_DEFAULT),
                AtomicU32::new(V6_MIN_FRAG_DEFAULT),
            ],
            max_frags: AtomicU32::new(MAX_FRAGS_DEFAULT),
            frags: AtomicU32::new(0),
            counters: Default::default(),
        }
    }
}

impl Ipf {
    /// Whether reassembly is on for IPv6 (`v6`) or IPv4.
    #[inline]
    pub fn enabled(&self, v6: bool) -> bool {
        self.enabled[usize::from(v6)].load(Ordering::Relaxed)
    }

    /// Whether reassembly is on for either family.
    #[inline]
    pub fn any_enabled(&self) -> bool {
        self.enabled(false) || self.enabled(true)
    }

    /// `dpctl/ipf-set-enabled` / `ipf-set-disabled`.
    pub fn set_enabled(&self, v6: bool, on: bool) {
        self.enabled[usize::from(v6)].store(on, Ordering::Relaxed);
    }

    /// The minimum size of a non-last fragment (IP header included).
    #[inline]
    pub fn min_frag(&self, v6: bool) -> u32 {
        self.min_frag[usize::from(v6)].load(Ordering::Relaxed)
    }

    /// `dpctl/ipf-set-min-frag`: refused below [`MIN_FRAG_LOWER_BOUND`].
    pub fn set_min_frag(&self, v6: bool, size: u32) -> Result<(), String> {
        if size < MIN_FRAG_LOWER_BOUND {
            return Err(format!(
                "minimum fragment size {size} is below {MIN_FRAG_LOWER_BOUND}"
            ));
        }
        self.min_frag[usize::from(v6)].store(size, Ordering::Relaxed);
        Ok(())
    }

    /// Fragments in process at most.
    #[inline]
    pub fn max_frags(&self) -> u32 {
        self.max_frags.load(Ordering::Relaxed)
    }

    /// `dpctl/ipf-set-max-nfrags`: refused above [`MAX_FRAGS_UPPER_BOUND`].
    pub fn set_max_frags(&self, n: u32) -> Result<(), String> {
        if n > MAX_FRAGS_UPPER_BOUND {
            return Err(format!(
                "maximum fragments {n} is above {MAX_FRAGS_UPPER_BOUND}"
            ));
        }
        self.max_frags.store(n, Ordering::Relaxed);
        Ok(())
    }

    /// The most fragments one IPv4 list may hold (OVS's
    /// `max_v4_frag_list_size`: the largest datagram in minimum-size
    /// fragments); IPv6 lists are bounded by the slots only.
    pub fn max_list_len(&self, v6: bool) -> u32 {
        if v6 {
            return u32::from(u16::MAX);
        }
        let min = self.min_frag(false).max(MIN_FRAG_LOWER_BOUND) - 60;
        (65535 - 60u32).div_ceil(min)
    }

    /// Count one event.
    #[inline]
    pub fn count(&self, v6: bool, c: Counter, n: u64) {
        self.counters[usize::from(v6)][c as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Take a place for one more fragment in process; false at the limit.
    pub(crate) fn reserve(&self) -> bool {
        let max = self.max_frags();
        self.frags
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Give back `n` places.
    pub(crate) fn release(&self, n: u32) {
        self.frags.fetch_sub(n, Ordering::Relaxed);
    }

    /// `dpctl/ipf-get-status`.
    pub fn status(&self) -> IpfStatus {
        let fam = |v6: bool| {
            let c = |k: Counter| self.counters[usize::from(v6)][k as usize].load(Ordering::Relaxed);
            FamilyStatus {
                enabled: self.enabled(v6),
                min_frag_size: self.min_frag(v6),
                accepted: c(Counter::Accepted),
                completed: c(Counter::Completed),
                expired: c(Counter::Expired),
                too_small: c(Counter::TooSmall),
                overlapped: c(Counter::Overlapped),
                purged: c(Counter::Purged),
            }
        };
        IpfStatus {
            max_frags: self.max_frags(),
            frags: self.frags.load(Ordering::Relaxed),
            v4: fam(false),
            v6: fam(true),
        }
    }
}

impl IpfStatus {
    /// The text of `ovs-appctl dpctl/ipf-get-status`, line for line.
    pub fn to_ovs_text(&self) -> String {
        let mut s = String::new();
        s += "        Fragmentation Module Status\n";
        s += "        ---------------------------\n";
        s += &format!("        v4 enabled: {}\n", u8::from(self.v4.enabled));
        s += &format!("        v6 enabled: {}\n", u8::from(self.v6.enabled));
        s += &format!("        max num frags (v4/v6): {}\n", self.max_frags);
        s += &format!("        num frag: {}\n", self.frags);
        for (name, f) in [("v4", &self.v4), ("v6", &self.v6)] {
            s += &format!("        min {name} frag size: {}\n", f.min_frag_size);
            s += &format!("        {name} frags accepted: {}\n", f.accepted);
            s += &format!("        {name} frags completed: {}\n", f.completed);
            s += &format!("        {name} frags expired: {}\n", f.expired);
            s += &format!("        {name} frags too small: {}\n", f.too_small);
            s += &format!("        {name} frags overlapped: {}\n", f.overlapped);
            s += &format!("        {name} frags purged: {}\n", f.purged);
        }
        s
    }
}
