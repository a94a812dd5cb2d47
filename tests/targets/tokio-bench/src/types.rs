//! memscoped benchmark target: 1000 distinct future types, so 1000 copies of
//! `tokio::runtime::task::raw::poll` (one per type) for the attach to find and probe.
//!
//! `tokio-bench-types`: spawns one task of each type (each allocates 64 + k bytes and sleeps
//! forever), prints `ready types 1000 tasks 1000` once all were polled, then idles.
//! Every `async` block a macro expands is its own type; 10 functions of 100 keep each
//! function a reasonable size for the compiler.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

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

const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const TYPES: usize = 1000;
static STARTED: AtomicUsize = AtomicUsize::new(0);

macro_rules! spawn1 {
    ($k:expr) => {
        tokio::spawn(async move {
            let v = vec![1u8; 64 + $k];
            STARTED.fetch_add(1, SeqCst);
            tokio::time::sleep(FOREVER).await;
            black_box(&v);
        });
    };
}
macro_rules! spawn10 {
    ($k:expr) => {
        spawn1!($k * 10);
        spawn1!($k * 10 + 1);
        spawn1!($k * 10 + 2);
        spawn1!($k * 10 + 3);
        spawn1!($k * 10 + 4);
        spawn1!($k * 10 + 5);
        spawn1!($k * 10 + 6);
        spawn1!($k * 10 + 7);
        spawn1!($k * 10 + 8);
        spawn1!($k * 10 + 9);
    };
}
macro_rules! spawn100 {
    ($k:expr) => {
        spawn10!($k * 10);
        spawn10!($k * 10 + 1);
        spawn10!($k * 10 + 2);
        spawn10!($k * 10 + 3);
        spawn10!($k * 10 + 4);
        spawn10!($k * 10 + 5);
        spawn10!($k * 10 + 6);
        spawn10!($k * 10 + 7);
        spawn10!($k * 10 + 8);
        spawn10!($k * 10 + 9);
    };
}

fn spawn_0() { spawn100!(0); }
fn spawn_1() { spawn100!(1); }
fn spawn_2() { spawn100!(2); }
fn spawn_3() { spawn100!(3); }
fn spawn_4() { spawn100!(4); }
fn spawn_5() { spawn100!(5); }
fn spawn_6() { spawn100!(6); }
fn spawn_7() { spawn100!(7); }
fn spawn_8() { spawn100!(8); }
fn spawn_9() { spawn100!(9); }

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for f in [spawn_0, spawn_1, spawn_2, spawn_3, spawn_4, spawn_5, spawn_6, spawn_7, spawn_8, spawn_9] {
            f();
        }
        while STARTED.load(SeqCst) < TYPES {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready types {TYPES} tasks {TYPES}").unwrap();
        out.flush().unwrap();
        drop(out);
        std::future::pending::<()>().await
    })
}
