//! How the daemon stays up, and goes down when it must: a failed partition waits and retries
//! ([`Retry`]), a dead worker becomes a fatal error ([`supervised`]), and SIGTERM/SIGINT are
//! listened for from the very start ([`Shutdown`]).

use std::time::{Duration, Instant};

use super::DaemonError;

/// A partition that keeps failing this long (broker unreachable, deliveries refused) stops the
/// daemon; shorter outages are waited out by rewinding and retrying.
pub(super) const RETRY_FOR: Duration = Duration::from_secs(300);
/// A run that lasted this long before failing starts the retry budget afresh.
pub(super) const RETRY_RESET: Duration = Duration::from_secs(60);

/// Waits between attempts to restart a failed partition: 0.5 s doubling to 30 s, for at most
/// [`RETRY_FOR`] of consecutive failures.
#[derive(Default)]
pub(super) struct Retry {
    since: Option<Instant>,
    wait: Duration,
}

impl Retry {
    /// Logs `err`, sleeps, and says whether to try again.
    pub(super) fn again(&mut self, err: &DaemonError) -> bool {
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() > RETRY_FOR {
            return false;
        }
        self.wait = (self.wait * 2).clamp(Duration::from_millis(500), Duration::from_secs(30));
        tracing::warn!(
            "{err}; restoring the partition from its last checkpoint in {:?} (failing for {:?})",
            self.wait,
            since.elapsed()
        );
        std::thread::sleep(self.wait);
        true
    }
}

/// SIGTERM and SIGINT, listened for from the start of [`run`](super::run) so that one arriving early is
/// kept until the main loop asks.
pub(super) struct Shutdown {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Shutdown {
    pub(super) fn install() -> Shutdown {
        Shutdown {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("install the SIGTERM handler"),
        }
    }

    /// Resolves on SIGTERM (also one received before this call) or SIGINT.
    pub(super) async fn requested(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs `f`, turning a panic into [`DaemonError::Panicked`]: a worker that dies must stop the
/// daemon (exit 1, restarted by its service manager, resuming from the last checkpoint), never
/// leave its partition silently unprocessed while the others go on.
pub(super) fn supervised(
    what: &str,
    f: impl FnOnce() -> Result<(), DaemonError>,
) -> Result<(), DaemonError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            Err(DaemonError::Panicked {
                what: what.to_string(),
                message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_worker_becomes_a_fatal_error_naming_it() {
        let r = supervised("partition worker in/3", || panic!("index out of bounds"));
        match r {
            Err(e @ DaemonError::Panicked { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("partition worker in/3"), "{msg}");
                assert!(msg.contains("index out of bounds"), "{msg}");
                assert!(!e.is_config(), "a panic is a runtime failure (exit 1)");
            }
            other => panic!("{other:?}"),
        }
        let owned = supervised("w", || panic!("{} items", 3));
        assert!(owned.unwrap_err().to_string().contains("3 items"));
        assert!(supervised("w", || Ok(())).is_ok());
    }
}
