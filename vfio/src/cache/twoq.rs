//! Eviction: 2Q (Johnson & Shasha, "2Q: A Low Overhead High Performance
//! Buffer Management Replacement Algorithm", VLDB 1994) inside each set of
//! the set-associative table, for scan resistance.
//!
//! Per set: a block enters *cold* (the paper's A1in, FIFO). A hit on a cold
//! block does not promote it (correlated references, e.g. read-ahead then
//! read, are one use). When a cold block is evicted its block number goes
//! to the set's *ghost* ring (A1out: numbers only, no data); a miss on a
//! block found there installs it *hot* (Am, here CLOCK instead of LRU: a
//! hit sets a reference bit, the hand gives referenced ways a second
//! chance). The victim is the oldest clean cold way while the set holds
//! more than `kin` cold ways (the paper's Kin, 25%), otherwise a hot way by
//! CLOCK, otherwise any clean way. So a one-pass scan cycles through the
//! cold ways and never displaces the hot working set, which plain CLOCK
//! does.
//!
//! State is host-private (like the rest of the shadow): per slot a hot bit,
//! a reference bit and an insertion stamp; per set a hand and `ways` ghost
//! block numbers.

use super::policy::{Choice, WayState};

const NO_BLOCK: u64 = u64::MAX;

/// 2Q state for `sets` sets of `ways` ways.
#[derive(Debug)]
pub struct TwoQ {
    ways: usize,
    kin: usize,
    hot: Vec<bool>,
    refd: Vec<bool>,
    stamp: Vec<u64>,
    tick: u64,
    hands: Vec<u8>,
    ghosts: Vec<u64>,
    ghost_next: Vec<u8>,
}

/// What [`TwoQ::choose`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The way to use, or none.
    pub choice: Choice,
    /// Dirty ways of this kind (`Some(true)` hot, `Some(false)` cold) held
    /// up the choice: the caller should start their write-backs.
    pub write_back_hot: Option<bool>,
}

impl TwoQ {
    /// State for `sets` sets of `ways` ways (`1..=64`).
    pub fn new(sets: usize, ways: usize) -> TwoQ {
        assert!(ways > 0 && ways <= 64);
        TwoQ {
            ways,
            kin: (ways / 4).max(1),
            hot: vec![false; sets * ways],
            refd: vec![false; sets * ways],
            stamp: vec![0; sets * ways],
            tick: 0,
            hands: vec![0; sets],
            ghosts: vec![NO_BLOCK; sets * ways],
            ghost_next: vec![0; sets],
        }
    }

    /// A hit on slot `p` (set-major: `set * ways + way`).
    #[inline]
    pub fn on_hit(&mut self, p: usize) {
        self.refd[p] = true;
    }

    /// Picks a way of `set`; `state[w]` is way `w`'s state (the reference
    /// bit in it is ignored: 2Q keeps its own).
    pub fn choose(&mut self, set: usize, state: &[WayState]) -> Decision {
        let base = set * self.ways;
        let n = self.ways.min(state.len());
        if let Some(w) = state[..n].iter().position(|s| *s == WayState::Empty) {
            return Decision {
                choice: Choice::Take(w),
                write_back_hot: None,
            };
        }
        let clean = |w: usize| matches!(state[w], WayState::Clean { .. });
        let cold_total = (0..n).filter(|&w| !self.hot[base + w]).count();
        let oldest_cold = (0..n)
            .filter(|&w| clean(w) && !self.hot[base + w])
            .min_by_key(|&w| self.stamp[base + w]);
        let any_hot_clean = (0..n).any(|w| clean(w) && self.hot[base + w]);
        let prefer_cold = cold_total > self.kin || !any_hot_clean;
        if prefer_cold {
            if let Some(w) = oldest_cold {
                return Decision {
                    choice: Choice::Take(w),
                    write_back_hot: None,
                };
            }
        }
        if any_hot_clean {
            // CLOCK over the clean hot ways; ends within two laps.
            let mut hand = self.hands[set] as usize % n;
            for _ in 0..2 * n {
                let w = hand;
                hand = (hand + 1) % n;
                if !(clean(w) && self.hot[base + w]) {
                    continue;
                }
                if self.refd[base + w] {
                    self.refd[base + w] = false;
                    continue;
                }
                self.hands[set] = hand as u8;
                return Decision {
                    choice: Choice::Take(w),
                    // Cold ways over quota were all dirty: write them back.
                    write_back_hot: prefer_cold.then_some(false),
                };
            }
        }
        match oldest_cold {
            Some(w) => Decision {
                choice: Choice::Take(w),
                write_back_hot: Some(true),
            },
            None => Decision {
                choice: Choice::None,
                write_back_hot: Some(!prefer_cold),
            },
        }
    }

    /// Slot `p` of `set` now holds `block`; `evicted` is the block it held
    /// (if any). Installs `block` hot if it is in the set's ghost ring,
    /// cold otherwise; an evicted cold block joins the ghost ring.
    pub fn insert(&mut self, set: usize, p: usize, block: u64, evicted: Option<u64>) {
        let g = set * self.ways;
        if let Some(old) = evicted {
            if !self.hot[p] {
                let i = self.ghost_next[set] as usize % self.ways;
                self.ghosts[g + i] = old;
                self.ghost_next[set] = ((i + 1) % self.ways) as u8;
            }
        }
        let ghost = self.ghosts[g..g + self.ways]
            .iter()
            .position(|&b| b == block);
        if let Some(i) = ghost {
            self.ghosts[g + i] = NO_BLOCK;
        }
        self.hot[p] = ghost.is_some();
        self.refd[p] = false;
        self.tick += 1;
        self.stamp[p] = self.tick;
    }

    /// Slot `p` is hot (tests).
    pub fn is_hot(&self, p: usize) -> bool {
        self.hot[p]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAN: WayState = WayState::Clean { referenced: false };

    /// Drives one set of 4 ways the way the cache does; returns hits.
    fn run(q: &mut TwoQ, slots: &mut [u64; 4], refs: &[u64]) -> usize {
        let mut hits = 0;
        for &b in refs {
            if let Some(w) = slots.iter().position(|&s| s == b) {
                q.on_hit(w);
                hits += 1;
                continue;
            }
            let st: Vec<WayState> = slots
                .iter()
                .map(|&s| {
                    if s == NO_BLOCK {
                        WayState::Empty
                    } else {
                        CLEAN
                    }
                })
                .collect();
            let d = q.choose(0, &st);
            let Choice::Take(w) = d.choice else {
                panic!("all clean: a way must be chosen")
            };
            let old = (slots[w] != NO_BLOCK).then_some(slots[w]);
            q.insert(0, w, b, old);
            slots[w] = b;
        }
        hits
    }

    #[test]
    fn ghost_hit_installs_hot_and_scans_do_not_evict_it() {
        let mut q = TwoQ::new(1, 4);
        let mut slots = [NO_BLOCK; 4];
        // 1 and 2 enter cold, are pushed out by 3..=6, come back hot.
        run(&mut q, &mut slots, &[1, 2, 3, 4, 5, 6, 1, 2]);
        let w1 = slots.iter().position(|&s| s == 1).unwrap();
        let w2 = slots.iter().position(|&s| s == 2).unwrap();
        assert!(q.is_hot(w1) && q.is_hot(w2));
        // A long scan: 1 and 2 stay (only the cold ways cycle).
        let scan: Vec<u64> = (100..200).collect();
        run(&mut q, &mut slots, &scan);
        assert!(slots.contains(&1) && slots.contains(&2), "{slots:?}");
        assert_eq!(run(&mut q, &mut slots, &[1, 2]), 2);
    }

    #[test]
    fn cold_hits_do_not_promote() {
        let mut q = TwoQ::new(1, 4);
        let mut slots = [NO_BLOCK; 4];
        run(&mut q, &mut slots, &[1, 1, 1, 2, 3, 4]);
        assert!((0..4).all(|w| !q.is_hot(w)));
        // FIFO among cold ways: 1 (oldest) goes first despite its hits.
        run(&mut q, &mut slots, &[5]);
        assert!(!slots.contains(&1), "{slots:?}");
    }

    #[test]
    fn dirty_ways_ask_for_write_back() {
        let mut q = TwoQ::new(1, 2);
        let busy = WayState::Busy {
            needs_writeback: true,
        };
        let d = q.choose(0, &[busy, busy]);
        assert_eq!(d.choice, Choice::None);
        assert_eq!(d.write_back_hot, Some(false), "all cold: write back cold");
        let d = q.choose(0, &[busy, CLEAN]);
        assert_eq!(d.choice, Choice::Take(1));
    }
}
