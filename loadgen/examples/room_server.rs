//! A tiny room server to exercise `loadgen fanout` before postern has rooms.
//!
//! `cargo run --release --example room_server -- --listen 127.0.0.1:9200`
//!
//! Protocol (text): the server greets with `{"f":100,"cnf":{"hb_int":N}}`
//! (`--heartbeat-ms N`, default 20000); a client sending `join` becomes a member; any
//! text starting with `say:` is broadcast to all members. A chat-gateway subset lets
//! `loadgen upgrades --chat`, `fanout --chat` and `sessions` be tried too: a text
//! containing `"f":110` (a present) is answered with `{"f":140}` and makes the client a
//! member, `{"f":120}` is echoed, and a text containing `MESSAGE_CREATE` is broadcast to
//! all members as a `{"f":130,...}` event carrying the sender's text. No token check, no
//! heartbeat deadline.
//! Try: `loadgen fanout --url ws://127.0.0.1:9200/ --conns 1000 --first-message
//! --join-message join --trigger-message say:ping --expect ping`.

use futures_util::{SinkExt, StreamExt};
use postern_loadgen::cli::Args;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

fn main() -> postern_loadgen::Result<()> {
    let mut args = Args::from_env();
    let listen: String = args.get("--listen", "127.0.0.1:9200".to_string())?;
    let hb_ms: u64 = args.get("--heartbeat-ms", 20_000)?;
    args.finish()?;
    postern_loadgen::sys::raise_nofile_limit()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        eprintln!("listening on {}", listener.local_addr()?);
        let (tx, _) = broadcast::channel::<String>(64);
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(member(stream, tx.clone(), hb_ms));
        }
    })
}

/// Serves one connection: greeting, `join`, `say:` broadcasts, the chat subset.
async fn member(stream: TcpStream, tx: broadcast::Sender<String>, hb_ms: u64) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let hello = format!(r#"{{"f":100,"cnf":{{"hb_int":{hb_ms}}}}}"#);
    if ws.send(Message::text(hello)).await.is_err() {
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
                    rx = Some(tx.subscribe());
                }
                Some(Ok(Message::Text(t))) if t.as_str() == r#"{"f":120}"# => {
                    if ws.send(Message::text(r#"{"f":120}"#)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Text(t))) if t.as_str().contains("MESSAGE_CREATE") => {
                    let _ = tx.send(format!(r#"{{"f":130,"t":"MESSAGE_CREATE","cnf":{t}}}"#));
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
