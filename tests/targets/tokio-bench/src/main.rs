//! memscoped benchmark target (scripts/bench/tokio.py drives it). One mode per run:
//!
//! - `churn TASKS BATCH BYTES`: many short tasks. Prints `ready`, waits for SIGUSR1, then
//!   spawns TASKS tasks in batches of BATCH (spawn the batch, then await every handle); each
//!   task allocates, touches and frees a Vec of BYTES bytes. Prints
//!   `tasks_per_sec R tasks N seconds S`, then waits for SIGUSR1 again (a tracer's CPU time
//!   can be read while the target still lives) and exits.
//! - `heap MIB SLEEPERS`: a big heap at attach time. Fills MIB buffers of 1 MiB with non-zero
//!   bytes, hands them round-robin to SLEEPERS tasks that sleep forever, prints
//!   `ready tasks SLEEPERS heap_mib MIB` once every task has been polled, then idles.
//! - `sleepers N BYTES`: many live tasks. Prints `ready`, waits for SIGUSR1, then spawns N
//!   tasks that each allocate a Vec of BYTES bytes and sleep forever; prints
//!   `spawned N seconds S` once every task has been polled, then idles.
//!
//! Always a multi-thread runtime with 2 workers (`WORKERS` overrides). SIGUSR1 is blocked
//! before any thread exists, so only the main thread's sigwait takes it.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

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

/// "Forever" for tokio::time::sleep (10 years).
const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const MIB: usize = 1 << 20;

/// Tasks that have been polled at least once (heap and sleepers modes).
static STARTED: AtomicUsize = AtomicUsize::new(0);

fn block_go_signal() -> libc::sigset_t {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_go(set: &libc::sigset_t) {
    let mut sig = 0;
    while unsafe { libc::sigwait(set, &mut sig) } != 0 || sig != libc::SIGUSR1 {}
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    let workers = std::env::var("WORKERS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn churn_batches(tasks: usize, batch: usize, bytes: usize) -> usize {
    let mut handles = Vec::with_capacity(batch);
    let (mut done, mut sum) = (0, 0);
    while done < tasks {
        let n = batch.min(tasks - done);
        for _ in 0..n {
            handles.push(tokio::spawn(async move {
                let v = vec![0x5au8; bytes];
                black_box(&v);
                v.len()
            }));
        }
        for h in handles.drain(..) {
            sum += h.await.expect("task");
        }
        done += n;
    }
    sum
}

fn churn(tasks: usize, batch: usize, bytes: usize) {
    let set = block_go_signal();
    let rt = runtime();
    // Warm-up: the workers exist and the allocator arenas are set up before the clock starts.
    rt.block_on(churn_batches(batch.min(tasks), batch, bytes));
    say("ready");
    wait_go(&set);
    let t0 = Instant::now();
    let sum = rt.block_on(churn_batches(tasks, batch, bytes));
    let s = t0.elapsed().as_secs_f64();
    assert_eq!(sum, tasks * bytes);
    say(&format!("tasks_per_sec {:.0} tasks {} seconds {:.4}", tasks as f64 / s, tasks, s));
    wait_go(&set);
}

async fn wait_started(n: usize) {
    while STARTED.load(SeqCst) < n {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn heap(mib: usize, sleepers: usize) {
    let rt = runtime();
    rt.block_on(async {
        let mut bufs: Vec<Vec<Vec<u8>>> = (0..sleepers).map(|_| Vec::new()).collect();
        for j in 0..mib {
            // Non-zero bytes: every page is really there for the attach scan to read.
            bufs[j % sleepers].push(vec![(j as u8) | 1; MIB]);
        }
        for b in bufs {
            tokio::spawn(async move {
                STARTED.fetch_add(1, SeqCst);
                tokio::time::sleep(FOREVER).await;
                black_box(&b);
            });
        }
        wait_started(sleepers).await;
        say(&format!("ready tasks {sleepers} heap_mib {mib}"));
        std::future::pending::<()>().await
    })
}

fn sleepers(n: usize, bytes: usize) {
    let set = block_go_signal();
    let rt = runtime();
    rt.block_on(async {});
    say("ready");
    wait_go(&set);
    rt.block_on(async {
        let t0 = Instant::now();
        for _ in 0..n {
            tokio::spawn(async move {
                let v = vec![0x5au8; bytes];
                STARTED.fetch_add(1, SeqCst);
                tokio::time::sleep(FOREVER).await;
                black_box(&v);
            });
        }
        wait_started(n).await;
        say(&format!("spawned {} seconds {:.3}", n, t0.elapsed().as_secs_f64()));
        std::future::pending::<()>().await
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let num = |i: usize| -> usize {
        args.get(i).and_then(|s| s.parse().ok()).unwrap_or_else(|| usage())
    };
    match args.get(1).map(String::as_str) {
        Some("churn") => churn(num(2), num(3), num(4)),
        Some("heap") => heap(num(2), num(3).max(1)),
        Some("sleepers") => sleepers(num(2), num(3)),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: tokio-bench churn TASKS BATCH BYTES | heap MIB SLEEPERS | sleepers N BYTES");
    std::process::exit(2)
}
