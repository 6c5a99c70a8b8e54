//! Fuzzes the cache's guest-shared metadata: arbitrary bytes are written
//! over table entries (as a hostile guest would) between reads and writes
//! of a write-back cache over a RAM disk. Checks that nothing panics and
//! every read returns exactly what was last written, under CLOCK and 2Q.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vfio::backend::mem::MemBackend;
use vfio::backend::{Backend, IoOp, IoRequest, IoStatus};
use vfio::cache::layout::{Entry, ENTRY_LEN};
use vfio::cache::{CacheConfig, CachedBackend, Eviction, WriteMode, BLOCK};
use vfio::guest_memory::GuestMemory;

const BLOCKS: u64 = 32;

fn io(c: &mut CachedBackend, mem: &GuestMemory, op: IoOp, block: u64) -> IoStatus {
    let iovs = [mem.iovec(0, BLOCK as u32).unwrap()];
    let req = IoRequest { id: 1, op, offset: block * BLOCK, len: BLOCK, iovs: &iovs };
    let mut out = Vec::with_capacity(2);
    while c.submit(&req).is_err() {
        c.poll(&mut out);
    }
    c.commit();
    loop {
        c.poll(&mut out);
        if let Some(x) = out.first() {
            return x.status;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let inner = Box::new(MemBackend::new(BLOCKS * BLOCK, 8).unwrap());
    let mut cfg = CacheConfig::new(8 * BLOCK, WriteMode::WriteBack);
    cfg.hugepages = false;
    cfg.ways = 4;
    // Both eviction policies (the length's parity picks one).
    cfg.eviction = if data.len() % 2 == 0 { Eviction::Clock } else { Eviction::TwoQ };
    let mut c = CachedBackend::new(inner, cfg).unwrap();
    let mem = GuestMemory::anonymous(&[(0, BLOCK as usize)]).unwrap();
    let mut model = vec![0u8; BLOCKS as usize];
    for chunk in data.chunks(2 + ENTRY_LEN) {
        if chunk.len() < 2 + ENTRY_LEN {
            break;
        }
        let block = chunk[0] as u64 % BLOCKS;
        match chunk[1] % 3 {
            0 => {
                mem.write(0, &[chunk[2]; BLOCK as usize]).unwrap();
                assert_eq!(io(&mut c, &mem, IoOp::Write, block), IoStatus::Ok);
                model[block as usize] = chunk[2];
            }
            1 => {
                assert_eq!(io(&mut c, &mem, IoOp::Read, block), IoStatus::Ok);
                let mut got = vec![0u8; BLOCK as usize];
                mem.read(0, &mut got).unwrap();
                assert!(got.iter().all(|&b| b == model[block as usize]), "block {block}");
            }
            _ => {
                let raw: [u8; ENTRY_LEN] = chunk[2..].try_into().unwrap();
                let _ = Entry::parse(&raw);
                let i = chunk[0] as usize % c.table().len();
                c.table().write_raw(i, &raw);
            }
        }
    }
});
