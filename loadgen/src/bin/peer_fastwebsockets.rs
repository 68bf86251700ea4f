//! Peer echo server: fastwebsockets (upgrade feature, hyper 1 HTTP/1 server) on a
//! tokio `current_thread` runtime, as in the crate's `echo_server` example.
//!
//! `peer_fastwebsockets --listen ADDR` echoes text and binary messages through a
//! `FragmentCollector`, with auto-close and auto-pong on. Sockets get `TCP_NODELAY`.

use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use postern_loadgen::cli::Args;
use tokio::net::TcpListener;

fn main() {
    if let Err(e) = run() {
        eprintln!("peer_fastwebsockets: {e}");
        std::process::exit(1);
    }
}

fn run() -> postern_loadgen::Result<()> {
    let mut args = Args::from_env();
    let listen: String = args.get("--listen", "127.0.0.1:9002".to_string())?;
    args.finish()?;
    postern_loadgen::sys::raise_nofile_limit()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        eprintln!("listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let conn = http1::Builder::new()
                    .serve_connection(io, service_fn(server_upgrade))
                    .with_upgrades();
                let _ = conn.await;
            });
        }
    })
}

/// Answers the upgrade and spawns the echo task.
async fn server_upgrade(
    mut req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, fut) = upgrade::upgrade(&mut req)?;
    tokio::spawn(async move {
        let _ = tokio::task::unconstrained(echo(fut)).await;
    });
    Ok(response)
}

/// Echoes text and binary frames until close.
async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = fut.await?;
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}
