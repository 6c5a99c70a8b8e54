//! Outstanding SCSI tasks: a slab indexed by the Initiator Task Tag.
//!
//! ITT = generation << 16 | slot, so a stale tag from a finished task never matches a
//! new one in the same slot. Slots are preallocated: submitting and completing a
//! command allocates nothing.

use crate::scsi::cdb::Cdb;

/// The caller's handle on a submitted command: its Initiator Task Tag.
pub type TaskTag = u32;

/// Direction of a command's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// No data (TEST UNIT READY, SYNCHRONIZE CACHE).
    None,
    /// Target to initiator: the buffer's length is the Expected Data Transfer Length.
    Read,
    /// Initiator to target: the buffer holds the data.
    Write,
}

/// A SCSI command to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// LUN number.
    pub lun: u16,
    /// The CDB.
    pub cdb: Cdb,
    /// Data direction.
    pub direction: Direction,
    /// Read destination (its length is the transfer length) or write data. Returned
    /// in the [`crate::Completion`], so callers can recycle buffers.
    pub buffer: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct Task {
    pub lun: u64,
    pub cdb: Cdb,
    pub direction: Direction,
    pub buffer: Vec<u8>,
    /// Submission order, to reissue in order after a reconnect.
    pub seq: u64,
    /// Sent on the current connection.
    pub sent: bool,
    pub cmd_sn: u32,
    /// Read bytes received so far.
    pub received: u32,
    /// Next expected Data-In DataSN.
    pub next_data_sn: u32,
    /// Write bytes solicited or sent so far (offset coverage is checked per R2T).
    pub r2ts: u32,
    /// Times retried after UNIT ATTENTION.
    pub ua_retries: u8,
}

impl Task {
    pub fn expected_len(&self) -> u32 {
        match self.direction {
            Direction::None => 0,
            _ => self.buffer.len() as u32,
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    generation: u16,
    task: Option<Task>,
}

/// Fixed-capacity slab of tasks.
#[derive(Debug)]
pub(crate) struct Tasks {
    slots: Vec<Slot>,
    free: Vec<u16>,
    live: usize,
}

impl Tasks {
    pub fn with_capacity(n: usize) -> Tasks {
        let n = n.clamp(1, 0x7fff);
        Tasks {
            slots: (0..n).map(|_| Slot::default()).collect(),
            free: (0..n as u16).rev().collect(),
            live: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn insert(&mut self, t: Task) -> Option<TaskTag> {
        let i = self.free.pop()?;
        let s = &mut self.slots[i as usize];
        s.generation = s.generation.wrapping_add(1) & 0x7fff;
        s.task = Some(t);
        self.live += 1;
        Some(((s.generation as u32) << 16) | i as u32)
    }

    fn index(&self, tag: TaskTag) -> Option<usize> {
        let i = (tag & 0xffff) as usize;
        let s = self.slots.get(i)?;
        (s.task.is_some() && s.generation as u32 == tag >> 16).then_some(i)
    }

    pub fn get_mut(&mut self, tag: TaskTag) -> Option<&mut Task> {
        let i = self.index(tag)?;
        self.slots[i].task.as_mut()
    }

    pub fn remove(&mut self, tag: TaskTag) -> Option<Task> {
        let i = self.index(tag)?;
        let t = self.slots[i].task.take();
        self.free.push(i as u16);
        self.live -= 1;
        t
    }

    /// Tags of all live tasks.
    pub fn tags(&self) -> Vec<TaskTag> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.task
                    .as_ref()
                    .map(|_| ((s.generation as u32) << 16) | i as u32)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::cdb;

    fn task() -> Task {
        Task {
            lun: 0,
            cdb: cdb::test_unit_ready(),
            direction: Direction::None,
            buffer: Vec::new(),
            seq: 0,
            sent: false,
            cmd_sn: 0,
            received: 0,
            next_data_sn: 0,
            r2ts: 0,
            ua_retries: 0,
        }
    }

    #[test]
    fn stale_tags_do_not_match() {
        let mut t = Tasks::with_capacity(2);
        let a = t.insert(task()).unwrap();
        assert!(t.remove(a).is_some());
        let b = t.insert(task()).unwrap();
        assert_ne!(a, b);
        assert!(t.get_mut(a).is_none());
        assert!(t.get_mut(b).is_some());
        assert!(t.insert(task()).is_some());
        assert!(t.insert(task()).is_none(), "capacity is fixed");
        assert!(t.get_mut(0xdead_beef).is_none());
    }
}
