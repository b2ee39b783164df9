// SPDX-License-Identifier: MIT
//! Benchmark peer: hyper 0.14 serving TechEmpower's /plaintext and /json on a tokio
//! current-thread runtime, so the whole server is one thread (bench/run.sh pins it to a CPU).
//!
//! Usage: hyper-bench [PORT]   (else the PORT environment variable, else 8080)
//! Listens on 127.0.0.1. Keep-alive is on (hyper's default) and pipeline_flush is on, so a
//! batch of pipelined requests is answered with one write. hyper adds the Date header itself
//! (formatted once a second); Content-Length follows from the full body.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::header::{HeaderValue, CONTENT_TYPE, SERVER};
use hyper::server::conn::Http;
use hyper::service::service_fn;
use hyper::{Body, Method, Request, Response, StatusCode};
use serde::Serialize;
use tokio::net::TcpSocket;

const PLAINTEXT: &[u8] = b"Hello, World!";

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

fn response(status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("hyper"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

async fn handle(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::GET {
        return Ok(response(StatusCode::METHOD_NOT_ALLOWED, "text/plain", Body::empty()));
    }
    Ok(match req.uri().path() {
        "/plaintext" => response(StatusCode::OK, "text/plain", Body::from(PLAINTEXT)),
        "/json" => {
            // Serialized per request, as TechEmpower's JSON test requires.
            let body = serde_json::to_vec(&Message { message: "Hello, World!" })
                .expect("serializing a static message");
            response(StatusCode::OK, "application/json", Body::from(body))
        }
        _ => response(StatusCode::NOT_FOUND, "text/plain", Body::from("Not Found")),
    })
}

fn port() -> u16 {
    let arg = std::env::args().nth(1).or_else(|| std::env::var("PORT").ok());
    match arg {
        None => 8080,
        Some(s) => s.parse().unwrap_or_else(|_| {
            eprintln!("hyper-bench: bad port '{}'", s);
            std::process::exit(2)
        }),
    }
}

async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(4096)?;

    let mut http = Http::new();
    http.http1_only(true)
        .http1_keep_alive(true)
        .pipeline_flush(true);

    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE and the like: wait for connections to go instead of spinning.
                eprintln!("hyper-bench: accept: {}", e);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let conn = http.serve_connection(stream, service_fn(handle));
        // Spawned on the current-thread runtime: it runs on this same thread.
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

fn main() {
    let addr = SocketAddr::from(([127, 0, 0, 1], port()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    if let Err(e) = rt.block_on(serve(addr)) {
        eprintln!("hyper-bench: {}: {}", addr, e);
        std::process::exit(1);
    }
}
