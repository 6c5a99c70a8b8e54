//! Tuple-space search classifier: one hash subtable per distinct mask,
//! subtables visited in decreasing order of their highest rule priority so
//! the search stops as soon as no remaining subtable can beat the best match.
//!
//! The classifier is immutable: the control thread builds a new one per
//! table version (see [`crate::table`]), workers only read it. It holds
//! indices into the version's rule array.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::ct::CtKey;
use crate::key::FlowKey;
use crate::regs::Regs;
use crate::rule::Match;

/// A masked key that hashes with [`FlowKey::hash`].
#[derive(Clone, Copy, PartialEq, Eq)]
struct Masked(FlowKey);

impl Hash for Masked {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash());
    }
}

/// Hasher that passes through the single `u64` written by [`Masked`].
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A masked key plus masked pipeline metadata (subtables that match
/// `metadata` only).
#[derive(Clone, Copy, PartialEq, Eq)]
struct MaskedMeta(FlowKey, u64);

impl Hash for MaskedMeta {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash() ^ self.1.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
}

/// A masked key, metadata, ct fields and registers (subtables whose rules
/// match ct fields or registers).
#[derive(Clone, Copy, PartialEq, Eq)]
struct MaskedCt(FlowKey, u64, CtKey, Regs);

impl Hash for MaskedCt {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut r = 0u64;
        for &w in &self.3 .0 {
            r = (r.rotate_left(5) ^ u64::from(w)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        state.write_u64(
            self.0.hash()
                ^ self.1.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ self.2.hash().rotate_left(17)
                ^ r.rotate_left(29),
        );
    }
}

struct Subtable {
    mask: FlowKey,
    /// Metadata bits this subtable's rules match (0 for most: then
    /// `rules` holds them, else `meta_rules`).
    meta_mask: u64,
    /// ct field bits this subtable's rules match (zero for most; else
    /// `ct_rules` holds them).
    ct_mask: CtKey,
    /// Register bits this subtable's rules match (zero for most).
    reg_mask: Regs,
    /// The rules read ct fields or registers: `ct_rules` holds them.
    has_ct: bool,
    ct_rules: HashMap<MaskedCt, (u16, u32), BuildHasherDefault<PassThrough>>,
    max_priority: u16,
    /// Masked value -> the best rule with exactly that match: `(priority,
    /// index)`. Rules with the same mask and value but a lower priority (or
    /// a later index at equal priority) can never be returned, so they are
    /// not stored; keeping the value inline saves a pointer chase.
    rules: HashMap<Masked, (u16, u32), BuildHasherDefault<PassThrough>>,
    meta_rules: HashMap<MaskedMeta, (u16, u32), BuildHasherDefault<PassThrough>>,
}

/// The input the classifier is built from: per rule, its match and priority,
/// in installation order (the index is what lookups return).
pub struct Entry {
    /// The rule's match.
    pub matcher: Match,
    /// The rule's priority.
    pub priority: u16,
}

/// Immutable tuple-space classifier.
pub struct Classifier {
    subtables: Vec<Subtable>,
    has_meta: bool,
}

impl Classifier {
    /// Build from rules in installation order. Among equal priorities the
    /// earlier rule (lower index) wins.
    pub fn build<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Classifier {
        let mut by_mask: HashMap<MaskedCt, usize, BuildHasherDefault<PassThrough>> =
            HashMap::default();
        let mut subtables: Vec<Subtable> = Vec::new();
        for (i, e) in entries.into_iter().enumerate() {
            let m = &e.matcher;
            let si = *by_mask
                .entry(MaskedCt(m.mask, m.meta_mask, m.ct_mask, m.reg_mask))
                .or_insert_with(|| {
                    subtables.push(Subtable {
                        mask: m.mask,
                        meta_mask: m.meta_mask,
                        ct_mask: m.ct_mask,
                        reg_mask: m.reg_mask,
                        has_ct: m.has_ct() || m.has_regs(),
                        ct_rules: HashMap::default(),
                        max_priority: 0,
                        rules: HashMap::default(),
                        meta_rules: HashMap::default(),
                    });
                    subtables.len() - 1
                });
            let st = &mut subtables[si];
            st.max_priority = st.max_priority.max(e.priority);
            let cand = (e.priority, i as u32);
            let keep_best = |best: &mut (u16, u32)| {
                if cand.0 > best.0 {
                    *best = cand;
                }
            };
            if m.has_ct() || m.has_regs() {
                st.ct_rules
                    .entry(MaskedCt(m.value, m.meta_value, m.ct_value, m.reg_value))
                    .and_modify(keep_best)
                    .or_insert(cand);
            } else if m.meta_mask == 0 {
                st.rules
                    .entry(Masked(m.value))
                    .and_modify(keep_best)
                    .or_insert(cand);
            } else {
                st.meta_rules
                    .entry(MaskedMeta(m.value, m.meta_value))
                    .and_modify(keep_best)
                    .or_insert(cand);
            }
        }
        subtables.sort_by_key(|s| core::cmp::Reverse(s.max_priority));
        let has_meta = subtables.iter().any(|s| s.meta_mask != 0 || s.has_ct);
        Classifier {
            subtables,
            has_meta,
        }
    }

    /// Number of subtables (distinct masks).
    pub fn subtables(&self) -> usize {
        self.subtables.len()
    }

    /// Index of the highest-priority rule matching `key` (metadata 0).
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<u32> {
        if self.has_meta {
            self.lookup_meta(key, 0)
        } else {
            self.lookup_plain(key)
        }
    }

    /// [`Classifier::lookup`] for classifiers without metadata matches
    /// (the single-table datapath): the loop the switch always had.
    #[inline]
    pub(crate) fn lookup_plain(&self, key: &FlowKey) -> Option<u32> {
        debug_assert!(!self.has_meta);
        let mut best: Option<(u16, u32)> = None;
        for st in &self.subtables {
            if let Some((bp, _)) = best {
                if st.max_priority < bp {
                    break;
                }
            }
            if let Some(&(p, i)) = st.rules.get(&Masked(key.masked(&st.mask))) {
                best = match best {
                    Some((bp, bi)) if bp > p || (bp == p && bi < i) => Some((bp, bi)),
                    _ => Some((p, i)),
                };
            }
        }
        best.map(|(_, i)| i)
    }

    /// Index of the highest-priority rule matching `key` with pipeline
    /// metadata `meta` (and no ct fields).
    #[inline(always)]
    pub fn lookup_meta(&self, key: &FlowKey, meta: u64) -> Option<u32> {
        self.lookup_ct(key, meta, &CtKey::ZERO)
    }

    /// Index of the highest-priority rule matching `key` with pipeline
    /// metadata `meta` and ct fields `ct`.
    #[inline(always)]
    pub fn lookup_ct(&self, key: &FlowKey, meta: u64, ct: &CtKey) -> Option<u32> {
        self.lookup_regs(key, meta, &Regs::ZERO, ct)
    }

    /// Index of the highest-priority rule matching `key` with pipeline
    /// metadata `meta`, registers `regs` and ct fields `ct`.
    #[inline(always)]
    pub fn lookup_regs(&self, key: &FlowKey, meta: u64, regs: &Regs, ct: &CtKey) -> Option<u32> {
        let mut best: Option<(u16, u32)> = None;
        for st in &self.subtables {
            if let Some((bp, _)) = best {
                if st.max_priority < bp {
                    break;
                }
            }
            let found = if st.has_ct {
                st.ct_rules.get(&MaskedCt(
                    key.masked(&st.mask),
                    meta & st.meta_mask,
                    ct.masked(&st.ct_mask),
                    regs.masked(&st.reg_mask),
                ))
            } else if st.meta_mask == 0 {
                st.rules.get(&Masked(key.masked(&st.mask)))
            } else {
                st.meta_rules
                    .get(&MaskedMeta(key.masked(&st.mask), meta & st.meta_mask))
            };
            if let Some(&(p, i)) = found {
                best = match best {
                    Some((bp, bi)) if bp > p || (bp == p && bi < i) => Some((bp, bi)),
                    _ => Some((p, i)),
                };
            }
        }
        best.map(|(_, i)| i)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::extract::extract;
    use crate::rule::parse_match;
    use crate::testutil::*;

    fn entry(s: &str, priority: u16) -> Entry {
        Entry {
            matcher: parse_match(s).unwrap().0,
            priority,
        }
    }

    fn key(f: &[u8], port: u16) -> FlowKey {
        let mut k = FlowKey::ZERO;
        extract(f, port, &mut k);
        k
    }

    #[test]
    fn priorities_and_overlaps() {
        let rules = [
            entry("", 0),                                  // 0: catch-all
            entry("ip,nw_dst=10.0.0.0/8", 100),            // 1
            entry("tcp,nw_dst=10.0.0.0/8,tp_dst=80", 200), // 2
            entry("ip,nw_dst=10.1.0.0/16", 150),           // 3
            entry("in_port=2", 300),                       // 4
            entry("ip,nw_dst=10.0.0.0/8", 100),            // 5: duplicate of 1, loses the tie
        ];
        let c = Classifier::build(&rules);
        assert_eq!(c.subtables(), 5);
        let k = |d: [u8; 4], dp: u16, port: u16| key(&tcp4([1, 1, 1, 1], d, 1000, dp, 0, 64), port);
        assert_eq!(c.lookup(&k([10, 2, 0, 1], 80, 1)), Some(2));
        assert_eq!(c.lookup(&k([10, 2, 0, 1], 81, 1)), Some(1));
        assert_eq!(c.lookup(&k([10, 1, 0, 1], 81, 1)), Some(3));
        assert_eq!(c.lookup(&k([10, 1, 0, 1], 80, 1)), Some(2));
        assert_eq!(c.lookup(&k([11, 1, 0, 1], 80, 1)), Some(0));
        assert_eq!(c.lookup(&k([10, 1, 0, 1], 80, 2)), Some(4));
        let c = Classifier::build(&rules[1..2]);
        assert_eq!(c.lookup(&k([11, 1, 0, 1], 80, 1)), None);
    }
}
