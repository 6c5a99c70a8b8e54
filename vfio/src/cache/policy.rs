//! Eviction: CLOCK (second chance) inside each set of the set-associative
//! table. A hit sets the slot's reference bit; the hand of a set clears
//! reference bits as it passes and stops at the first slot that is
//! unreferenced, clean and not being written back. Dirty slots it passes
//! are handed to the caller for write-back (dirty write-back before
//! eviction), so they become clean victims on a later lap.

/// What the caller tells the hand about a way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WayState {
    /// Holds no block: take it.
    Empty,
    /// Clean, may be evicted.
    Clean {
        /// Reference bit.
        referenced: bool,
    },
    /// Dirty or pinned: cannot be evicted now.
    Busy {
        /// Dirty and not yet being written back: the caller should start it.
        needs_writeback: bool,
    },
}

/// What the hand chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Use this way (empty or evict its clean block).
    Take(usize),
    /// No way can be taken now.
    None,
}

/// One CLOCK hand per set.
#[derive(Debug)]
pub struct Clock {
    hands: Vec<u8>,
    ways: usize,
}

impl Clock {
    /// Hands for `sets` sets of `ways` ways (`ways <= 256`).
    pub fn new(sets: usize, ways: usize) -> Clock {
        assert!(ways > 0 && ways <= 256);
        Clock {
            hands: vec![0; sets],
            ways,
        }
    }

    /// Runs the hand of `set` for at most two laps. `visit(way)` reports a
    /// way's state; when it reports `Clean { referenced: true }` the caller
    /// clears the bit (the second chance), and when it reports `Busy {
    /// needs_writeback: true }` the caller starts that write-back.
    #[inline]
    pub fn choose(&mut self, set: usize, mut visit: impl FnMut(usize) -> WayState) -> Choice {
        let mut hand = self.hands[set] as usize % self.ways;
        for _ in 0..2 * self.ways {
            let w = hand;
            hand = (hand + 1) % self.ways;
            if let WayState::Empty | WayState::Clean { referenced: false } = visit(w) {
                self.hands[set] = hand as u8;
                return Choice::Take(w);
            }
        }
        self.hands[set] = hand as u8;
        Choice::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_chance() {
        let mut c = Clock::new(1, 4);
        let mut refd = [true, false, true, true];
        let got = c.choose(0, |w| {
            let r = refd[w];
            refd[w] = false;
            WayState::Clean { referenced: r }
        });
        assert_eq!(got, Choice::Take(1));
        // Way 0 lost its reference bit on the way; the hand is past way 1.
        assert!(!refd[0]);
        let got = c.choose(0, |w| {
            let r = refd[w];
            refd[w] = false;
            WayState::Clean { referenced: r }
        });
        assert_eq!(
            got,
            Choice::Take(0),
            "ways 2, 3 get a second chance, 0 does not"
        );
    }

    #[test]
    fn dirty_ways_are_written_back_not_taken() {
        let mut c = Clock::new(2, 2);
        let mut wb = Vec::new();
        let got = c.choose(1, |w| {
            wb.push(w);
            WayState::Busy {
                needs_writeback: true,
            }
        });
        assert_eq!(got, Choice::None);
        assert_eq!(wb, [0, 1, 0, 1]);
    }
}
