//! How a `livehub` command fails: one error type, printed once on stderr as one plain line (the
//! hub's own `code: reason` for a refusal) and turned into the exit status. Nothing here ever
//! prints a backtrace or a Rust `Debug` dump, whatever `RUST_BACKTRACE` says: these are the
//! user's errors, not the program's.

use std::process::ExitCode;

use crate::config::ConfigError;

use super::lines::escape_controls;

/// Exit status when the hub refused the command, or the command failed for another reason.
pub const EXIT_FAILED: u8 = 1;
/// Exit status for a configuration the command cannot run with (a bad key or file, or
/// development settings on a public bind). `clap` uses it for bad arguments too.
pub const EXIT_CONFIG: u8 = 2;
/// Exit status when the hub could not be reached or did not answer in time: worth retrying.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Why a command failed, in words for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The hub refused: its protocol code (`unauthorized`, `conflict`, ...) and its own reason.
    #[error("{code}: {message}")]
    Refused { code: String, message: String },
    /// The hub could not be reached, or stopped answering.
    #[error("cannot reach the hub at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The configuration could not be loaded; the message names the key and where it was set.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An argument the parser could not check (an id's form, a URL scheme).
    #[error("{0}")]
    Usage(String),
    /// Anything else, with its causes joined by `: `.
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}

impl CliError {
    /// A refusal with the hub's `code` and `message`; control characters in the message (it
    /// came over the network) are written out visibly.
    pub fn refused(code: impl Into<String>, message: &str) -> Self {
        CliError::Refused {
            code: code.into(),
            message: escape_controls(message).into_owned(),
        }
    }

    /// The refusal an HTTP answer carries: the protocol's `{"error":{"code","message"}}` body
    /// when it has one (every refusal from the hub does), else the status line and the start
    /// of the body (a proxy's page, say).
    pub fn from_http(status: u16, reason: Option<&str>, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Body {
            error: Inner,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            code: String,
            message: String,
        }
        if let Ok(Body { error }) = serde_json::from_slice::<Body>(body) {
            return CliError::refused(error.code, &error.message);
        }
        let text = String::from_utf8_lossy(body);
        let first = text.lines().next().unwrap_or("").trim();
        let first: String = first.chars().take(200).collect();
        let status_line = match reason {
            Some(r) => format!("HTTP {status} {r}"),
            None => format!("HTTP {status}"),
        };
        let message = if first.is_empty() {
            "the hub (or a proxy in front of it) answered without a reason".to_owned()
        } else {
            first
        };
        CliError::refused(status_line, &message)
    }

    /// The exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Refused { .. } | CliError::Failed(_) => EXIT_FAILED,
            CliError::Config(_) | CliError::Usage(_) => EXIT_CONFIG,
            CliError::Unreachable { .. } => EXIT_UNREACHABLE,
        }
    }

    /// Prints the error on stderr (a refusal as `code: reason`, anything else after
    /// `livehub: `) and returns the exit status.
    pub fn report(&self) -> ExitCode {
        match self {
            CliError::Refused { .. } => eprintln!("{self}"),
            _ => eprintln!("livehub: {self}"),
        }
        ExitCode::from(self.exit_code())
    }
}

/// A network error's reason in a few lowercase words ("connection refused"), without the OS
/// error number.
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::TimedOut => "timed out".into(),
        K::HostUnreachable => "host unreachable".into(),
        K::NetworkUnreachable => "network unreachable".into(),
        K::AddrNotAvailable => "address not available".into(),
        K::UnexpectedEof => "the connection closed early".into(),
        K::BrokenPipe => "the connection broke".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_owned(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_refusal_reads_the_hubs_code_and_reason() {
        let body = br#"{"error":{"code":"unauthorized","message":"token expired"}}"#;
        let e = CliError::from_http(401, Some("Unauthorized"), body);
        assert_eq!(e.to_string(), "unauthorized: token expired");
        assert_eq!(e.exit_code(), EXIT_FAILED);
        let e = CliError::from_http(502, Some("Bad Gateway"), b"<html>oops\n</html>");
        assert_eq!(e.to_string(), "HTTP 502 Bad Gateway: <html>oops");
        let e = CliError::from_http(403, None, b"");
        assert!(e.to_string().starts_with("HTTP 403: "), "{e}");
    }

    #[test]
    fn a_refusal_cannot_forge_terminal_output() {
        let e = CliError::refused("conflict", "no\n\u{1b}[2Jway");
        assert_eq!(e.to_string(), "conflict: no\\n\\u{1b}[2Jway");
    }

    #[test]
    fn network_reasons_are_plain_words() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_reason(&e), "connection refused");
        let e = std::io::Error::other("weird (os error 99)");
        assert_eq!(io_reason(&e), "weird");
    }
}
