//! Peer echo server: tokio-tungstenite on a tokio `current_thread` runtime.
//!
//! `peer_tungstenite --listen ADDR [--read-buffer BYTES] [--max-message-size BYTES]`
//! echoes text and binary messages (the crate's own echo idiom: `forward` from the
//! read half to the write half). Default `WebSocketConfig` unless the flags are given
//! (`--read-buffer 4096` is the "tuned" variant). Sockets get `TCP_NODELAY`.

use futures_util::{future, StreamExt, TryStreamExt};
use postern_loadgen::cli::Args;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

fn main() {
    if let Err(e) = run() {
        eprintln!("peer_tungstenite: {e}");
        std::process::exit(1);
    }
}

fn run() -> postern_loadgen::Result<()> {
    let mut args = Args::from_env();
    let listen: String = args.get("--listen", "127.0.0.1:9001".to_string())?;
    let read_buffer: Option<usize> = args.opt("--read-buffer")?;
    let max_message: Option<usize> = args.opt("--max-message-size")?;
    args.finish()?;
    postern_loadgen::sys::raise_nofile_limit()?;
    let config = (read_buffer.is_some() || max_message.is_some()).then(|| {
        let mut c = WebSocketConfig::default();
        if let Some(n) = read_buffer {
            c = c.read_buffer_size(n);
        }
        if let Some(n) = max_message {
            c = c.max_message_size(Some(n)).max_frame_size(Some(n));
        }
        c
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        eprintln!("listening on {}", listener.local_addr()?);
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, config));
                }
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    })
}

/// Upgrades one connection and echoes until it closes.
async fn serve(stream: TcpStream, config: Option<WebSocketConfig>) {
    let _ = stream.set_nodelay(true);
    let ws = match tokio_tungstenite::accept_async_with_config(stream, config).await {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("handshake: {e}");
            return;
        }
    };
    let (write, read) = ws.split();
    // Errors (resets at the end of a run) are expected and not worth a line each.
    let _ = read
        .try_filter(|m| future::ready(m.is_text() || m.is_binary()))
        .forward(write)
        .await;
}
