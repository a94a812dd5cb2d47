//! `#[global_allocator]`s that call Debian's jemalloc or mimalloc through FFI (cargo features
//! `jemalloc`, `mimalloc`; no crates needed): what Rust services do with tikv-jemallocator or
//! mimalloc-rs. The sizes they pass are the Layout sizes, the ones the System allocator would
//! pass to malloc/posix_memalign, so the ground truth is unchanged.

use std::alloc::{GlobalAlloc, Layout};

#[cfg(feature = "jemalloc")]
mod imp {
    use super::*;

    #[link(name = "jemalloc")]
    extern "C" {
        fn mallocx(size: usize, flags: i32) -> *mut u8;
        fn rallocx(ptr: *mut u8, size: usize, flags: i32) -> *mut u8;
        fn sdallocx(ptr: *mut u8, size: usize, flags: i32);
    }

    const MALLOCX_ZERO: i32 = 0x40;

    /// MALLOCX_ALIGN(a): log2 of the alignment; 0 (the default, 16) when it suffices.
    fn flags(l: &Layout) -> i32 {
        if l.align() <= 16 {
            0
        } else {
            l.align().trailing_zeros() as i32
        }
    }

    pub struct Jemalloc;

    unsafe impl GlobalAlloc for Jemalloc {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            mallocx(l.size(), flags(&l))
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            mallocx(l.size(), flags(&l) | MALLOCX_ZERO)
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            sdallocx(p, l.size(), flags(&l))
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
            rallocx(p, new_size, flags(&l))
        }
    }

    #[global_allocator]
    static GLOBAL: Jemalloc = Jemalloc;
}

#[cfg(feature = "mimalloc")]
mod imp {
    use super::*;

    #[link(name = "mimalloc")]
    extern "C" {
        fn mi_malloc_aligned(size: usize, align: usize) -> *mut u8;
        fn mi_zalloc_aligned(size: usize, align: usize) -> *mut u8;
        fn mi_realloc_aligned(p: *mut u8, size: usize, align: usize) -> *mut u8;
        fn mi_free(p: *mut u8);
    }

    pub struct Mimalloc;

    unsafe impl GlobalAlloc for Mimalloc {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            mi_malloc_aligned(l.size(), l.align())
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            mi_zalloc_aligned(l.size(), l.align())
        }
        unsafe fn dealloc(&self, p: *mut u8, _l: Layout) {
            mi_free(p)
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
            mi_realloc_aligned(p, new_size, l.align())
        }
    }

    #[global_allocator]
    static GLOBAL: Mimalloc = Mimalloc;
}
