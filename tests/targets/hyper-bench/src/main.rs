//! memscoped benchmark target (scripts/bench/http.py drives it with wrk): a hyper 0.14 HTTP/1
//! server on a tokio multi-thread runtime with 2 workers (`WORKERS` overrides).
//!
//! usage: hyper-bench PORT
//!
//! Binds 127.0.0.1:PORT (0: any free port), prints `ready PORT` with the port it got, and
//! serves until killed. Every request gets a freshly built body of 336 to about 420 bytes: a
//! JSON object naming the request number, method and path, then eight items, built with
//! `format!` into a `String` the way a small JSON or HTML handler would, so each request
//! allocates and frees on the heap besides what hyper itself does.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Request, Response, Server};

static REQUESTS: AtomicU64 = AtomicU64::new(0);

async fn handle(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let n = REQUESTS.fetch_add(1, Relaxed);
    let mut body = String::with_capacity(64);
    body.push_str(&format!(
        "{{\"request\":{},\"method\":\"{}\",\"path\":\"{}\",\"items\":[",
        n,
        req.method(),
        req.uri().path()
    ));
    for i in 0..8u64 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"id\":{},\"name\":\"item-{}\",\"score\":{}}}",
            n * 8 + i,
            i,
            (n ^ i) % 1000
        ));
    }
    body.push_str("]}\n");
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap())
}

fn main() {
    let port: u16 = match std::env::args().nth(1).map(|s| s.parse()) {
        Some(Ok(p)) => p,
        _ => {
            eprintln!("usage: hyper-bench PORT");
            std::process::exit(2);
        }
    };
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let server = match Server::try_bind(&addr) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("hyper-bench: cannot bind {}: {}", addr, e);
                std::process::exit(1);
            }
        };
        let make = make_service_fn(|_conn| async { Ok::<_, Infallible>(service_fn(handle)) });
        let server = server.serve(make);
        println!("ready {}", server.local_addr().port());
        std::io::stdout().flush().unwrap();
        if let Err(e) = server.await {
            eprintln!("hyper-bench: {}", e);
            std::process::exit(1);
        }
    });
}
