//! Fuzzes the accelerator's configuration module with arbitrary mailbox
//! contents: a sequence of (opcode, 16 argument words) commands. Checks that
//! nothing panics, that a failed command changes no configuration register,
//! and that the partition never shares or leaks a resource.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vfio::accel::command::Command;
use vfio::accel::config::ConfigModule;
use vfio::accel::regs::{self, MBOX_WORDS};
use vfio::accel::Physical;
use vfio::pci::mmio::Mmio;

fn snapshot(bar: &Mmio) -> Vec<u32> {
    regs::config_words().map(|o| bar.read32(o)).collect()
}

fuzz_target!(|data: &[u8]| {
    let bar = Mmio::anonymous(regs::BAR0_SIZE).unwrap();
    let phys = Physical { mem_size: 16 * regs::MEM_GRANULE, max_vfs: 8, queues: 16, doorbells: 16, vectors: 16, ..Physical::default() };
    let mut cm = ConfigModule::new(phys);
    cm.power_on(&bar);
    let cmd_len = 4 + 8 * MBOX_WORDS;
    for chunk in data.chunks(cmd_len) {
        let mut buf = vec![0u8; cmd_len];
        buf[..chunk.len()].copy_from_slice(chunk);
        // Small opcodes and small argument values are far likelier to be
        // valid: fold them so the fuzzer reaches deep states quickly.
        let opcode = u32::from_le_bytes(buf[..4].try_into().unwrap()) % 8;
        let mut args = [0u64; MBOX_WORDS];
        for (i, a) in args.iter_mut().enumerate() {
            let w = u64::from_le_bytes(buf[4 + 8 * i..12 + 8 * i].try_into().unwrap());
            *a = match w >> 62 {
                0 => w & 0xf,
                1 => (w & 0xf) * regs::MEM_GRANULE,
                2 => u64::MAX,
                _ => w,
            };
        }
        let before = snapshot(&bar);
        let res = Command::parse(opcode, &args).and_then(|c| cm.execute(&bar, &c));
        if res.is_err() {
            assert_eq!(before, snapshot(&bar), "failed command changed registers");
        }
        cm.partition().check_invariants().unwrap();
    }
});
