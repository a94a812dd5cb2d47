//! memscoped test target: async-std 1.12 tasks (async-task 4.3 RawTask), see common.rs.
mod common;

use async_std::task;
use common::{leaker, worker, HOUR, SLEEPERS, TASKS};

fn spawn_all() -> Vec<task::JoinHandle<()>> {
    let mut handles = Vec::with_capacity(TASKS);
    for i in 0..TASKS {
        if i < SLEEPERS {
            handles.push(task::spawn(leaker(i, task::sleep(HOUR))));
        } else {
            handles.push(task::spawn(async move {
                common::black_box(worker(i).await);
            }));
        }
    }
    handles
}

fn main() {
    let pre = std::env::args().any(|a| a == "pre");
    let cancel = std::env::args().any(|a| a == "cancel");
    // The executor, its threads and the reactor start lazily: before any task counted.
    task::block_on(async {
        task::spawn(async {}).await;
        task::sleep(std::time::Duration::from_millis(1)).await;
    });
    let mut handles = Vec::new();
    if pre {
        handles = spawn_all();
        common::wait_tasks();
    }
    common::ready();
    common::wait_go();
    if !pre {
        handles = spawn_all();
        common::wait_tasks();
    }
    if cancel {
        // Dropping async-std's JoinHandle detaches; cancel() drops the task's Task.
        let handle = task::spawn(leaker(TASKS, task::sleep(HOUR)));
        common::wait_started(TASKS + 1);
        task::block_on(handle.cancel());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    common::black_box(&handles);
    common::truth_and_idle("async-std", pre, cancel as usize)
}
