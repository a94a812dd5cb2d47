//! memscoped tokio test target: spawns tokio tasks whose heap behaviour is
//! known exactly, prints that ground truth as JSON lines on stdout, then stays
//! alive so a tracer can inspect live state. See README.md for the format.
//!
//! Rules that keep the ground truth exact:
//! - every heap allocation a task makes is listed in its record (`allocs`);
//!   tasks never format, print, yield_now (tokio's defer list allocates),
//!   create channels, or grow collections beyond what is listed;
//! - bookkeeping is written into fixed-size statics (no heap);
//! - all printing happens after the runtime's `block_on` returned, on the
//!   main thread (untasked).
//! The `selfcheck` cargo feature measures every allocation per tokio task id
//! inside the target and checks the records against it.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;
use tokio::task::JoinHandle;

/// `std::hint::black_box` (Rust 1.66) for Debian 12's rustc 1.63 as well: a volatile read the
/// optimizer cannot see through, so allocations it is given are not elided.
#[inline(never)]
pub fn black_box<T>(x: T) -> T {
    unsafe {
        let y = std::ptr::read_volatile(&x);
        std::mem::forget(x);
        y
    }
}

#[cfg(feature = "selfcheck")]
mod selfcheck;

#[cfg(any(feature = "jemalloc", feature = "mimalloc"))]
mod ffi_alloc;

/// "Forever" for tokio::time::sleep (10 years; far beyond any test).
const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// The block_on root future's own buffer (untasked, live until exit).
const ROOT_BYTES: usize = 99_999;

// ---------------------------------------------------------------------------
// Ground-truth records (fixed-size, zero-initialised statics: no heap use).

const MAXREC: usize = 16384;
const MAXALLOC: usize = 2;

/// Allocator entry points, as the System allocator calls them on x86_64 glibc.
#[allow(dead_code)]
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum AFn {
    None = 0,
    Malloc,
    Calloc,
    Realloc,
    PosixMemalign,
}
impl AFn {
    fn name(self) -> &'static str {
        match self {
            AFn::None => "none",
            AFn::Malloc => "malloc",
            AFn::Calloc => "calloc",
            AFn::Realloc => "realloc",
            AFn::PosixMemalign => "posix_memalign",
        }
    }
}

#[derive(Clone, Copy)]
struct Alloc {
    f: AFn,
    size: usize,
    /// realloc: the size of the block it replaced (its old block is freed)
    from: usize,
    /// still allocated when "done" is printed
    live: bool,
    /// who frees it: 0 = the task itself, 1 = nobody (live), 2 = root (main)
    freed_by: u8,
}
const NOALLOC: Alloc = Alloc { f: AFn::None, size: 0, from: 0, live: false, freed_by: 0 };

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Sc {
    Leak = 0,
    Abort,
    Children,
    Outlive,
    Churn,
    Hold,
}
const SC_NAMES: [&str; 6] = ["leak", "abort", "children", "outlive", "churn", "hold"];

#[allow(dead_code)]
#[derive(Clone, Copy)]
struct Rec {
    used: bool,
    sc: u8,
    kind: Option<&'static str>,
    /// std::any::type_name of the future
    future: &'static str,
    idx: u32,
    /// record index of the spawning task + 1, or 0 for the root
    parent1: usize,
    id: u64,
    hdr: usize,
    vtable: usize,
    poll_fn: usize,
    trailer_off: usize,
    sched_off: usize,
    id_off: usize,
    id_from_hdr: u64,
    fut_size: usize,
    fut_align: usize,
    out_align: usize,
    cell_size: usize,
    nallocs: usize,
    allocs: [Alloc; MAXALLOC],
    completes: bool,
    cancelled: bool,
    /// calls of the vtable poll function expected by "done"; -1 = not deterministic
    polls: i32,
    /// outlive: where the bytes went
    holder: Option<&'static str>,
    #[cfg(feature = "selfcheck")]
    sc_cell: selfcheck::CellInfo,
}
const EMPTY: Rec = Rec {
    used: false,
    sc: 0,
    kind: None,
    future: "",
    idx: 0,
    parent1: 0,
    id: 0,
    hdr: 0,
    vtable: 0,
    poll_fn: 0,
    trailer_off: 0,
    sched_off: 0,
    id_off: 0,
    id_from_hdr: 0,
    fut_size: 0,
    fut_align: 0,
    out_align: 0,
    cell_size: 0,
    nallocs: 0,
    allocs: [NOALLOC; MAXALLOC],
    completes: false,
    cancelled: false,
    polls: 0,
    holder: None,
    #[cfg(feature = "selfcheck")]
    sc_cell: selfcheck::CellInfo::EMPTY,
};

struct Table {
    n: usize,
    r: [Rec; MAXREC],
}
static RECS: Mutex<Table> = Mutex::new(Table { n: 0, r: [EMPTY; MAXREC] });

/// `parent_rec`: record index of the spawning task, usize::MAX for the root.
fn rec_new(sc: Sc, kind: &'static str, idx: usize, parent_rec: usize) -> Rec {
    let parent1 = parent_rec.wrapping_add(1);
    Rec { used: true, sc: sc as u8, kind: Some(kind), idx: idx as u32, parent1, polls: 1, ..EMPTY }
}
fn with_alloc(mut r: Rec, f: AFn, size: usize, from: usize, live: bool, freed_by: u8) -> Rec {
    r.allocs[r.nallocs] = Alloc { f, size, from, live, freed_by };
    r.nallocs += 1;
    r
}

/// tokio task id of a JoinHandle (needs --cfg tokio_unstable; else 0).
#[cfg(tokio_unstable)]
fn handle_id<T>(h: &JoinHandle<T>) -> u64 {
    // tokio::task::Id is a newtype around u64 without a public accessor;
    // Display would allocate, so read the integer directly.
    unsafe { std::mem::transmute::<tokio::task::Id, u64>(h.id()) }
}
#[cfg(not(tokio_unstable))]
fn handle_id<T>(_h: &JoinHandle<T>) -> u64 {
    0
}

fn round_up(x: usize, a: usize) -> usize {
    (x + a - 1) / a * a
}

/// Spawns `fut`, fills in what is known about its task cell and stores the
/// record. Only `tokio::spawn` allocates here (the task cell).
fn spawn_rec_at<F>(at: Option<usize>, fut: F, mut rec: Rec) -> (JoinHandle<F::Output>, usize)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    rec.future = std::any::type_name::<F>();
    rec.fut_size = std::mem::size_of_val(&fut);
    rec.fut_align = std::mem::align_of_val(&fut);
    rec.out_align = std::mem::align_of::<F::Output>();
    let h = tokio::spawn(fut);
    rec.id = handle_id(&h);
    // JoinHandle<T> is { raw: RawTask(NonNull<Header>), PhantomData } in
    // tokio 1.24.2: its only word is the task header (= cell) address. The
    // reads below are of fields that never change after the cell is built.
    assert_eq!(std::mem::size_of::<JoinHandle<F::Output>>(), 8);
    unsafe {
        let hdr = *(&h as *const JoinHandle<F::Output> as *const usize);
        let vt = std::ptr::read_volatile((hdr + 0x10) as *const usize);
        let slot = |i: usize| std::ptr::read_volatile((vt + 8 * i) as *const usize);
        rec.hdr = hdr;
        rec.vtable = vt;
        rec.poll_fn = slot(0);
        rec.trailer_off = slot(7);
        rec.sched_off = slot(8);
        rec.id_off = slot(9);
        rec.id_from_hdr = std::ptr::read_volatile((hdr + rec.id_off) as *const u64);
        // Cell<T,S> is #[repr(C)] {Header 32 B, Core<T,S>, Trailer 32 B};
        // its alignment is that of the future/output (at least 8).
        let align = rec.fut_align.max(rec.out_align).max(8);
        rec.cell_size = round_up(rec.trailer_off + 32, align);
        #[cfg(feature = "selfcheck")]
        {
            rec.sc_cell = selfcheck::mark_cell(hdr);
        }
    }
    let mut t = RECS.lock().unwrap();
    let i = match at {
        Some(i) => i,
        None => {
            let i = t.n;
            assert!(i < MAXREC, "too many records");
            t.n += 1;
            i
        }
    };
    t.r[i] = rec;
    (h, i)
}

/// Reserves a record index (for a task that must know its own index).
fn reserve_rec() -> usize {
    let mut t = RECS.lock().unwrap();
    assert!(t.n < MAXREC, "too many records");
    t.n += 1;
    t.n - 1
}

fn spawn_rec<F>(fut: F, rec: Rec) -> (JoinHandle<F::Output>, usize)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_rec_at(None, fut, rec)
}

// ---------------------------------------------------------------------------
// Task bodies. Each async fn is its own future type (own vtable, own poll).

#[inline(never)]
fn buf_malloc(n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::with_capacity(n); // __rust_alloc(n,1) -> malloc(n)
    v.push(0x5a);
    black_box(v.as_mut_ptr());
    v
}
#[inline(never)]
fn buf_calloc(n: usize) -> Vec<u8> {
    let v = vec![0u8; n]; // __rust_alloc_zeroed(n,1) -> calloc(n,1)
    black_box(v.as_ptr());
    v
}
/// A full-length buffer (len == capacity) so into_boxed_slice never reallocs.
#[inline(never)]
fn buf_full(n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::with_capacity(n); // malloc(n)
    v.resize(n, 0xa5);
    black_box(v.as_mut_ptr());
    v
}

/// Incremented by every task that holds its buffer, once its allocations
/// are done (before it parks forever): the root waits for it, so "done" is
/// printed only when every holder is in its final state. Reset per scenario.
static READY: AtomicUsize = AtomicUsize::new(0);

async fn t_finish(n: usize) {
    let v = buf_malloc(n);
    black_box(&v);
    drop(v); // free inside the same poll
}
async fn t_finish_calloc(n: usize) {
    let v = buf_calloc(n);
    black_box(&v);
    drop(v);
}
async fn t_pending(n: usize) {
    let v = buf_malloc(n);
    READY.fetch_add(1, SeqCst);
    std::future::pending::<()>().await; // never woken: a leaked sleeper
    drop(v);
}
async fn t_sleep(n: usize) {
    let v = buf_malloc(n);
    READY.fetch_add(1, SeqCst);
    tokio::time::sleep(FOREVER).await; // future holds a timer: align 128
    drop(v);
}
async fn t_grow(n: usize, m: usize) {
    let mut v = buf_malloc(n);
    v.reserve_exact(m - v.len()); // realloc(p, m)
    black_box(v.as_mut_ptr());
    READY.fetch_add(1, SeqCst);
    std::future::pending::<()>().await;
    drop(v);
}
async fn t_abortee(n: usize) {
    let v = buf_malloc(n);
    READY.fetch_add(1, SeqCst);
    std::future::pending::<()>().await;
    drop(v);
}
async fn t_never_runs() {
    std::future::pending::<()>().await;
}
async fn t_churn(n: usize) {
    let v = buf_malloc(n);
    black_box(&v);
}
async fn t_return(n: usize) -> Vec<u8> {
    buf_malloc(n) // outlives the task as its output, kept by the root
}
async fn t_channel(n: usize, tx: tokio::sync::oneshot::Sender<Vec<u8>>) {
    let v = buf_malloc(n);
    let _ = tx.send(v); // moved into the (root-allocated) channel
}
static LEAKED: Mutex<[usize; 64]> = Mutex::new([0; 64]);
async fn t_leak(n: usize, slot: usize) {
    let b: &'static mut [u8] = Box::leak(buf_full(n).into_boxed_slice());
    LEAKED.lock().unwrap()[slot % 64] = b.as_ptr() as usize;
}

// children: parent -> 3 children; parent 0's child 1 spawns a grandchild
async fn t_grandchild(n: usize) {
    let v = buf_malloc(n);
    READY.fetch_add(1, SeqCst);
    std::future::pending::<()>().await;
    drop(v);
}
async fn t_child_finish(n: usize) {
    let v = buf_malloc(n);
    black_box(&v);
}
async fn t_child_pending(n: usize, me: usize, grandchild: Option<usize>) {
    let v = buf_malloc(n);
    // the grandchild's cell is allocated here, during this task's poll
    let _h = grandchild.map(|gn| {
        let r = with_alloc(rec_new(Sc::Children, "grandchild", 0, me), AFn::Malloc, gn, 0, true, 1);
        spawn_rec(t_grandchild(gn), r).0
    });
    READY.fetch_add(1, SeqCst);
    std::future::pending::<()>().await;
    drop(v);
}
async fn t_child_sleep(n: usize) {
    let v = buf_malloc(n);
    READY.fetch_add(1, SeqCst);
    tokio::time::sleep(FOREVER).await;
    drop(v);
}
async fn t_parent(i: usize, n: usize, me: usize) {
    let v = buf_malloc(n);
    let c0 = 3000 + i * 100;
    let (c1, c2) = (c0 + 10, c0 + 20);
    // child cells are allocated during this (the parent's) poll
    let r0 = with_alloc(rec_new(Sc::Children, "child_finish", 0, me), AFn::Malloc, c0, 0, false, 0);
    let (h0, _) = spawn_rec(t_child_finish(c0), Rec { completes: true, ..r0 });
    let kind1 = if i == 0 { "child_spawner" } else { "child_pending" };
    let r1 = with_alloc(rec_new(Sc::Children, kind1, 1, me), AFn::Malloc, c1, 0, true, 1);
    let i1 = reserve_rec();
    let gc = if i == 0 { Some(2000) } else { None };
    let (h1, _) = spawn_rec_at(Some(i1), t_child_pending(c1, i1, gc), r1);
    let r2 = with_alloc(rec_new(Sc::Children, "child_sleep", 2, me), AFn::Malloc, c2, 0, true, 1);
    let (h2, _) = spawn_rec(t_child_sleep(c2), r2);
    let _ = h0.await; // the parent is woken by child 0's completion
    READY.fetch_add(1, SeqCst);
    std::future::pending::<()>().await;
    drop((v, h1, h2));
}

// ---------------------------------------------------------------------------
// Root (block_on) side. The root future is not a task.

/// Returns Pending (after waking itself) until `c >= n`; no allocation.
async fn wait_until(c: &AtomicUsize, n: usize) {
    // std::future::poll_fn is Rust 1.64: spelled out for Debian 12's rustc 1.63.
    struct WaitUntil<'a>(&'a AtomicUsize, usize);
    impl Future for WaitUntil<'_> {
        type Output = ();
        fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
            if self.0.load(SeqCst) >= self.1 {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
    WaitUntil(c, n).await
}

/// What the root keeps alive until exit (so it is live at "done").
struct Kept {
    root_buf: Vec<u8>,
    outlived: Vec<Vec<u8>>,
}

struct Opts {
    scenario: String,
    multi: bool,
    workers: usize,
    n: Option<usize>,
    go_file: Option<String>,
    go_signal: bool,
    exit: bool,
    per_task: bool,
}

async fn scen_leak(n: usize) {
    READY.store(0, SeqCst);
    let n = n.min(64);
    let mut hs: [Option<JoinHandle<()>>; 64] = std::array::from_fn(|_| None);
    let mut holders = 0;
    for (i, slot) in hs.iter_mut().enumerate().take(n) {
        let size = 10000 + i * 1000;
        let base = |k| rec_new(Sc::Leak, k, i, usize::MAX);
        let h = match i % 5 {
            0 => {
                let r = with_alloc(base("finish"), AFn::Malloc, size, 0, false, 0);
                spawn_rec(t_finish(size), Rec { completes: true, ..r }).0
            }
            1 => {
                holders += 1;
                let r = with_alloc(base("pending"), AFn::Malloc, size, 0, true, 1);
                spawn_rec(t_pending(size), r).0
            }
            2 => {
                let r = with_alloc(base("finish_calloc"), AFn::Calloc, size, 0, false, 0);
                spawn_rec(t_finish_calloc(size), Rec { completes: true, ..r }).0
            }
            3 => {
                holders += 1;
                let r = with_alloc(base("sleep"), AFn::Malloc, size, 0, true, 1);
                spawn_rec(t_sleep(size), r).0
            }
            _ => {
                holders += 1;
                let m = size + 500;
                // malloc(size) then realloc(p, m): the first block is not live
                let r = with_alloc(base("grow"), AFn::Malloc, size, 0, false, 0);
                let r = with_alloc(r, AFn::Realloc, m, size, true, 1);
                spawn_rec(t_grow(size, m), r).0
            }
        };
        *slot = Some(h);
    }
    for (i, h) in hs.iter_mut().enumerate().take(n) {
        if i % 5 == 0 || i % 5 == 2 {
            let _ = h.take().unwrap().await;
        }
    }
    wait_until(&READY, holders).await;
    // the holders' JoinHandles are dropped here: detached, never complete
}

async fn scen_abort(n: usize, multi: bool) {
    READY.store(0, SeqCst);
    let n = n.min(63);
    let mut hs: [Option<JoinHandle<()>>; 64] = std::array::from_fn(|_| None);
    for (i, slot) in hs.iter_mut().enumerate().take(n) {
        let size = 20000 + i * 1000;
        let cancel = i % 2 == 1;
        let r = with_alloc(
            rec_new(Sc::Abort, if cancel { "aborted" } else { "abortee_kept" }, i, usize::MAX),
            AFn::Malloc,
            size,
            0,
            !cancel,
            if cancel { 0 } else { 1 },
        );
        // aborted: one normal poll, then the poll that drops the future.
        // multi-thread: abort may land while the first poll is still running
        // (then both happen in one poll), so the count is 1 or 2.
        let polls = if !cancel { 1 } else if multi { -1 } else { 2 };
        *slot = Some(spawn_rec(t_abortee(size), Rec { completes: cancel, cancelled: cancel, polls, ..r }).0);
    }
    wait_until(&READY, n).await;
    // aborted before its first poll (current-thread: guaranteed, 1 poll
    // that only cancels; multi-thread: a worker may poll it first)
    let r = rec_new(Sc::Abort, "abort_before_poll", n, usize::MAX);
    let r = Rec { completes: true, cancelled: true, polls: if multi { -1 } else { 1 }, ..r };
    let (h, _) = spawn_rec(t_never_runs(), r);
    h.abort();
    let _ = h.await;
    for (i, h) in hs.iter_mut().enumerate().take(n) {
        if i % 2 == 1 {
            let h = h.take().unwrap();
            h.abort();
            let _ = h.await; // Err(JoinError::Cancelled); the cell is freed here
        }
    }
}

async fn scen_children(n: usize, multi: bool) {
    READY.store(0, SeqCst);
    let n = n.min(64);
    for i in 0..n {
        let size = 30000 + i * 1000;
        let r = with_alloc(rec_new(Sc::Children, "parent", i, usize::MAX), AFn::Malloc, size, 0, true, 1);
        // current-thread: poll 1 spawns + waits for child 0, poll 2 after it
        let r = Rec { polls: if multi { -1 } else { 2 }, ..r };
        let me = reserve_rec();
        drop(spawn_rec_at(Some(me), t_parent(i, size, me), r));
    }
    // parents + 2 holding children each + 1 grandchild
    wait_until(&READY, 3 * n + usize::from(n > 0)).await;
}

async fn scen_outlive(n: usize, kept: &mut Kept) {
    let n = n.min(64);
    for i in 0..n {
        let size = 40000 + i * 1000;
        let base = |k| rec_new(Sc::Outlive, k, i, usize::MAX);
        match i % 3 {
            0 => {
                let r = with_alloc(base("return"), AFn::Malloc, size, 0, true, 1);
                let (h, _) = spawn_rec(t_return(size), Rec { completes: true, holder: Some("root"), ..r });
                kept.outlived.push(h.await.unwrap());
            }
            1 => {
                let (tx, rx) = tokio::sync::oneshot::channel(); // untasked allocation
                let r = with_alloc(base("channel"), AFn::Malloc, size, 0, true, 1);
                let (h, _) = spawn_rec(t_channel(size, tx), Rec { completes: true, holder: Some("root"), ..r });
                kept.outlived.push(rx.await.unwrap());
                let _ = h.await;
            }
            _ => {
                let r = with_alloc(base("leak"), AFn::Malloc, size, 0, true, 1);
                let (h, _) = spawn_rec(t_leak(size, i), Rec { completes: true, holder: Some("leaked"), ..r });
                let _ = h.await;
            }
        }
    }
}

async fn scen_churn(n: usize) {
    const BATCH: usize = 64;
    let mut hs: [Option<JoinHandle<()>>; BATCH] = std::array::from_fn(|_| None);
    let mut i = 0;
    while i < n {
        let b = BATCH.min(n - i);
        for (j, slot) in hs.iter_mut().enumerate().take(b) {
            let size = 256 + ((i + j) % 8) * 64;
            let r = with_alloc(rec_new(Sc::Churn, "churn", i + j, usize::MAX), AFn::Malloc, size, 0, false, 0);
            *slot = Some(spawn_rec(t_churn(size), Rec { completes: true, ..r }).0);
        }
        for h in hs.iter_mut().take(b) {
            let _ = h.take().unwrap().await;
        }
        i += b;
    }
}

async fn t_hold(i: i32) {
    // vec![i; 1000] of i32: one malloc(4000) (i != 0: not the zeroed path, calloc)
    let v = vec![i; 1000];
    black_box(v.as_ptr());
    READY.fetch_add(1, SeqCst);
    tokio::time::sleep(FOREVER).await;
    drop(v);
}

/// Not part of "all": tasks that each hold a 4,000-byte Vec and sleep forever (scan mode's
/// retained heap per task).
async fn scen_hold(n: usize) {
    READY.store(0, SeqCst);
    let n = n.min(64);
    for i in 0..n {
        let r = with_alloc(rec_new(Sc::Hold, "hold", i, usize::MAX), AFn::Malloc, 4000, 0, true, 1);
        drop(spawn_rec(t_hold(i as i32 + 1), r).0);
    }
    wait_until(&READY, n).await;
}

async fn root(o: &Opts) -> Kept {
    let mut kept = Kept { root_buf: buf_malloc(ROOT_BYTES), outlived: Vec::with_capacity(64) };
    let all = o.scenario == "all";
    let sc = o.scenario.as_str();
    if all || sc == "leak" {
        scen_leak(o.n.unwrap_or(10)).await;
    }
    if all || sc == "abort" {
        scen_abort(o.n.unwrap_or(8), o.multi).await;
    }
    if all || sc == "children" {
        scen_children(o.n.unwrap_or(4), o.multi).await;
    }
    if all || sc == "outlive" {
        scen_outlive(o.n.unwrap_or(6), &mut kept).await;
    }
    if all || sc == "churn" {
        scen_churn(o.n.unwrap_or(10000).min(MAXREC - 1024)).await;
    }
    if sc == "hold" {
        scen_hold(o.n.unwrap_or(4)).await;
    }
    kept
}

// ---------------------------------------------------------------------------
// Output.

fn hex(x: usize) -> String {
    format!("\"0x{:x}\"", x)
}

fn print_rec(out: &mut impl Write, t: &Table, i: usize) {
    let r = &t.r[i];
    let id = |x: u64| if x == 0 { "null".to_string() } else { x.to_string() };
    let (pidx, pid) = if r.parent1 == 0 {
        ("null".to_string(), "null".to_string())
    } else {
        ((r.parent1 - 1).to_string(), id(t.r[r.parent1 - 1].id))
    };
    let mut allocs = String::new();
    let (mut ab, mut live, mut cnt) = (0usize, 0usize, 0usize);
    for a in &r.allocs[..r.nallocs] {
        if !allocs.is_empty() {
            allocs.push(',');
        }
        let fb = ["task", "never", "root"][a.freed_by as usize];
        allocs.push_str(&format!(
            "{{\"fn\":\"{}\",\"size\":{}{},\"live\":{},\"freed_by\":\"{}\"}}",
            a.f.name(),
            a.size,
            if a.f == AFn::Realloc { format!(",\"from\":{}", a.from) } else { String::new() },
            a.live,
            fb
        ));
        ab += a.size;
        cnt += 1;
        if a.live {
            live += a.size;
        }
    }
    let (mut sp_n, mut sp_b) = (0usize, 0usize);
    for c in &t.r[..t.n] {
        if c.parent1 == i + 1 {
            sp_n += 1;
            sp_b += c.cell_size;
        }
    }
    let cell_fn = if r.cell_size != 0 && r.fut_align.max(r.out_align) > 16 { "posix_memalign" } else { "malloc" };
    let cell_align = r.fut_align.max(r.out_align).max(8);
    let _ = write!(
        out,
        "{{\"type\":\"task\",\"scenario\":\"{}\",\"rec\":{},\"kind\":\"{}\",\"future\":\"{}\",\"idx\":{},\"id\":{},\"parent_rec\":{},\"parent_id\":{},\
\"future_size\":{},\"future_align\":{},\"cell_size\":{},\"cell_align\":{},\"cell_fn\":\"{}\",\
\"hdr\":{},\"vtable\":{},\"poll_fn\":{},\"trailer_offset\":{},\"scheduler_offset\":{},\"id_offset\":{},\"id_from_hdr\":{},\
\"allocs\":[{}],\"alloc_count\":{},\"alloc_bytes\":{},\"live_bytes\":{},\"spawned_cells\":{},\"spawned_cell_bytes\":{},\
\"completes\":{},\"cancelled\":{},\"polls\":{},\"holder\":{}",
        SC_NAMES[r.sc as usize],
        i,
        r.kind.unwrap_or(""),
        r.future,
        r.idx,
        id(r.id),
        pidx,
        pid,
        r.fut_size,
        r.fut_align,
        r.cell_size,
        cell_align,
        cell_fn,
        hex(r.hdr),
        hex(r.vtable),
        hex(r.poll_fn),
        r.trailer_off,
        r.sched_off,
        r.id_off,
        id(r.id_from_hdr),
        allocs,
        cnt,
        ab,
        live,
        sp_n,
        sp_b,
        r.completes,
        r.cancelled,
        if r.polls < 0 { "null".to_string() } else { r.polls.to_string() },
        match r.holder { None => "null".to_string(), Some(h) => format!("\"{}\"", h) },
    );
    #[cfg(feature = "selfcheck")]
    selfcheck::print_task_check(out, r, ab, cnt, live, cell_fn, sp_n, sp_b);
    let _ = writeln!(out, "}}");
}

fn parse_args() -> Opts {
    let mut o = Opts {
        scenario: String::new(),
        multi: false,
        workers: 2,
        n: None,
        go_file: None,
        go_signal: false,
        exit: false,
        per_task: false,
    };
    let usage = "usage: tokio-target SCENARIO [--rt current|multi] [--workers N] [--n N] \
[--go-file PATH] [--go-signal] [--exit] [--per-task]\n  SCENARIO: leak abort children outlive churn all hold";
    let mut a = std::env::args().skip(1);
    while let Some(x) = a.next() {
        match x.as_str() {
            "--rt" => {
                o.multi = match a.next().as_deref() {
                    Some("current") => false,
                    Some("multi") => true,
                    _ => panic!("{}", usage),
                }
            }
            "--workers" => o.workers = a.next().and_then(|s| s.parse().ok()).expect(usage),
            "--n" => o.n = Some(a.next().and_then(|s| s.parse().ok()).expect(usage)),
            "--go-file" => o.go_file = Some(a.next().expect(usage)),
            "--go-signal" => o.go_signal = true,
            "--exit" => o.exit = true,
            "--per-task" => o.per_task = true,
            "-h" | "--help" => {
                println!("{}", usage);
                std::process::exit(0)
            }
            s if !s.starts_with('-') && o.scenario.is_empty() => o.scenario = s.to_string(),
            _ => panic!("{}", usage),
        }
    }
    if !["leak", "abort", "children", "outlive", "churn", "all", "hold"].contains(&o.scenario.as_str()) {
        eprintln!("{}", usage);
        std::process::exit(2);
    }
    o
}

pub fn main() {
    let o = parse_args();
    // SIGUSR1 is blocked before any thread exists, then waited for with sigwait.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        if o.go_signal {
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
    }
    println!(
        "{{\"type\":\"ready\",\"pid\":{},\"scenario\":\"{}\",\"rt\":\"{}\",\"workers\":{},\"tokio\":\"1.24.2\",\"selfcheck\":{},\"go\":\"{}\"}}",
        std::process::id(),
        o.scenario,
        if o.multi { "multi" } else { "current" },
        if o.multi { o.workers } else { 0 },
        cfg!(feature = "selfcheck"),
        if o.go_signal { "SIGUSR1" } else if o.go_file.is_some() { "file" } else { "none" }
    );
    let _ = std::io::stdout().flush();
    if let Some(p) = &o.go_file {
        while !std::path::Path::new(p).exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    if o.go_signal {
        let mut sig = 0;
        unsafe { libc::sigwait(&set, &mut sig) };
    }

    let rt = if o.multi {
        tokio::runtime::Builder::new_multi_thread().worker_threads(o.workers).enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    }
    .expect("runtime");
    let kept = rt.block_on(root(&o));
    #[cfg(feature = "selfcheck")]
    selfcheck::snapshot();

    let t = RECS.lock().unwrap();
    let so = std::io::stdout();
    let mut out = so.lock();
    let mut totals = [(0usize, 0usize, 0usize, 0usize); 6]; // tasks, alloc_count, alloc_bytes, live
    for i in 0..t.n {
        let r = &t.r[i];
        let tt = &mut totals[r.sc as usize];
        tt.0 += 1;
        for a in &r.allocs[..r.nallocs] {
            tt.1 += 1;
            tt.2 += a.size;
            if a.live {
                tt.3 += a.size;
            }
        }
        if r.sc != Sc::Churn as u8 || o.per_task {
            print_rec(&mut out, &t, i);
        }
    }
    let _ = writeln!(
        out,
        "{{\"type\":\"root\",\"alloc_fn\":\"malloc\",\"bytes\":{},\"addr\":{},\"live\":true,\"note\":\"block_on root future buffer; other untasked allocations (runtime, channels, stdout) exist\"}}",
        ROOT_BYTES,
        hex(kept.root_buf.as_ptr() as usize)
    );
    for (s, tt) in totals.iter().enumerate() {
        if tt.0 > 0 {
            let _ = writeln!(
                out,
                "{{\"type\":\"summary\",\"scenario\":\"{}\",\"tasks\":{},\"alloc_count\":{},\"alloc_bytes\":{},\"live_bytes\":{}}}",
                SC_NAMES[s], tt.0, tt.1, tt.2, tt.3
            );
        }
    }
    #[cfg(feature = "selfcheck")]
    selfcheck::print_summary(&mut out, &t);
    let _ = writeln!(out, "{{\"type\":\"done\",\"outlived\":{}}}", kept.outlived.len());
    let _ = out.flush();
    drop(out);
    drop(t);
    if o.exit {
        std::process::exit(0); // runtime not dropped: no shutdown frees
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
