//! Shared by the two executors' targets: ten tasks, each holding `vec![i; 1000]` (8000 bytes);
//! six then sleep for an hour (leaked: suspects holding exactly their vector), four complete.
//!
//! Protocol (tests/e2e/harness.py Target): prints `ready PID`, waits for SIGUSR1, prints
//! `truth {json}` and `done`, then idles until killed. With `pre` the tasks are spawned (and
//! have allocated) before `ready`, so that memscoped attaches after they started. With
//! `cancel`, one more sleeper is spawned after them and cancelled once it holds its vector.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

pub const TASKS: usize = 10;
pub const SLEEPERS: usize = 6;
pub const HOUR: Duration = Duration::from_secs(3600);

static STARTED: AtomicUsize = AtomicUsize::new(0);
static FINISHED: AtomicUsize = AtomicUsize::new(0);
static GO: AtomicBool = AtomicBool::new(false);

/// `std::hint::black_box` (Rust 1.66) for Debian 12's rustc 1.63 as well.
#[inline(never)]
pub fn black_box<T>(x: T) -> T {
    unsafe {
        let y = std::ptr::read_volatile(&x);
        std::mem::forget(x);
        y
    }
}

extern "C" fn on_usr1(_: libc::c_int) {
    GO.store(true, SeqCst);
}

/// Holds its vector across an hour's sleep: a leaked task.
pub async fn leaker<S: Future>(i: usize, sleep: S) {
    let v = vec![i as u64; 1000];
    black_box(&v);
    STARTED.fetch_add(1, SeqCst);
    sleep.await;
    black_box(&v);
}

/// Allocates its vector and completes.
pub async fn worker(i: usize) -> u64 {
    let v = vec![i as u64; 1000];
    let sum = black_box(&v).iter().sum();
    STARTED.fetch_add(1, SeqCst);
    FINISHED.fetch_add(1, SeqCst);
    sum
}

/// Until n tasks have allocated.
pub fn wait_started(n: usize) {
    while STARTED.load(SeqCst) < n {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
}

/// Until every task has allocated and the workers have completed.
pub fn wait_tasks() {
    while STARTED.load(SeqCst) < TASKS || FINISHED.load(SeqCst) < TASKS - SLEEPERS {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Their last poll returns just after the counters move.
    std::thread::sleep(Duration::from_millis(100));
}

pub fn ready() {
    unsafe {
        libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t);
    }
    println!("ready {}", std::process::id());
    std::io::stdout().flush().unwrap();
}

pub fn wait_go() {
    while !GO.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The ground truth, then idle: the sleepers stay leaked until the process is killed.
pub fn truth_and_idle(executor: &str, pre: bool, cancelled: usize) -> ! {
    println!(
        "truth {{\"executor\":\"{}\",\"pre\":{},\"tasks\":{},\"sleepers\":{},\"cancelled\":{},\"vec_bytes\":{}}}",
        executor,
        pre,
        TASKS,
        SLEEPERS,
        cancelled,
        1000 * std::mem::size_of::<u64>()
    );
    println!("done");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(HOUR);
    }
}
