//! End-to-end smoke tests: the load generator against the peer echo servers on
//! loopback, briefly (well under a second of load each).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A peer server on an ephemeral loopback port, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(bin: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let mut line = String::new();
        BufReader::new(child.stderr.take().expect("stderr"))
            .read_line(&mut line)
            .expect("read server stderr");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected server line {line:?}"))
            .to_string();
        Self { child, addr }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `loadgen ARGS` and returns its JSON line as a map.
fn loadgen(args: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .arg("--quiet")
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout
        .lines()
        .rfind(|l| l.starts_with('{'))
        .expect("JSON line");
    serde_json::from_str(json).expect("valid JSON")
}

fn num(r: &serde_json::Map<String, serde_json::Value>, key: &str) -> f64 {
    r[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {r:?}"))
}

fn check_echo_upgrades_idle(bin: &str, extra: &[&str]) {
    let server = Server::start(bin, extra);
    let url = format!("ws://{}/", server.addr);
    let pid = server.pid();
    for binary in [false, true] {
        let mut args = vec![
            "echo",
            "--url",
            &url,
            "--pid",
            &pid,
            "--conns",
            "4",
            "--pipeline",
            "8",
            "--size",
            "300",
            "--duration",
            "0.3",
            "--warmup",
            "0",
        ];
        if binary {
            args.push("--binary");
        }
        let r = loadgen(&args);
        assert!(num(&r, "msgs") > 0.0, "{r:?}");
        assert_eq!(num(&r, "bad_msgs"), 0.0, "{r:?}");
        assert_eq!(num(&r, "closed"), 0.0, "{r:?}");
    }
    // A 100 KiB message exercises the 64-bit length form and buffer growth.
    let r = loadgen(&[
        "echo",
        "--url",
        &url,
        "--conns",
        "1",
        "--pipeline",
        "2",
        "--size",
        "100000",
        "--duration",
        "0.2",
        "--warmup",
        "0",
    ]);
    assert!(num(&r, "msgs") > 0.0 && num(&r, "bad_msgs") == 0.0, "{r:?}");
    for close in ["wait", "frame", "drop", "rst"] {
        let r = loadgen(&[
            "upgrades",
            "--url",
            &url,
            "--pid",
            &pid,
            "--conns-in-flight",
            "4",
            "--duration",
            "0.3",
            "--warmup",
            "0",
            "--close",
            close,
        ]);
        assert!(num(&r, "completed") > 0.0, "{r:?}");
        assert_eq!(num(&r, "failed"), 0.0, "{r:?}");
    }
    let r = loadgen(&[
        "idle",
        "--url",
        &url,
        "--pid",
        &pid,
        "--conns",
        "200",
        "--hold",
        "0.1",
        "--sources",
        "127.0.0.1,127.0.0.2",
    ]);
    assert_eq!(num(&r, "up"), 200.0, "{r:?}");
    assert!(num(&r, "rss_open_kib") > 0.0, "{r:?}");
}

#[test]
fn tungstenite_peer() {
    check_echo_upgrades_idle(
        env!("CARGO_BIN_EXE_peer_tungstenite"),
        &["--read-buffer", "4096"],
    );
}

#[test]
fn fastwebsockets_peer() {
    check_echo_upgrades_idle(env!("CARGO_BIN_EXE_peer_fastwebsockets"), &[]);
}

#[test]
fn fanout_without_broadcast_reports_misses() {
    // An echo server never broadcasts: every member misses, quickly and cleanly.
    let server = Server::start(env!("CARGO_BIN_EXE_peer_tungstenite"), &[]);
    let url = format!("ws://{}/", server.addr);
    let r = loadgen(&[
        "fanout",
        "--url",
        &url,
        "--conns",
        "5",
        "--join-message",
        "join",
        "--trigger-message",
        "go",
        "--expect",
        "go",
        "--rounds",
        "1",
        "--timeout",
        "0.2",
        "--settle-ms",
        "50",
    ]);
    assert_eq!(num(&r, "missed"), 5.0, "{r:?}");
    assert_eq!(num(&r, "deliveries"), 0.0, "{r:?}");
}

/// The toy room server example (built by `cargo test` with the other examples).
fn room_server_bin() -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("examples").join("room_server");
    assert!(bin.exists(), "{} missing: run `cargo test`", bin.display());
    bin.to_string_lossy().into_owned()
}

#[test]
fn chat_subset_sessions_fanout_handshakes() {
    // Heartbeats every 100 ms: a 0.5 s hold sees about 5 per session.
    let server = Server::start(&room_server_bin(), &["--heartbeat-ms", "100"]);
    let url = format!("ws://{}/", server.addr);
    let pid = server.pid();
    let r = loadgen(&[
        "sessions",
        "--url",
        &url,
        "--pid",
        &pid,
        "--token",
        "t",
        "--conns",
        "20",
        "--hold",
        "0.5",
        "--settle-ms",
        "50",
    ]);
    assert_eq!(num(&r, "identified"), 20.0, "{r:?}");
    assert_eq!(num(&r, "closed"), 0.0, "{r:?}");
    assert_eq!(num(&r, "heartbeat_s"), 0.1, "{r:?}");
    let beats = num(&r, "hold_heartbeats");
    assert!((80.0..=120.0).contains(&beats), "{r:?}");
    assert!(num(&r, "hold_heartbeat_echoes") >= beats - 20.0, "{r:?}");
    assert!(r["hold_server_cpu"].is_number(), "{r:?}");

    let r = loadgen(&[
        "fanout",
        "--url",
        &url,
        "--pid",
        &pid,
        "--chat",
        "t",
        "--conns",
        "30",
        "--rounds",
        "3",
        "--settle-ms",
        "150",
    ]);
    assert_eq!(num(&r, "deliveries"), 90.0, "{r:?}");
    assert_eq!(num(&r, "missed"), 0.0, "{r:?}");
    assert_eq!(r["protocol"], "chat", "{r:?}");

    let r = loadgen(&[
        "upgrades",
        "--url",
        &url,
        "--chat",
        "t",
        "--conns-in-flight",
        "4",
        "--duration",
        "0.3",
        "--warmup",
        "0",
    ]);
    assert!(num(&r, "completed") > 0.0, "{r:?}");
    assert_eq!(num(&r, "failed"), 0.0, "{r:?}");
}
