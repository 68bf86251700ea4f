//! A tiny room server to exercise `loadgen fanout` before postern has rooms.
//!
//! `cargo run --release --example room_server -- --listen 127.0.0.1:9200`
//!
//! Protocol (text): the server greets with `{"f":100}`; a client sending `join`
//! becomes a member; any text starting with `say:` is broadcast to all members; a text
//! containing `"f":110` (a chat identify) is answered with `{"f":140}`, so
//! `loadgen upgrades --chat TOKEN` can be tried too.
//! Try: `loadgen fanout --url ws://127.0.0.1:9200/ --conns 1000 --first-message
//! --join-message join --trigger-message say:ping --expect ping`.

use futures_util::{SinkExt, StreamExt};
use postern_bench::cli::Args;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

fn main() -> postern_bench::Result<()> {
    let mut args = Args::from_env();
    let listen: String = args.get("--listen", "127.0.0.1:9200".to_string())?;
    args.finish()?;
    postern_bench::sys::raise_nofile_limit()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        eprintln!("listening on {}", listener.local_addr()?);
        let (tx, _) = broadcast::channel::<String>(64);
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(member(stream, tx.clone()));
        }
    })
}

/// Serves one connection: greeting, `join`, `say:` broadcasts.
async fn member(stream: TcpStream, tx: broadcast::Sender<String>) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    if ws.send(Message::text(r#"{"f":100}"#)).await.is_err() {
        return;
    }
    let mut rx: Option<broadcast::Receiver<String>> = None;
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) if t.as_str() == "join" => rx = Some(tx.subscribe()),
                Some(Ok(Message::Text(t))) if t.as_str().starts_with("say:") => {
                    let _ = tx.send(t.as_str().to_string());
                }
                Some(Ok(Message::Text(t))) if t.as_str().contains(r#""f":110"#) => {
                    if ws.send(Message::text(r#"{"f":140}"#)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            Ok(text) = async { rx.as_mut().expect("joined").recv().await }, if rx.is_some() => {
                if ws.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
        }
    }
}
