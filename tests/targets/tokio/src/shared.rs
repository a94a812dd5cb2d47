//! The same target built as a shared object (variant "shared"): host.c, a C
//! program, links it and calls `tokio_target_main`, so tokio lives in a
//! mapped library rather than in the executable.

#[path = "main.rs"]
mod app;

#[no_mangle]
pub extern "C" fn tokio_target_main() {
    app::main()
}
