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

/// One zeroed block of `len` `T`s cut into equal per-shard [`Slab`]s, so
/// that a shard's part is at `base + shard * per` (no per-shard pointer
/// to load before a prefetch). Mapped anonymous memory: zero pages until
/// touched.
pub(crate) struct Arena<T> {
    ptr: std::ptr::NonNull<T>,
    len: usize,
    bytes: usize,
}

// SAFETY: the arena owns its block; access to the elements goes through
// the slabs (each owned by one shard, behind its lock) or through atomic
// loads (`T` = an atomic); T: Send + Sync makes sharing the block sound.
unsafe impl<T: Send + Sync> Send for Arena<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Arena<T> {}

impl<T: Zeroable> Arena<T> {
    /// `len` zeroed `T`s; `huge`: ask for transparent huge pages (a table
    /// read at random places: one TLB entry per 2 MiB instead of per 4 KiB).
    pub(crate) fn new(len: usize, huge: bool) -> Arena<T> {
        let bytes = Layout::array::<T>(len.max(1))
            .expect("table size overflows the address space")
            .size();
        // SAFETY: an anonymous private mapping of `bytes` > 0 bytes; the
        // result is checked. Anonymous memory is zero-filled, and zero is a
        // valid `T` (`T: Zeroable`); mmap returns page-aligned memory,
        // enough for any `T` here (align ≤ 128).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            handle_alloc_error(Layout::array::<T>(len.max(1)).expect("checked above"));
        }
        debug_assert!(std::mem::align_of::<T>() <= 4096);
        if huge {
            // SAFETY: advice on the mapping just made; failure (no THP in
            // this kernel) leaves ordinary pages, which is fine.
            unsafe {
                libc::madvise(p, bytes, libc::MADV_HUGEPAGE);
            }
        }
        Arena {
            ptr: std::ptr::NonNull::new(p as *mut T).expect("mmap never returns null"),
            len,
            bytes,
        }
    }

    /// The block's address.
    #[inline(always)]
    pub(crate) fn base(&self) -> *const T {
        self.ptr.as_ptr()
    }

    /// Cut the block into `n` slabs of `per` elements (`n * per` ≤ len).
    ///
    /// # Safety
    /// Call once per arena: the slabs must be the only references to the
    /// elements (beyond atomic loads through `base`), and must not be used
    /// after the arena is dropped.
    pub(crate) unsafe fn slabs(&self, n: usize, per: usize) -> Vec<Slab<T>> {
        assert!(n * per <= self.len);
        (0..n)
            .map(|i| Slab {
                // SAFETY: i * per + per <= len: inside the block.
                ptr: unsafe { self.ptr.as_ptr().add(i * per) },
                len: per,
            })
            .collect()
    }
}

impl<T> Drop for Arena<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, of `bytes` bytes; the slabs
        // are gone (the table drops its shards first).
        unsafe {
            libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.bytes);
        }
    }
}

/// One shard's part of an [`Arena`]: a slice it owns exclusively.
pub(crate) struct Slab<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: a slab is the unique owner of its elements (see `Arena::slabs`);
// moving it to another thread moves that ownership.
unsafe impl<T: Send> Send for Slab<T> {}
// SAFETY: shared access gives `&[T]` only.
unsafe impl<T: Sync> Sync for Slab<T> {}

impl<T> std::ops::Deref for Slab<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialized (zeroed, `Zeroable`) elements that this
        // slab alone refers to, alive while the arena is.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T> std::ops::DerefMut for Slab<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as `deref`; `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}
