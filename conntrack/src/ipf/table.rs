//! The lists of fragments waiting for the rest of their datagram
//! (`ipf_handle_frag`, `ipf_process_frag`, `ipf_list_state_transition`,
//! `ipf_delete_expired_frags` in OVS's `lib/ipf.c`).
//!
//! Everything is preallocated at [`Reassembler::new`]: a slab of fragment
//! slots, a slab of lists, and a chained hash index over the lists; adding
//! and taking fragments allocates nothing. A list keeps its fragments
//! sorted by first data byte (insertion into a short chain).

use super::{Counter, FragInfo, Ipf, LIST_TIMEOUT_MS};

const NONE: u32 = u32::MAX;

/// What identifies a datagram's fragments (OVS's `ipf_list_key`): the
/// addresses, the identification, the IPv4 protocol, the zone of the `ct`
/// action and the datapath pass (OVS's `recirc_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListKey {
    /// Source address (IPv4 in the first 4 bytes).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Identification.
    pub id: u32,
    /// The pass the `ct` action runs in (0: the first).
    pub pass: u32,
    /// The `ct` action's zone.
    pub zone: u16,
    /// IPv6.
    pub v6: bool,
    /// IPv4 protocol (0 for IPv6).
    pub proto: u8,
}

impl ListKey {
    /// The key of fragment `f` at a `ct` in `zone`, pass `pass`.
    pub fn of(f: &FragInfo, zone: u16, pass: u32) -> ListKey {
        ListKey {
            src: f.src,
            dst: f.dst,
            id: f.id,
            pass,
            zone,
            v6: f.v6,
            proto: f.proto,
        }
    }

    /// The key's hash (also what picks its [`super::Shards`] shard).
    pub fn hash(&self) -> u64 {
        let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut mix = |v: u64| {
            h = (h ^ v).wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 29;
        };
        for c in self.src.chunks_exact(8).chain(self.dst.chunks_exact(8)) {
            mix(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        mix(u64::from(self.id) | u64::from(self.pass) << 32);
        mix(u64::from(self.zone) | u64::from(self.v6) << 16 | u64::from(self.proto) << 24);
        h
    }
}

/// Where a fragment sits in its datagram and frame (what reassembly and
/// the write-back need).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FragPos {
    /// First data byte (OVS's counter).
    pub start: u16,
    /// Last data byte.
    pub end: u16,
    /// Data offset in the frame.
    pub data: u32,
    /// Data bytes.
    pub len: u32,
    /// IPv6: the fragment header's offset in the frame.
    pub frag_hdr: u32,
    /// IPv6: the byte naming the fragment header.
    pub names_frag: u32,
}

/// What [`Reassembler::add`] did with a fragment.
#[derive(Debug)]
pub enum Add<T> {
    /// Kept; the datagram is not complete yet.
    Held,
    /// Kept, and it completed its datagram: [`Reassembler::take`] the list.
    Complete(u32),
    /// Not taken (reassembly off, fragments in process at the limit, its
    /// list already completed or failed, or too long): the tracker sees
    /// the fragment as it is (`+trk+inv`).
    Refused(T),
    /// It overlaps or duplicates a fragment held (`+trk+inv`, counted).
    Overlap(T),
}

struct Slot<T> {
    item: Option<T>,
    pos: FragPos,
    next: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Complete but too large to reassemble: further fragments refused
    /// until it expires (OVS's `IPF_LIST_STATE_REASS_FAIL`).
    Failed,
}

struct List {
    key: ListKey,
    /// First fragment slot (sorted by start), NONE when unused.
    head: u32,
    n: u32,
    first_seen: bool,
    last_seen: bool,
    state: State,
    expires: u64,
    /// Hash chain.
    hnext: u32,
    used: bool,
    /// The first fragment's frame length up to the end of its IP packet
    /// (OVS's size check counts it whole).
    first_len: u32,
}

/// One lcore's fragments in process (see the module docs).
pub struct Reassembler<T> {
    slots: Vec<Slot<T>>,
    free_slots: Vec<u32>,
    lists: Vec<List>,
    free_lists: Vec<u32>,
    heads: Vec<u32>,
    /// Lists in use.
    active: u32,
    /// The earliest expiry of a list in use (u64::MAX: none).
    next_expiry: u64,
}

impl<T> Reassembler<T> {
    /// Room for `cap` fragments (and as many lists).
    pub fn new(cap: u32) -> Reassembler<T> {
        let cap = cap.max(1);
        let buckets = (cap as usize * 2).next_power_of_two();
        Reassembler {
            slots: (0..cap)
                .map(|_| Slot {
                    item: None,
                    pos: FragPos::default(),
                    next: NONE,
                })
                .collect(),
            free_slots: (0..cap).rev().collect(),
            lists: (0..cap)
                .map(|_| List {
                    key: ListKey::default(),
                    head: NONE,
                    n: 0,
                    first_seen: false,
                    last_seen: false,
                    state: State::Open,
                    expires: 0,
                    hnext: NONE,
                    used: false,
                    first_len: 0,
                })
                .collect(),
            free_lists: (0..cap).rev().collect(),
            heads: vec![NONE; buckets],
            active: 0,
            next_expiry: u64::MAX,
        }
    }

    /// Fragments held.
    pub fn held(&self) -> usize {
        self.slots.len() - self.free_slots.len()
    }

    /// Lists in use.
    pub fn lists(&self) -> u32 {
        self.active
    }

    /// When the earliest list in use expires (`u64::MAX`: none).
    pub fn next_expiry(&self) -> u64 {
        self.next_expiry
    }

    fn bucket(&self, key: &ListKey) -> usize {
        (key.hash() as usize) & (self.heads.len() - 1)
    }

    fn find(&self, key: &ListKey) -> Option<u32> {
        let mut l = self.heads[self.bucket(key)];
        while l != NONE {
            let li = &self.lists[l as usize];
            if li.key == *key {
                return Some(l);
            }
            l = li.hnext;
        }
        None
    }

    /// Offer fragment `f` (with the caller's `item`, e.g. the frame) to
    /// the list of `key` (OVS's `ipf_handle_frag`).
    pub fn add(&mut self, ipf: &Ipf, key: &ListKey, f: &FragInfo, item: T, now: u64) -> Add<T> {
        if !ipf.enabled(key.v6) {
            return Add::Refused(item);
        }
        // OVS checks the fragments in process first.
        if !ipf.reserve() {
            return Add::Refused(item);
        }
        match self.admit(ipf, key, f, item, now) {
            Ok(a) => a,
            Err(a) => {
                ipf.release(1);
                a
            }
        }
    }

    /// [`Reassembler::add`] once a place is reserved: `Err` gives it back.
    fn admit(
        &mut self,
        ipf: &Ipf,
        key: &ListKey,
        f: &FragInfo,
        item: T,
        now: u64,
    ) -> Result<Add<T>, Add<T>> {
        let list = match self.find(key) {
            Some(l) => {
                let li = &self.lists[l as usize];
                if li.state == State::Failed || li.n >= ipf.max_list_len(key.v6) {
                    return Err(Add::Refused(item));
                }
                Some(l)
            }
            None => None,
        };
        // OVS's `ipf_is_frag_duped`: the new first or last byte inside a
        // fragment held.
        if let Some(l) = list {
            let mut s = self.lists[l as usize].head;
            while s != NONE {
                let p = &self.slots[s as usize].pos;
                if (f.start >= p.start && f.start <= p.end) || (f.end >= p.start && f.end <= p.end)
                {
                    ipf.count(key.v6, Counter::Overlapped, 1);
                    return Err(Add::Overlap(item));
                }
                s = self.slots[s as usize].next;
            }
        }
        if self.free_slots.is_empty() || (list.is_none() && self.free_lists.is_empty()) {
            return Err(Add::Refused(item));
        }
        let l = match list {
            Some(l) => l,
            None => {
                let Some(l) = self.free_lists.pop() else {
                    return Err(Add::Refused(item));
                };
                let b = self.bucket(key);
                let expires = now.saturating_add(LIST_TIMEOUT_MS);
                self.lists[l as usize] = List {
                    key: *key,
                    head: NONE,
                    n: 0,
                    first_seen: false,
                    last_seen: false,
                    state: State::Open,
                    expires,
                    hnext: self.heads[b],
                    used: true,
                    first_len: 0,
                };
                self.heads[b] = l;
                self.active += 1;
                self.next_expiry = self.next_expiry.min(expires);
                l
            }
        };
        let Some(s) = self.free_slots.pop() else {
            // Unreachable: checked above.
            return Err(Add::Refused(item));
        };
        let pos = FragPos {
            start: f.start,
            end: f.end,
            data: f.data as u32,
            len: f.len as u32,
            frag_hdr: f.frag_hdr as u32,
            names_frag: f.names_frag as u32,
        };
        self.slots[s as usize] = Slot {
            item: Some(item),
            pos,
            next: NONE,
        };
        // Insert sorted by start (after equal starts: arrival order).
        let head = self.lists[l as usize].head;
        if head == NONE || self.slots[head as usize].pos.start > f.start {
            self.slots[s as usize].next = head;
            self.lists[l as usize].head = s;
        } else {
            let mut p = head;
            loop {
                let nx = self.slots[p as usize].next;
                if nx == NONE || self.slots[nx as usize].pos.start > f.start {
                    self.slots[s as usize].next = nx;
                    self.slots[p as usize].next = s;
                    break;
                }
                p = nx;
            }
        }
        ipf.count(key.v6, Counter::Accepted, 1);
        let li = &mut self.lists[l as usize];
        li.n += 1;
        li.first_seen |= f.first;
        li.last_seen |= f.last;
        if f.first {
            li.first_len = f.end_of_ip as u32;
        }
        if !(li.first_seen && li.last_seen && self.contiguous(l)) {
            return Ok(Add::Held);
        }
        // OVS's size check (`ipf_reassemble_v4_frags`): the first
        // fragment's frame plus the rest of the data.
        let li = &self.lists[l as usize];
        let first = &self.slots[li.head as usize];
        let rest = if first.next == NONE {
            0
        } else {
            let second = self.slots[first.next as usize].pos.start;
            let mut last = li.head;
            while self.slots[last as usize].next != NONE {
                last = self.slots[last as usize].next;
            }
            i64::from(self.slots[last as usize].pos.end) - i64::from(second) + 1
        };
        if i64::from(li.first_len) + rest > 65535 {
            self.lists[l as usize].state = State::Failed;
            return Ok(Add::Held);
        }
        Ok(Add::Complete(l))
    }

    /// OVS's `ipf_list_complete`: each fragment starts right after the
    /// previous one.
    fn contiguous(&self, l: u32) -> bool {
        let mut s = self.lists[l as usize].head;
        while s != NONE {
            let nx = self.slots[s as usize].next;
            if nx == NONE {
                return true;
            }
            if self.slots[s as usize].pos.end.wrapping_add(1) != self.slots[nx as usize].pos.start {
                return false;
            }
            s = nx;
        }
        true
    }

    /// Take a completed list's fragments, by first data byte, into `out`,
    /// and free the list.
    pub fn take(&mut self, ipf: &Ipf, l: u32, out: &mut Vec<(T, FragPos)>) {
        let Some(li) = self.lists.get(l as usize).filter(|li| li.used) else {
            return;
        };
        let v6 = li.key.v6;
        let n = self.drain(l, |item, pos| out.push((item, pos)));
        ipf.count(v6, Counter::Completed, u64::from(n));
        ipf.release(n);
    }

    /// Remove list `l`, handing each fragment to `f`; returns how many.
    fn drain(&mut self, l: u32, mut f: impl FnMut(T, FragPos)) -> u32 {
        let key = self.lists[l as usize].key;
        let b = self.bucket(&key);
        // Unlink from the hash chain.
        if self.heads[b] == l {
            self.heads[b] = self.lists[l as usize].hnext;
        } else {
            let mut p = self.heads[b];
            while p != NONE {
                let nx = self.lists[p as usize].hnext;
                if nx == l {
                    self.lists[p as usize].hnext = self.lists[l as usize].hnext;
                    break;
                }
                p = nx;
            }
        }
        let mut s = self.lists[l as usize].head;
        let mut n = 0;
        while s != NONE {
            let slot = &mut self.slots[s as usize];
            let nx = slot.next;
            slot.next = NONE;
            if let Some(item) = slot.item.take() {
                f(item, slot.pos);
            }
            self.free_slots.push(s);
            n += 1;
            s = nx;
        }
        let li = &mut self.lists[l as usize];
        li.used = false;
        li.head = NONE;
        li.hnext = NONE;
        self.free_lists.push(l);
        self.active -= 1;
        n
    }

    /// Drop the fragments of every list whose time is up (`now` in ms),
    /// handing each to `dropped`; returns how many fragments.
    pub fn expire(&mut self, ipf: &Ipf, now: u64, mut dropped: impl FnMut(T)) -> usize {
        if now < self.next_expiry {
            return 0;
        }
        let mut next = u64::MAX;
        let mut total = 0;
        for l in 0..self.lists.len() as u32 {
            let li = &self.lists[l as usize];
            if !li.used {
                continue;
            }
            if li.expires > now {
                next = next.min(li.expires);
                continue;
            }
            let v6 = li.key.v6;
            let n = self.drain(l, |item, _| dropped(item));
            ipf.count(v6, Counter::Expired, u64::from(n));
            ipf.release(n);
            total += n as usize;
        }
        self.next_expiry = next;
        total
    }

    /// Drop every fragment held (counted as purged); returns how many.
    pub fn purge(&mut self, ipf: &Ipf, mut dropped: impl FnMut(T)) -> usize {
        let mut total = 0;
        for l in 0..self.lists.len() as u32 {
            if self.lists[l as usize].used {
                let v6 = self.lists[l as usize].key.v6;
                let n = self.drain(l, |item, _| dropped(item));
                ipf.count(v6, Counter::Purged, u64::from(n));
                ipf.release(n);
                total += n as usize;
            }
        }
        self.next_expiry = u64::MAX;
        total
    }
}
