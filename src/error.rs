//! How a failure ends the program: one trait that every error type of a command implements, so
//! `main` maps it to an exit code without knowing the types — 2 for a problem the user fixes
//! (configuration, arguments, input data), 1 for a runtime failure.

/// An error that knows whether the user can fix it.
pub trait Failure: std::error::Error + Send + Sync + 'static {
    /// True when the fix is in the configuration, the arguments or the input data (exit 2).
    fn is_user_error(&self) -> bool;

    /// The process exit code for this failure.
    fn exit_code(&self) -> u8 {
        if self.is_user_error() {
            2
        } else {
            1
        }
    }
}

/// Any command failure, boxed (what `main` receives).
pub type BoxFailure = Box<dyn Failure>;

impl<E: Failure> From<E> for BoxFailure {
    fn from(e: E) -> Self {
        Box::new(e)
    }
}

/// A runtime failure with a message only (exit 1): for the few places where the error is
/// neither the user's nor worth a type of its own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Runtime(pub String);

impl Failure for Runtime {
    fn is_user_error(&self) -> bool {
        false
    }
}

/// A problem with the command-line arguments found after parsing (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadArgs(pub String);

impl Failure for BadArgs {
    fn is_user_error(&self) -> bool {
        true
    }
}

// Which failures are the user's to fix, for the error types of config, the file IO and the
// commands: kept together as the CLI's exit policy, so those modules need not know about exit
// codes. Types made for the flow seam (FlowError, DeliveryError, ...) implement it beside their
// definition.

impl Failure for crate::io::parquet::SourceError {
    fn is_user_error(&self) -> bool {
        self.is_bad_input()
    }
}

impl Failure for crate::io::parquet::SinkError {
    fn is_user_error(&self) -> bool {
        false
    }
}

impl Failure for crate::config::ConfigError {
    fn is_user_error(&self) -> bool {
        true
    }
}

impl Failure for crate::run::gen::GenError {
    fn is_user_error(&self) -> bool {
        matches!(self, crate::run::gen::GenError::InvalidOptions { .. })
    }
}

impl Failure for crate::run::grr::GrrRunError {
    fn is_user_error(&self) -> bool {
        self.is_bad_input()
    }
}

impl Failure for crate::run::produce::ProduceError {
    fn is_user_error(&self) -> bool {
        self.is_bad_input()
    }
}

impl Failure for crate::run::daemon::DaemonError {
    fn is_user_error(&self) -> bool {
        self.is_config()
    }
}

impl Failure for crate::run::merge::MergeError {
    fn is_user_error(&self) -> bool {
        self.is_bad_input()
    }
}

impl Failure for crate::run::demo::DemoError {
    fn is_user_error(&self) -> bool {
        use crate::run::demo::DemoError;
        match self {
            DemoError::Gen(e) => e.is_user_error(),
            DemoError::Config(e) => e.is_user_error(),
            DemoError::Backtest(e) => e.is_user_error(),
        }
    }
}
