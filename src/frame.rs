//! The WebSocket frames a client sends, read as the hub reads them: the reader's limits (frame
//! and message size, fragments per message), the close codes a session answers with, and
//! [`read_client_bytes`], which reads raw bytes as a session's reader does, without a socket or
//! a runtime (for the fuzz target `client_frame` and its corpus). Part of the wire contract, so
//! it builds without the `server` feature.

use tungstenite::protocol::frames_read_on_this_thread;

use crate::config::LimitsConfig;

/// Close codes the hub uses (docs/protocol.md, "Close codes").
pub mod close {
    /// Normal closure (the client said goodbye).
    pub const NORMAL: u16 = 1000;
    /// The hub is shutting down or draining.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy: oversized or binary frame, flooding.
    pub const POLICY: u16 = 1008;
    /// Slow consumer: the outgoing queue overflowed.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// A read error answered with 1008: a frame or message over the size limits, or a message in
/// more fragments than allowed.
pub(crate) fn is_policy_error(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Capacity(_))
}

/// The WebSocket reader configuration of a client connection under `limits`, as the upgrade in
/// `http.rs` sets it through axum (which takes `max_fragments` from the process default, see
/// [`set_fragment_limit`]).
pub fn reader_config(limits: &LimitsConfig) -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .max_frame_size(Some(limits.max_frame_bytes))
        .max_message_size(Some(limits.max_frame_bytes))
        .max_fragments(Some(limits.max_fragments))
}

/// Makes `limits.max_fragments` the limit of every WebSocket connection this process accepts
/// from now on. axum builds each connection's configuration from tungstenite's default and has no
/// setter for it, so the vendored tungstenite keeps it process-wide
/// (`vendor/tungstenite/LIVEHUB-PATCH.md`).
pub fn set_fragment_limit(limits: &LimitsConfig) {
    tungstenite::protocol::WebSocketConfig::set_default_max_fragments(Some(limits.max_fragments));
}

/// What the hub's WebSocket reader makes of the bytes a client sends after the upgrade
/// ([`read_client_bytes`]).
#[derive(Debug, Default)]
pub struct ClientBytes {
    /// Every message read, with the frames read for it (what a session charges the frame rate):
    /// its own, and those of an unfinished message read before it when it is a control frame.
    pub messages: Vec<(tungstenite::Message, u64)>,
    /// Frames read in all, the ones of an unfinished or refused message included.
    pub frames: u64,
    /// The error that ended reading, if it was not just the end of the bytes.
    pub error: Option<tungstenite::Error>,
    /// The close code the hub answers that error with: 1008 for the size and fragment limits,
    /// 1000 for any other error.
    pub close: Option<u16>,
}

impl ClientBytes {
    /// The fragment limit, when reading ended because a message exceeded it.
    pub fn refused_fragments(&self) -> Option<usize> {
        match self.error {
            Some(tungstenite::Error::Capacity(
                tungstenite::error::CapacityError::TooManyFragments { max },
            )) => Some(max),
            _ => None,
        }
    }
}

/// Reads `bytes` as a client's side of an open connection (masked frames) with the hub's
/// reader configuration ([`reader_config`]) and counts frames as a session does. For the fuzz
/// target `client_frame` and its corpus (fuzz/checks.rs).
pub fn read_client_bytes(limits: &LimitsConfig, bytes: &[u8]) -> ClientBytes {
    /// Reads `bytes`; writes (pongs, a close reply) go nowhere.
    struct Wire<'a>(&'a [u8]);
    impl std::io::Read for Wire<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl std::io::Write for Wire<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        Wire(bytes),
        tungstenite::protocol::Role::Server,
        Some(reader_config(limits)),
    );
    let mut out = ClientBytes::default();
    loop {
        let before = frames_read_on_this_thread();
        let read = ws.read();
        let frames = frames_read_on_this_thread().wrapping_sub(before);
        out.frames += frames;
        match read {
            Ok(msg) => out.messages.push((msg, frames)),
            Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                ),
            ) => return out,
            Err(e) => {
                // As `run` does: 1008 for the limits, else a normal close.
                out.close = Some(if is_policy_error(&e) {
                    close::POLICY
                } else {
                    close::NORMAL
                });
                out.error = Some(e);
                return out;
            }
        }
    }
}
