//! `--features selfcheck`: a counting wrapper around the System allocator.
//! Every allocation is recorded (pointer -> size, align, allocator function,
//! owning tokio task id = `tokio::task::try_id()` at allocation time, 0 when
//! untasked) in a fixed-size open-addressing table in .bss, so the wrapper
//! itself never allocates. At the end each task record's claimed allocations
//! are compared with what was measured.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};

struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

thread_local! {
    static IN_ALLOC: Cell<bool> = const { Cell::new(false) };
}

const MAXID: usize = 1 << 16;
const CAP: usize = 1 << 18; // live allocations tracked at once (power of 2)

// allocator function codes (match the System allocator's choices on glibc)
const F_MALLOC: u8 = 1;
const F_CALLOC: u8 = 2;
const F_REALLOC: u8 = 3;
const F_MEMALIGN: u8 = 4;
const FNAMES: [&str; 5] = ["none", "malloc", "calloc", "realloc", "posix_memalign"];

#[derive(Clone, Copy)]
struct Ent {
    ptr: usize, // 0 = empty
    size: usize,
    owner: u32,
    f: u8,
    cell: bool,
    align: u32,
}
const E0: Ent = Ent { ptr: 0, size: 0, owner: 0, f: 0, cell: false, align: 0 };

struct Map {
    e: [Ent; CAP],
}
static LOCK: AtomicBool = AtomicBool::new(false);
// Repeated in array initialisers (inline `const { }` blocks need Rust 1.79).
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
static mut MAP: Map = Map { e: [E0; CAP] };

// per task id (index), counted at allocation time; cells are moved out of
// these into CELLS_* by mark_cell
static CALLS: [AtomicU64; MAXID] = [ZERO; MAXID];
static BYTES: [AtomicU64; MAXID] = [ZERO; MAXID];
static CELL_CALLS: [AtomicU64; MAXID] = [ZERO; MAXID];
static CELL_BYTES: [AtomicU64; MAXID] = [ZERO; MAXID];
static OVERFLOW: AtomicU64 = AtomicU64::new(0);
static BY_FN: [AtomicU64; 5] = [ZERO; 5];

fn lock() {
    while LOCK.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
        std::hint::spin_loop();
    }
}
fn unlock() {
    LOCK.store(false, Release);
}
#[allow(unknown_lints, static_mut_refs)]
fn map() -> &'static mut Map {
    unsafe { &mut MAP }
}
fn slot_of(p: usize) -> usize {
    (p.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) & (CAP - 1)
}

fn insert(e: Ent) {
    lock();
    let m = map();
    let mut i = slot_of(e.ptr);
    let mut n = 0;
    while m.e[i].ptr != 0 {
        i = (i + 1) & (CAP - 1);
        n += 1;
        if n == CAP {
            OVERFLOW.fetch_add(1, Relaxed);
            unlock();
            return;
        }
    }
    m.e[i] = e;
    unlock();
}

/// Removes `p` (backward-shift deletion); returns the entry.
fn remove(p: usize) -> Option<Ent> {
    lock();
    let m = map();
    let mut i = slot_of(p);
    loop {
        if m.e[i].ptr == 0 {
            unlock();
            return None;
        }
        if m.e[i].ptr == p {
            break;
        }
        i = (i + 1) & (CAP - 1);
    }
    let out = m.e[i];
    let mut hole = i;
    let mut j = i;
    loop {
        j = (j + 1) & (CAP - 1);
        if m.e[j].ptr == 0 {
            break;
        }
        let home = slot_of(m.e[j].ptr);
        // can e[j] move to the hole? yes if home is not in (hole, j]
        let dist_hole = hole.wrapping_sub(home) & (CAP - 1);
        let dist_j = j.wrapping_sub(home) & (CAP - 1);
        if dist_hole <= dist_j {
            m.e[hole] = m.e[j];
            hole = j;
        }
    }
    m.e[hole] = E0;
    unlock();
    Some(out)
}

/// Current tokio task id, guarded against re-entry (tokio's thread-local
/// may be initialised lazily on first access).
fn owner() -> u32 {
    IN_ALLOC.with(|g| {
        if g.get() {
            return 0;
        }
        g.set(true);
        #[cfg(tokio_unstable)]
        let id = tokio::task::try_id()
            .map(|i| unsafe { std::mem::transmute::<tokio::task::Id, u64>(i) })
            .unwrap_or(0);
        #[cfg(not(tokio_unstable))]
        let id = 0u64;
        g.set(false);
        id.min(u32::MAX as u64) as u32
    })
}

fn note(p: *mut u8, size: usize, align: usize, f: u8) {
    if p.is_null() {
        return;
    }
    let o = owner();
    let k = (o as usize).min(MAXID - 1);
    CALLS[k].fetch_add(1, Relaxed);
    BYTES[k].fetch_add(size as u64, Relaxed);
    BY_FN[f as usize].fetch_add(1, Relaxed);
    insert(Ent { ptr: p as usize, size, owner: o, f, cell: false, align: align as u32 });
}

// Mirrors std's unix System allocator decisions (MIN_ALIGN = 16 on x86_64).
fn fn_for(l: &Layout, zeroed: bool) -> u8 {
    if l.align() <= 16 && l.align() <= l.size() {
        if zeroed {
            F_CALLOC
        } else {
            F_MALLOC
        }
    } else {
        F_MEMALIGN
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        note(p, l.size(), l.align(), fn_for(&l, false));
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        note(p, l.size(), l.align(), fn_for(&l, true));
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        remove(p as usize);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, n) };
        if !q.is_null() {
            remove(p as usize);
            let f = if l.align() <= 16 && l.align() <= n { F_REALLOC } else { F_MEMALIGN };
            note(q, n, l.align(), f);
        }
        q
    }
}

#[derive(Clone, Copy)]
pub struct CellInfo {
    pub found: bool,
    pub size: usize,
    pub align: usize,
    pub f: u8,
    pub owner: u32,
}
impl CellInfo {
    pub const EMPTY: CellInfo = CellInfo { found: false, size: 0, align: 0, f: 0, owner: 0 };
}

/// Called right after spawn: the cell (= header address) is live. Moves it
/// out of the spawning task's counters into its cell counters.
pub fn mark_cell(hdr: usize) -> CellInfo {
    lock();
    let m = map();
    let mut i = slot_of(hdr);
    let mut r = CellInfo::EMPTY;
    while m.e[i].ptr != 0 {
        if m.e[i].ptr == hdr {
            let e = &mut m.e[i];
            e.cell = true;
            r = CellInfo { found: true, size: e.size, align: e.align as usize, f: e.f, owner: e.owner };
            break;
        }
        i = (i + 1) & (CAP - 1);
    }
    unlock();
    if r.found {
        let k = (r.owner as usize).min(MAXID - 1);
        CALLS[k].fetch_sub(1, Relaxed);
        BYTES[k].fetch_sub(r.size as u64, Relaxed);
        CELL_CALLS[k].fetch_add(1, Relaxed);
        CELL_BYTES[k].fetch_add(r.size as u64, Relaxed);
    }
    r
}

/// Live bytes per owner id, excluding task cells.
fn live_by_owner(id: u32) -> u64 {
    lock();
    let m = map();
    let mut s = 0u64;
    for e in m.e.iter() {
        if e.ptr != 0 && !e.cell && e.owner == id {
            s += e.size as u64;
        }
    }
    unlock();
    s
}

static FAILS: AtomicU64 = AtomicU64::new(0);
static SNAP: [AtomicU64; 6] = [ZERO; 6];

/// Freezes the untasked/per-function counters when the scenarios are over
/// (before printing, which allocates).
pub fn snapshot() {
    SNAP[0].store(CALLS[0].load(Relaxed), Relaxed);
    SNAP[1].store(BYTES[0].load(Relaxed), Relaxed);
    for f in 1..5 {
        SNAP[1 + f].store(BY_FN[f].load(Relaxed), Relaxed);
    }
}

/// Appends measured fields to a task record line and checks them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn print_task_check(
    out: &mut impl Write,
    r: &super::Rec,
    bytes: usize,
    calls: usize,
    live: usize,
    cell_fn: &str,
    spawned: usize,
    spawned_bytes: usize,
) {
    let k = (r.id as usize).min(MAXID - 1);
    let m_calls = CALLS[k].load(Relaxed) as usize;
    let m_bytes = BYTES[k].load(Relaxed) as usize;
    let m_live = live_by_owner(r.id as u32) as usize;
    let c = r.sc_cell;
    let ok = r.id != 0
        && m_calls == calls
        && m_bytes == bytes
        && m_live == live
        && c.size == r.cell_size
        && FNAMES[c.f as usize] == cell_fn
        && c.align == r.fut_align.max(r.out_align).max(8)
        && (r.parent1 == 0 || c.owner as u64 != 0)
        && c.found
        && CELL_CALLS[k].load(Relaxed) as usize == spawned
        && CELL_BYTES[k].load(Relaxed) as usize == spawned_bytes
        && r.id_from_hdr == r.id;
    if !ok {
        FAILS.fetch_add(1, Relaxed);
    }
    let _ = write!(
        out,
        ",\"sc\":{{\"alloc_count\":{},\"alloc_bytes\":{},\"live_bytes\":{},\"cell_size\":{},\"cell_layout_align\":{},\"cell_fn\":\"{}\",\"cell_allocated_in_task\":{},\"spawned_cells\":{},\"spawned_cell_bytes\":{},\"ok\":{}}}",
        m_calls,
        m_bytes,
        m_live,
        c.size,
        c.align,
        FNAMES[c.f as usize],
        if c.owner == 0 || !c.found { "null".to_string() } else { c.owner.to_string() },
        CELL_CALLS[k].load(Relaxed),
        CELL_BYTES[k].load(Relaxed),
        ok
    );
    // a parent's own alloc_count/bytes exclude child cells; check the
    // spawning relation too: the cell must be allocated in the parent's poll
    if r.parent1 != 0 && c.owner == 0 {
        FAILS.fetch_add(1, Relaxed);
    }
}

pub(crate) fn print_summary(out: &mut impl Write, t: &super::Table) {
    // every task's cell was allocated by its parent (root => untasked)
    let mut cell_owner_bad = 0;
    for i in 0..t.n {
        let r = &t.r[i];
        let want = if r.parent1 == 0 { 0 } else { t.r[r.parent1 - 1].id as u32 };
        if r.sc_cell.owner != want {
            cell_owner_bad += 1;
        }
    }
    let _ = writeln!(
        out,
        "{{\"type\":\"selfcheck\",\"failed_records\":{},\"cell_owner_mismatch\":{},\"untasked_alloc_count\":{},\"untasked_alloc_bytes\":{},\"note\":\"counters frozen when block_on returned\",\"calls_by_fn\":{{\"malloc\":{},\"calloc\":{},\"realloc\":{},\"posix_memalign\":{}}},\"table_overflow\":{}}}",
        FAILS.load(Relaxed),
        cell_owner_bad,
        SNAP[0].load(Relaxed),
        SNAP[1].load(Relaxed),
        SNAP[2].load(Relaxed),
        SNAP[3].load(Relaxed),
        SNAP[4].load(Relaxed),
        SNAP[5].load(Relaxed),
        OVERFLOW.load(Relaxed)
    );
}
