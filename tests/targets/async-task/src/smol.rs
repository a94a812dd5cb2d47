//! memscoped test target: smol 1.3 tasks (async-task 4.3 RawTask), see common.rs.
mod common;

use common::{leaker, worker, HOUR, SLEEPERS, TASKS};

fn spawn_all() -> Vec<smol::Task<()>> {
    let mut tasks = Vec::with_capacity(TASKS);
    for i in 0..TASKS {
        if i < SLEEPERS {
            // Kept: dropping a smol Task cancels it.
            tasks.push(smol::spawn(leaker(i, smol::Timer::after(HOUR))));
        } else {
            tasks.push(smol::spawn(async move {
                common::black_box(worker(i).await);
            }));
        }
    }
    tasks
}

fn main() {
    let pre = std::env::args().any(|a| a == "pre");
    let cancel = std::env::args().any(|a| a == "cancel");
    // The executor, its threads and the reactor start lazily: before any task counted.
    smol::block_on(async {
        smol::spawn(async {}).await;
        smol::Timer::after(std::time::Duration::from_millis(1)).await;
    });
    let mut tasks = Vec::new();
    if pre {
        tasks = spawn_all();
        common::wait_tasks();
    }
    common::ready();
    common::wait_go();
    if !pre {
        tasks = spawn_all();
        common::wait_tasks();
    }
    if cancel {
        // Dropping a smol Task cancels it: its future (and vector) is dropped, its cell freed.
        let task = smol::spawn(leaker(TASKS, smol::Timer::after(HOUR)));
        common::wait_started(TASKS + 1);
        drop(task);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    common::black_box(&tasks);
    common::truth_and_idle("smol", pre, cancel as usize)
}
