//! Byte copies between guest buffers and mbufs, by length: frames of up
//! to 64 bytes inline in a few vector moves ([`copy_bytes`],
//! [`copy_frame`]), long runs ([`copy_long`], the pieces of large
//! segments) in 32-byte AVX2 moves where the CPU has them.
//!
//! Why not `memcpy` for the long runs: glibc's `memmove` copies pieces of
//! 2 KiB and more with `rep movsb`, which on the development host (AMD
//! EPYC, 7 Dec 2026) moved 2 KiB pieces at 0.24-0.41 cycles per byte
//! (aligned or not) against 0.17-0.21 for this loop; a 64 KiB segment,
//! copied in 2 KiB pieces into and out of mbufs, cost the own rings 47 000
//! cycles against the vhost library's 28 000 (`vm_net --tso`).

/// Copies `n` bytes from `src` to `dst`: up to 64 inline, in at most four
/// moves of 16 bytes (or fewer, narrower ones; each pair covers the range
/// from both ends, overlapping), longer ones through [`copy_long`]. The call
/// cost a 64-byte frame more than its copy, and its return address and
/// spilled registers are stores that queue behind the burst's stores into
/// guest memory. The 16-byte moves go register to memory (SSE2, part of
/// x86-64): as byte arrays, the compiler put them through the stack.
///
/// # Safety
/// `src..src+n` is readable, `dst..dst+n` writable, and they do not
/// overlap.
#[inline(always)]
pub(crate) unsafe fn copy_bytes(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: every move below reads inside `src..src+n` and writes inside
    // `dst..dst+n`, the caller's ranges; unaligned accesses.
    unsafe {
        if n > 64 {
            copy_long(src, dst, n);
        } else if n >= 16 {
            copy_16_64(src, dst, n);
        } else if n >= 8 {
            let a = (src as *const u64).read_unaligned();
            let b = (src.add(n - 8) as *const u64).read_unaligned();
            (dst as *mut u64).write_unaligned(a);
            (dst.add(n - 8) as *mut u64).write_unaligned(b);
        } else if n >= 4 {
            let a = (src as *const u32).read_unaligned();
            let b = (src.add(n - 4) as *const u32).read_unaligned();
            (dst as *mut u32).write_unaligned(a);
            (dst.add(n - 4) as *mut u32).write_unaligned(b);
        } else if n > 0 {
            let (a, b, c) = (*src, *src.add(n / 2), *src.add(n - 1));
            *dst = a;
            *dst.add(n / 2) = b;
            *dst.add(n - 1) = c;
        }
    }
}

/// [`copy_bytes`], with `WIDE` (only where AVX2 is enabled: see
/// [`super::net::enqueue_avx2`]) 32 to 64 bytes in two 32-byte moves from
/// both ends: half the stores of the 16-byte moves, each of which waits in
/// the store queue for its guest line.
///
/// # Safety
/// As [`copy_bytes`]; with `WIDE`, the CPU has AVX2.
#[inline(always)]
pub(crate) unsafe fn copy_frame<const WIDE: bool>(src: *const u8, dst: *mut u8, n: usize) {
    #[cfg(target_arch = "x86_64")]
    if WIDE && (32..=64).contains(&n) {
        // SAFETY: the caller's ranges and CPU; 32 <= n <= 64.
        unsafe { copy_32_64(src, dst, n) };
        return;
    }
    // SAFETY: the caller's ranges.
    unsafe { copy_bytes(src, dst, n) }
}

/// [`copy_frame`] of 32 to 64 bytes: one 32-byte move from each end
/// (overlapping below 64).
///
/// # Safety
/// As [`copy_bytes`], with 32 <= n <= 64, on a CPU with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn copy_32_64(src: *const u8, dst: *mut u8, n: usize) {
    use std::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm256_storeu_si256};
    // SAFETY: 32 <= n: the first and last 32 bytes of both ranges cover
    // every byte; unaligned accesses.
    unsafe {
        let a = _mm256_loadu_si256(src as *const __m256i);
        let z = _mm256_loadu_si256(src.add(n - 32) as *const __m256i);
        _mm256_storeu_si256(dst as *mut __m256i, a);
        _mm256_storeu_si256(dst.add(n - 32) as *mut __m256i, z);
    }
}

/// [`copy_bytes`] of 16 to 64 bytes: 16-byte moves from both ends.
///
/// # Safety
/// As [`copy_bytes`], with 16 <= n <= 64.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn copy_16_64(src: *const u8, dst: *mut u8, n: usize) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_storeu_si128};
    // SAFETY: 16 <= n: the first and last 16 bytes of both ranges; with
    // n > 32, bytes 16..32 and n-32..n-16 too (every byte covered).
    unsafe {
        let (s, d) = (src as *const __m128i, dst as *mut __m128i);
        let (se, de) = (
            src.add(n - 16) as *const __m128i,
            dst.add(n - 16) as *mut __m128i,
        );
        let (a, z) = (_mm_loadu_si128(s), _mm_loadu_si128(se));
        if n > 32 {
            let b = _mm_loadu_si128(s.add(1));
            let y = _mm_loadu_si128(se.sub(1));
            _mm_storeu_si128(d.add(1), b);
            _mm_storeu_si128(de.sub(1), y);
        }
        _mm_storeu_si128(d, a);
        _mm_storeu_si128(de, z);
    }
}

/// [`copy_bytes`] of 16 to 64 bytes elsewhere.
///
/// # Safety
/// As [`copy_bytes`].
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
unsafe fn copy_16_64(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: the caller's ranges.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, n) }
}

/// Pieces of at least this many bytes go through [`copy_long`]'s vector
/// loop (where AVX2 is there); shorter ones through `memcpy`, whose vector
/// code is as fast for them.
pub(crate) const LONG: usize = 1024;

/// Copies `n` bytes from `src` to `dst`, for pieces longer than 64 bytes:
/// from [`LONG`] bytes on in 32-byte AVX2 moves when the CPU has them
/// (detected once, then one load of a cached flag), else `memcpy`.
///
/// # Safety
/// As [`copy_bytes`].
#[inline]
pub(crate) unsafe fn copy_long(src: *const u8, dst: *mut u8, n: usize) {
    #[cfg(target_arch = "x86_64")]
    if n >= LONG && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the caller's ranges; the CPU has AVX2; n >= LONG >= 128.
        unsafe { copy_long_avx2(src, dst, n) };
        return;
    }
    // SAFETY: the caller's ranges.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, n) }
}

/// [`copy_long`]'s loop: 128 bytes a turn in four unaligned 32-byte moves,
/// then the last 128 bytes from the end (overlapping what the loop
/// copied: source and destination do not overlap, so rewriting is safe).
///
/// # Safety
/// As [`copy_bytes`], with n >= 128, on a CPU with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn copy_long_avx2(src: *const u8, dst: *mut u8, n: usize) {
    use std::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm256_storeu_si256};
    /// Copies the 128 bytes at offset `i`.
    ///
    /// # Safety
    /// `i + 128 <= n` for the caller's ranges; AVX2.
    #[inline(always)]
    unsafe fn four(src: *const u8, dst: *mut u8, i: usize) {
        // SAFETY: bytes i..i+128 of both ranges; unaligned accesses.
        unsafe {
            let s = src.add(i) as *const __m256i;
            let d = dst.add(i) as *mut __m256i;
            let (a, b) = (_mm256_loadu_si256(s), _mm256_loadu_si256(s.add(1)));
            let (c, e) = (_mm256_loadu_si256(s.add(2)), _mm256_loadu_si256(s.add(3)));
            _mm256_storeu_si256(d, a);
            _mm256_storeu_si256(d.add(1), b);
            _mm256_storeu_si256(d.add(2), c);
            _mm256_storeu_si256(d.add(3), e);
        }
    }
    let mut i = 0;
    // SAFETY: every turn has i + 128 <= n; the last one is n - 128 >= 0.
    unsafe {
        while i + 128 <= n {
            four(src, dst, i);
            i += 128;
        }
        if i < n {
            four(src, dst, n - 128);
        }
    }
}
