//! The plugin's allocator inside the sandbox: small blocks from size
//! classes. A transform makes many small, short-lived allocations per
//! event (strings, vectors, the cells it returns); through the default
//! allocator each costs four calls down to dlmalloc. Here a block of up to
//! 1 KiB is taken from the free list of its class, or cut from a 64 KiB
//! slab, and goes back to that list when freed; anything larger, or more
//! aligned, goes to the system allocator as before. Slabs come from the
//! system allocator too, so the memory limit the runner enforces stays
//! what it was: a plugin that allocates past it fails the same way.
//!
//! Memory freed in small blocks stays with their class (and slabs are never
//! given back), so a plugin that holds many small blocks at once, frees
//! them and then asks for one large block needs room for both under its
//! memory limit; such a plugin turns the `size-classes` feature off.
//!
//! Plugins are single-threaded (wasm32-wasip2 has no threads; a target with
//! atomics does not get this allocator), which is what lets the free lists
//! be plain cells.

#![expect(
    unsafe_code,
    reason = "a global allocator is unsafe by definition; the block handling below is the whole of it"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr::null_mut;

/// Block sizes, smallest first; a request takes the first that fits.
const CLASSES: [usize; 7] = [16, 32, 64, 128, 256, 512, 1024];

/// The alignment every block has (its size is a multiple of it).
const ALIGN: usize = 16;

/// Bytes taken from the system allocator at a time for small blocks.
const SLAB: usize = 64 << 10;

/// The class of a request, if a block serves it.
fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > ALIGN {
        return None;
    }
    CLASSES.iter().position(|&size| layout.size() <= size)
}

/// The free lists and the slab being cut.
struct Pools {
    /// The first free block of each class; each free block holds the
    /// address of the next.
    free: [*mut u8; CLASSES.len()],
    /// The part of the current slab not yet cut.
    next: *mut u8,
    end: *mut u8,
}

/// Small blocks by size class, the rest from [`System`].
pub struct SizeClasses {
    pools: UnsafeCell<Pools>,
}

// SAFETY: plugins run on one thread (wasm32-wasip2 has none other); the
// allocator is never shared across threads there. Natively it is only used
// by tests, one instance per test thread.
unsafe impl Sync for SizeClasses {}

impl SizeClasses {
    /// An allocator with no memory yet.
    pub const fn new() -> Self {
        SizeClasses {
            pools: UnsafeCell::new(Pools {
                free: [null_mut(); CLASSES.len()],
                next: null_mut(),
                end: null_mut(),
            }),
        }
    }
}

impl Default for SizeClasses {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for SizeClasses {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            // SAFETY: the caller's layout, passed on.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: one thread (see `Sync`), so no other reference is live.
        let pools = unsafe { &mut *self.pools.get() };
        let head = pools.free[class];
        if !head.is_null() {
            // SAFETY: a free block of this class holds the next one's
            // address in its first word, written by `dealloc`.
            pools.free[class] = unsafe { head.cast::<*mut u8>().read() };
            return head;
        }
        let size = CLASSES[class];
        if (pools.end as usize) - (pools.next as usize) < size {
            // SAFETY: SLAB and ALIGN make a valid, non-zero layout. What is
            // left of the old slab stays unused: at most 1 KiB in 64.
            let slab = unsafe { System.alloc(Layout::from_size_align_unchecked(SLAB, ALIGN)) };
            if slab.is_null() {
                return null_mut();
            }
            pools.next = slab;
            // SAFETY: within the slab just allocated.
            pools.end = unsafe { slab.add(SLAB) };
        }
        let block = pools.next;
        // SAFETY: `size` bytes are left in the slab (checked above).
        pools.next = unsafe { block.add(size) };
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            // SAFETY: it came from `System.alloc` with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        };
        // SAFETY: one thread (see `Sync`).
        let pools = unsafe { &mut *self.pools.get() };
        // SAFETY: the block is ours, at least 16 bytes and 16-aligned, and
        // no longer in use: its first word can hold the list's link.
        unsafe { ptr.cast::<*mut u8>().write(pools.free[class]) };
        pools.free[class] = ptr;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A block that still fits its class stays where it is.
        // SAFETY: the caller guarantees `new_size`, rounded to the
        // alignment, does not overflow (GlobalAlloc::realloc's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            (Some(old), Some(new)) if old == new => ptr,
            (None, None) => {
                // SAFETY: it came from `System` with `layout`.
                unsafe { System.realloc(ptr, layout, new_size) }
            }
            _ => {
                // SAFETY: `new_layout` is valid (above).
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    // SAFETY: both blocks hold at least the smaller size
                    // and do not overlap; the old one is ours to free.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_by_class_and_large_ones_go_to_the_system() {
        let a = SizeClasses::new();
        let small = Layout::from_size_align(24, 8).unwrap();
        let large = Layout::from_size_align(4096, 8).unwrap();
        let aligned = Layout::from_size_align(64, 64).unwrap();
        // SAFETY: each block is freed once, with the layout it was made with.
        unsafe {
            let p = a.alloc(small);
            assert_eq!(p as usize % ALIGN, 0);
            p.write_bytes(0xAB, 24);
            a.dealloc(p, small);
            let q = a.alloc(Layout::from_size_align(32, 16).unwrap());
            assert_eq!(p, q, "a freed block of the class is used again");
            let grown = a.realloc(q, Layout::from_size_align(32, 16).unwrap(), 30);
            assert_eq!(grown, q, "a block that still fits stays");
            grown.write_bytes(7, 30);
            let moved = a.realloc(grown, Layout::from_size_align(30, 16).unwrap(), 2000);
            assert_ne!(moved, grown);
            assert_eq!(*moved.add(29), 7, "contents move with the block");
            a.dealloc(moved, Layout::from_size_align(2000, 16).unwrap());
            let l = a.alloc(large);
            l.write_bytes(1, 4096);
            a.dealloc(l, large);
            let al = a.alloc(aligned);
            assert_eq!(al as usize % 64, 0);
            a.dealloc(al, aligned);
        }
    }

    #[test]
    fn many_blocks_span_slabs_without_overlap() {
        let a = SizeClasses::new();
        let layout = Layout::from_size_align(1000, 8).unwrap();
        // SAFETY: each block is written within its size and freed once.
        unsafe {
            let blocks: Vec<*mut u8> = (0..200).map(|_| a.alloc(layout)).collect();
            for (i, b) in blocks.iter().enumerate() {
                b.write_bytes(i as u8, 1000);
            }
            for (i, b) in blocks.iter().enumerate() {
                assert_eq!(*b.add(999), i as u8);
            }
            for b in blocks {
                a.dealloc(b, layout);
            }
        }
    }
}
