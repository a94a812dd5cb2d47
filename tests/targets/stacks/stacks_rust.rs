// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
//! Three Rust call paths to the global allocator (System: malloc) for the sampled-stack
//! tests, built as a release binary (opt-level 3, no frame pointers): main -> alpha_outer ->
//! alpha_inner, main -> beta_outer -> beta_mid -> beta_inner, main -> Gamma::build. 40
//! boxed slices per path of distinct sizes, kept live. Prints ready, waits for SIGUSR1 (a
//! pipe written by the handler), prints the truth.
use std::hint::black_box;
use std::io::Write;

extern "C" {
    fn signal(sig: i32, handler: extern "C" fn(i32)) -> usize;
    fn pause() -> i32;
}

static mut GO: i32 = 0;

extern "C" fn on_usr1(_: i32) {
    unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!(GO), 1) };
}

#[inline(never)]
fn alpha_inner(size: usize) -> Box<[u8]> {
    let b = vec![1u8; size].into_boxed_slice();
    black_box(b)
}

#[inline(never)]
fn alpha_outer(size: usize) -> Box<[u8]> {
    black_box(alpha_inner(black_box(size)))
}

#[inline(never)]
fn beta_inner(size: usize) -> Box<[u8]> {
    let b = vec![2u8; size].into_boxed_slice();
    black_box(b)
}

#[inline(never)]
fn beta_mid(size: usize) -> Box<[u8]> {
    black_box(beta_inner(black_box(size)))
}

#[inline(never)]
fn beta_outer(size: usize) -> Box<[u8]> {
    black_box(beta_mid(black_box(size)))
}

struct Gamma;

impl Gamma {
    #[inline(never)]
    fn build(&self, size: usize) -> Box<[u8]> {
        let b = vec![3u8; size].into_boxed_slice();
        black_box(b)
    }
}

fn main() {
    unsafe { signal(10, on_usr1) };
    println!("ready {}", std::process::id());
    std::io::stdout().flush().unwrap();
    while unsafe { std::ptr::read_volatile(std::ptr::addr_of!(GO)) } == 0 {
        unsafe { pause() };
    }
    let mut keep = Vec::with_capacity(120);
    let (mut a, mut b, mut c) = (0usize, 0usize, 0usize);
    for i in 0..40usize {
        let size = 100 * (i + 1);
        keep.push(alpha_outer(size));
        keep.push(beta_outer(size + 1));
        keep.push(black_box(&Gamma).build(size + 2));
        a += size;
        b += size + 1;
        c += size + 2;
    }
    println!(
        "truth {{\"alpha\": {{\"live_bytes\": {a}, \"live_count\": 40}}, \"beta\": {{\"live_bytes\": {b}, \"live_count\": 40}}, \"gamma\": {{\"live_bytes\": {c}, \"live_count\": 40}}}}\ndone"
    );
    std::io::stdout().flush().unwrap();
    black_box(&keep);
    loop {
        unsafe { pause() };
    }
}
