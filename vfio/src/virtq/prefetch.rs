//! Prefetches: ask for a cache line without waiting for it, to read
//! ([`prefetch_read`]) or in a state this core may write ([`prefetch_write`],
//! x86 `PREFETCHW`).
//!
//! A device reads a request's header from a line the driver last wrote,
//! then writes the status byte into the same line (drivers put the two side
//! by side: Linux's `virtblk_req`). A plain read brings the line shared,
//! and the write then needs a second cross-core transfer to take it over;
//! a write prefetch takes it over in one. Issued for a whole batch before
//! it is walked, the transfers of the batch overlap instead of following
//! one another.

/// Prefetches the line at `p` for writing. A hint: never faults, whatever
/// `p` is (callers still pass only checked guest addresses).
#[inline(always)]
pub fn prefetch_write(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHW reads nothing into registers, writes no memory and
    // cannot fault, whatever the address (it is a hint; CPUs without it
    // execute it as a NOP); it touches neither the stack nor the flags.
    unsafe {
        std::arch::asm!("prefetchw [{p}]", p = in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetches the line at `p` for reading. A hint: never faults, whatever
/// `p` is (callers still pass only addresses inside checked ring areas).
#[inline(always)]
pub fn prefetch_read(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint that cannot fault and changes no
    // register, memory, stack or flag.
    unsafe {
        std::arch::asm!("prefetcht0 [{p}]", p = in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
