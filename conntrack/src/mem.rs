//! Preallocated, lazily backed tables: a zero-filled allocation of the whole
//! capacity up front (the OS maps its pages on first touch), so the packet
//! path never allocates and an idle tracker costs address space, not RAM.

use std::alloc::{alloc_zeroed, handle_alloc_error, Layout};

/// Types whose all-zero bit pattern is a valid value.
///
/// # Safety
/// Implement only for types made of integers, atomics of integers and
/// arrays/structs of those (no references, no enums without a zero
/// variant, no `bool` fields holding other than 0/1 when zeroed).
pub(crate) unsafe trait Zeroable: Sized {}

// SAFETY: an AtomicU32 is a u32; zero is a valid u32.
unsafe impl Zeroable for std::sync::atomic::AtomicU32 {}
// SAFETY: an AtomicU64 is a u64; zero is a valid u64.
unsafe impl Zeroable for std::sync::atomic::AtomicU64 {}

/// `n` zeroed `T`s.
pub(crate) fn zeroed_slice<T: Zeroable>(n: usize) -> Box<[T]> {
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Vec::new().into_boxed_slice();
    }
    let layout = Layout::array::<T>(n).expect("table size overflows the address space");
    // SAFETY: the layout's size is non-zero (n > 0 and T is not zero-sized);
    // alloc_zeroed returns memory of that layout, zero-filled, which holds n
    // valid `T`s because `T: Zeroable`. Box<[T]> frees it with the same
    // global allocator and the same layout (Layout::array::<T>(n)).
    unsafe {
        let p = alloc_zeroed(layout) as *mut T;
        if p.is_null() {
            handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n))
    }
}
