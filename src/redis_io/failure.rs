//! What a failed Redis call means, decided once for every caller (issue 21): Redis could not
//! serve the call now (an outage, retry later), Redis refuses the hub (its credentials or ACL),
//! or Redis ran the call and said it is wrong (a Lua script that raised an error, a command on a
//! key of the wrong type, a reply the hub cannot read). Only the first two are `unavailable`
//! to a client; the last is a bug in the hub (or data it did not write): `internal`, logged as
//! an error and counted on `livehub_redis_script_errors_total` (see [`super::RedisIo::exec`]).

use redis::{ErrorKind, RedisError, ServerErrorKind};

use super::health::{self, Refusal};

/// The kind of a failed Redis call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Redis could not be asked, or cannot serve anyone now, and a later call may succeed:
    /// I/O errors, refused or dropped connections, timeouts, a cluster that is down or
    /// resharding (`CLUSTERDOWN`, `TRYAGAIN`, `MOVED`, `ASK`, `MASTERDOWN`, `READONLY` during a
    /// failover), a server loading its data (`LOADING`) or busy with a long script (`BUSY`),
    /// out of memory or refusing writes (`OOM`, `MISCONF`, `NOREPLICAS`), at its client limit,
    /// a script missing from its cache (`NOSCRIPT`: the script runner reloads it, and a retry
    /// does), and the client library's own connection failures.
    Outage,
    /// Redis answers but refuses the hub (`NOAUTH`, `WRONGPASS`, `NOPERM`): only the operator
    /// can fix it. `unavailable`, told in the hub's words.
    Refused(Refusal),
    /// Redis ran what the hub asked and answered that it is wrong: an error reply (`ERR` from a
    /// Lua script that raised an error, `WRONGTYPE`, any code a script returns, `CROSSSLOT`,
    /// `EXECABORT`), or a reply the hub could not read as the type it expected. Retrying does
    /// not help: it is a bug.
    Bug,
}

/// Error codes (the first word of an error reply) that mean Redis cannot serve now, beyond the
/// ones the redis crate names ([`ServerErrorKind`]).
const TRANSIENT_CODES: [&str; 5] = ["BUSY", "OOM", "MISCONF", "NOREPLICAS", "MASTERDOWN"];

/// What `e` means for the hub. Pure: the caller logs and counts.
pub fn classify(e: &RedisError) -> Failure {
    if let Some(r) = Refusal::of(e) {
        return Failure::Refused(r);
    }
    if health::is_outage(e) {
        return Failure::Outage;
    }
    match e.kind() {
        ErrorKind::Server(kind) => match kind {
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::NoScript => Failure::Outage,
            ServerErrorKind::NoPerm => Failure::Refused(Refusal::NoPermission),
            ServerErrorKind::ResponseError
                if e.detail()
                    .is_some_and(|d| d.starts_with("max number of clients reached")) =>
            {
                Failure::Outage
            }
            ServerErrorKind::ResponseError
            | ServerErrorKind::ExecAbort
            | ServerErrorKind::CrossSlot
            | ServerErrorKind::NotBusy
            | ServerErrorKind::NoSub => Failure::Bug,
            // A kind newer than this code: as every error was before issue 21, retry later.
            _ => Failure::Outage,
        },
        ErrorKind::Extension => match e.code() {
            Some(code) if TRANSIENT_CODES.contains(&code) => Failure::Outage,
            _ => Failure::Bug,
        },
        ErrorKind::UnexpectedReturnType | ErrorKind::Parse => Failure::Bug,
        // The client library's own state (a connection task gone, slots not covered, a
        // sentinel that names no master): not something Redis said about the hub's request.
        _ => Failure::Outage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error Redis's reply `line` (`-CODE detail`) becomes, as the client parses it.
    fn reply_error(line: &str) -> RedisError {
        redis::parse_redis_value(format!("-{line}\r\n").as_bytes())
            .and_then(redis::Value::extract_error)
            .expect_err("an error reply")
    }

    #[test]
    fn a_script_that_raises_an_error_is_a_bug() {
        for line in [
            // A Lua runtime error (Redis 7's wording).
            "ERR user_script:12: attempt to compare nil with number script: 7a1c, on @user_script:12.",
            // A command inside a script on a key of the wrong type.
            "WRONGTYPE Operation against a key holding the wrong kind of value script: 7a1c, on @user_script:20.",
            // An error a script returns itself (redis.error_reply).
            "BADDEAL the deal hash has no stock field",
            "ERR Error running script (call to f_7a1c): @user_script:1: Script attempted to access nonexistent global variable 'x'",
            "CROSSSLOT Keys in request don't hash to the same slot",
            "EXECABORT Transaction discarded because of previous errors.",
        ] {
            assert_eq!(classify(&reply_error(line)), Failure::Bug, "{line}");
        }
        let wrong_type: RedisError =
            (ErrorKind::UnexpectedReturnType, "expected a bulk string").into();
        assert_eq!(classify(&wrong_type), Failure::Bug);
        let response: RedisError = (
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "script error",
        )
            .into();
        assert_eq!(classify(&response), Failure::Bug);
        let extension: RedisError = (ErrorKind::Extension, "WRONGTYPE").into();
        assert_eq!(classify(&extension), Failure::Bug);
    }

    #[test]
    fn an_outage_or_a_busy_server_is_not_a_bug() {
        for line in [
            "LOADING Redis is loading the dataset in memory",
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "CLUSTERDOWN The cluster is down",
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            "READONLY You can't write against a read only replica.",
            "MOVED 3999 127.0.0.1:6381",
            "NOSCRIPT No matching script. Please use EVAL.",
            "OOM command not allowed when used memory > 'maxmemory'.",
            "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
            "ERR max number of clients reached",
        ] {
            assert_eq!(classify(&reply_error(line)), Failure::Outage, "{line}");
        }
        for kind in [
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe,
            std::io::ErrorKind::TimedOut,
        ] {
            let e: RedisError = std::io::Error::from(kind).into();
            assert_eq!(classify(&e), Failure::Outage, "{kind:?}");
        }
        let no_node: RedisError =
            (ErrorKind::ClusterConnectionNotFound, "No connections found").into();
        assert_eq!(classify(&no_node), Failure::Outage);
        let dropped: RedisError = (ErrorKind::Io, "Cluster connection task were dropped").into();
        assert_eq!(classify(&dropped), Failure::Outage);
        let task: RedisError = (
            ErrorKind::Client,
            "request wasn't handled due to internal failure",
        )
            .into();
        assert_eq!(classify(&task), Failure::Outage);
    }

    #[test]
    fn a_refusal_is_told_apart_from_both() {
        assert_eq!(
            classify(&reply_error("NOAUTH Authentication required.")),
            Failure::Refused(Refusal::NoPassword)
        );
        assert_eq!(
            classify(&reply_error(
                "NOPERM User app has no permissions to run the 'evalsha' command"
            )),
            Failure::Refused(Refusal::NoPermission)
        );
        let auth: RedisError = (ErrorKind::AuthenticationFailed, "failed").into();
        assert_eq!(classify(&auth), Failure::Refused(Refusal::WrongPassword));
    }
}
