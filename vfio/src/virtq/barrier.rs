//! The full memory barrier between a device's used-index store and its read
//! of the driver's interrupt suppression (VIRTIO 1.2 §2.7.10 / §2.8.10), and
//! between a kick request and the re-read of the available index.
//!
//! `std::sync::atomic::fence(SeqCst)` is an `MFENCE` on x86-64, which on
//! AMD Zen also serializes dispatch (later instructions wait, not only later
//! loads). A locked read-modify-write orders the same way for ordinary
//! (write-back) memory — Intel SDM vol. 3A §9.2.2: "Reads or writes cannot
//! be reordered with I/O instructions, locked instructions, or serializing
//! instructions"; AMD APM vol. 2 §7.4.2 likewise — and costs less: Linux
//! uses `lock addl $0` on the stack for `smp_mb()` for that reason. The
//! rings are write-back guest RAM (no non-temporal or write-combining
//! stores, the one thing `MFENCE` orders and a locked instruction does not).

/// A full barrier (store-load included) for write-back memory, and a
/// compiler barrier.
#[inline(always)]
pub fn full_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an atomic OR of 0 into the word at the stack pointer: the
    // word (inside this thread's allocated stack, never touched by another
    // agent) keeps its value; only the flags change (not declared
    // preserved). Without `nomem` the compiler treats it as reading and
    // writing any memory, so it is also a compiler barrier.
    unsafe {
        std::arch::asm!("lock or dword ptr [rsp], 0", options(nostack));
    }
    #[cfg(not(target_arch = "x86_64"))]
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}
