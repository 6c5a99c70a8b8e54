//! The controller channel: how frames reach an OpenFlow controller
//! (packet-in) and how a controller's frames enter the datapath
//! (packet-out).
//!
//! ```text
//!  worker: action output:CONTROLLER ─► port 63 (ring PMD) ─► to_ctl ring ─► dispatcher thread
//!                                                                  │ mbuf.port → in_port
//!                                                                  ▼
//!                                                   ofproto::Bridge::packet_in → controllers
//!  controller PACKET_OUT ─► Channel::packet_out: mbuf from the pool, job queued,
//!                           frame enqueued on from_ctl ─► port 63's rx queue ─► worker:
//!                           one job per frame: its actions (switch::action::execute), or the
//!                           flow tables from the job's in_port (OFPP_TABLE) ─► tx as usual
//! ```
//!
//! Nothing here is on the fast path of ordinary traffic: the worker only
//! looks at jobs for frames that come from port 63, which only carries
//! packet-outs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use dpdk::{Burst, MbufRing, Mempool, Port};
use ofproto::bridge::{Bridge as OfBridge, PacketOut};
use switch::action::Action;

use super::ports::Ports;

/// Frames queued to or from the controller at most (beyond: dropped and
/// counted, as OVS rate-limits packet-ins).
const DEPTH: usize = 1024;

/// What the worker does with one packet-out frame.
#[derive(Debug)]
pub struct Job {
    /// The port the frame counts as received on (the controller: none).
    pub in_port: Option<u16>,
    /// Its actions, or `None` for the flow tables.
    pub actions: Option<Vec<Action>>,
}

/// The process's side of the controller channel.
pub struct Channel {
    to_ctl: Arc<MbufRing>,
    from_ctl: Arc<MbufRing>,
    /// One job per frame on `from_ctl`, in the same order.
    pub jobs: Arc<ArrayQueue<Job>>,
    pool: Arc<Mempool>,
    /// Held while a job and its frame are queued, so that packet-outs from
    /// several connections cannot pair one's job with another's frame.
    order: Mutex<()>,
    /// Frames that reached no controller or found the queue full.
    pub dropped: AtomicU64,
}

/// Creates the channel and the switch's end of it (a ring port with one
/// tx queue per worker), to add with [`Ports::add_controller`].
pub fn link(workers: usize, pool: Arc<Mempool>) -> Result<(Port, Arc<Channel>), String> {
    let ring = |name| {
        MbufRing::new(name, DEPTH as u32 * 2)
            .map(Arc::new)
            .map_err(|e| format!("controller channel ring: {e}"))
    };
    let to_ctl = ring("vsw_to_ctl0")?;
    let from_ctl = ring("vsw_from_ctl0")?;
    let port = Port::from_rings(
        "net_ring_ctl0",
        std::slice::from_ref(&from_ctl),
        &vec![Arc::clone(&to_ctl); workers.max(1)],
    )
    .map_err(|e| format!("controller channel port: {e}"))?;
    Ok((
        port,
        Arc::new(Channel {
            to_ctl,
            from_ctl,
            jobs: Arc::new(ArrayQueue::new(DEPTH)),
            pool,
            order: Mutex::new(()),
            dropped: AtomicU64::new(0),
        }),
    ))
}

impl Channel {
    /// Queues a controller's frame for the worker that polls port 63.
    pub fn packet_out(&self, p: PacketOut) -> Result<(), String> {
        let mut m = self.pool.alloc().ok_or("no free mbuf for the packet-out")?;
        let room = m
            .append(p.data.len())
            .ok_or_else(|| format!("a {}-byte frame does not fit an mbuf", p.data.len()))?;
        room.copy_from_slice(&p.data);
        let _one_at_a_time = self.order.lock().unwrap_or_else(|e| e.into_inner());
        // Every frame on the ring has its job queued before it, so the ring
        // (twice the job queue) has room whenever the job queue has.
        if self.from_ctl.len() >= DEPTH {
            return Err("too many packet-outs in flight".into());
        }
        // The job goes first: the worker pops one per frame it dequeues.
        self.jobs
            .push(Job {
                in_port: p.in_port,
                actions: p.actions,
            })
            .map_err(|_| "too many packet-outs in flight")?;
        let mut b = Burst::new();
        let _ = b.push(m);
        let queued = self.from_ctl.enqueue_burst(&mut b);
        debug_assert_eq!(queued, 1, "the ring has room (checked above)");
        Ok(())
    }

    /// Starts the thread that turns frames sent to the controller into
    /// packet-ins of `bridge`, until `stop`.
    pub fn spawn_dispatcher(
        self: &Arc<Self>,
        bridge: Arc<OfBridge>,
        ports: Arc<Ports>,
        stop: Arc<AtomicBool>,
    ) -> Result<JoinHandle<()>, String> {
        let ch = Arc::clone(self);
        std::thread::Builder::new()
            .name("vswitch-ofctl".into())
            .spawn(move || {
                let mut b = Burst::new();
                let mut ids: Vec<(u16, String, u16)> = ports.list();
                while !stop.load(Ordering::Relaxed) {
                    if ch.to_ctl.dequeue_burst(&mut b) == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                        continue;
                    }
                    while let Some(m) = b.pop() {
                        // The rx PMD stamped the DPDK port id; ports come
                        // and go, so look again when one is not known.
                        let dpdk_id = m.port();
                        if !ids.iter().any(|(_, _, id)| *id == dpdk_id) {
                            ids = ports.list();
                        }
                        let in_port = ids
                            .iter()
                            .find(|(_, _, id)| *id == dpdk_id)
                            .map(|(no, _, _)| *no);
                        if bridge.packet_in(in_port, m.data()) == 0 {
                            ch.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start the controller channel thread: {e}"))
    }
}
