//! The example binaries as subprocesses, for the end-to-end tests (`support_chat`,
//! `support_music`, `support_bad`): built once in release mode, started on a free port,
//! killed when dropped; and a tungstenite client's upgrade with bounded reads and writes.

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::WebSocket;

/// How long a started example may take to print `listening on ADDR`.
const START: Duration = Duration::from_secs(10);

/// Release builds of the examples, by name, as built so far by this test process.
fn built() -> &'static Mutex<HashMap<String, PathBuf>> {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    BUILT.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Builds the release examples `names` with one `cargo build` (the ones not built yet by
/// this process) and returns the executable of each.
pub fn build_examples(names: &[&str]) -> HashMap<String, PathBuf> {
    let mut built = built().lock().unwrap_or_else(|p| p.into_inner());
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !built.contains_key(*n))
        .collect();
    if !missing.is_empty() {
        let mut args = vec![
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ];
        for name in &missing {
            args.extend(["--example", name]);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "cargo build --release {missing:?} failed"
        );
        let artifacts = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact")
            .filter_map(|m| {
                let exe = m["executable"].as_str()?;
                Some((m["target"]["name"].as_str()?.to_owned(), PathBuf::from(exe)))
            })
            .collect::<Vec<_>>();
        built.extend(artifacts);
    }
    names
        .iter()
        .map(|&n| {
            let exe = built
                .get(n)
                .unwrap_or_else(|| panic!("no executable for {n}"));
            (n.to_owned(), exe.clone())
        })
        .collect()
}

/// The example `name`'s release binary: the path in the environment variable `env` if it
/// is set, else built once per test process.
pub fn example_binary(name: &str, env: &str) -> PathBuf {
    match std::env::var_os(env) {
        Some(path) => PathBuf::from(path),
        None => build_examples(&[name]).remove(name).expect("built"),
    }
}

/// An example server run as a subprocess; killed (if still running) when dropped. Its
/// stderr is read to the end (so that the pipe never fills) and kept.
pub struct Example {
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Example {
    /// Spawns `binary` with `args`: the running server once it prints `listening on ADDR`,
    /// or what it wrote to stderr if it did not start.
    pub fn spawn(binary: PathBuf, args: &[&str]) -> Result<Example, String> {
        let mut child = Command::new(&binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let keep = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Kept before the address is reported: once `spawn` returns, `log` has
                // every line up to `listening on`.
                let addr = line
                    .strip_prefix("listening on ")
                    .map(|a| a.trim().to_owned());
                keep.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        let mut example = Example {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            stderr: lines,
        };
        match rx.recv_timeout(START) {
            Ok(addr) => {
                example.addr = addr.parse().expect("a socket address after `listening on`");
                Ok(example)
            }
            // Dropping it kills it.
            Err(_) => Err(example.log()),
        }
    }

    /// [`Example::spawn`], panicking if it does not start.
    pub fn start(binary: PathBuf, args: &[&str]) -> Example {
        let name = binary.display().to_string();
        Example::spawn(binary, args)
            .unwrap_or_else(|log| panic!("{name} did not start within {START:?}:\n{log}"))
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    /// Sends `sig` (`-TERM`, `-INT`, `-STOP`...) with `kill`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} failed");
    }

    /// Its exit status, if it exits within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A WebSocket upgrade on `ws://addr/path` with `headers`, its socket's reads and writes
/// bounded by `timeout`: the client, or the status of the refusal. Panics on any other
/// failure.
pub fn upgrade(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<WebSocket<TcpStream>, u16> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(timeout))
        .expect("write timeout");
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("name");
        request
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    match tungstenite::client::client(request, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("WebSocket handshake: {e}"),
    }
}
