//! SIGINT/SIGTERM → graceful shutdown, shared by the example servers.

use postern::Remote;
use std::io::Write;

/// Starts a thread that turns the first SIGINT or SIGTERM into a graceful shutdown of the
/// reactor behind `remote`, and a second one into an immediate exit.
pub fn shutdown_on_signals<C: Send + 'static>(remote: Remote<C>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "cannot watch signals: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        let mut seen = 0;
        for _ in signals.forever() {
            seen += 1;
            if seen == 1 {
                // Never panic here (a closed stderr): the shutdown must happen.
                let _ = writeln!(std::io::stderr(), "shutting down");
                remote.shutdown();
            } else {
                std::process::exit(130);
            }
        }
    });
}
