//! `redis::RedisError` as [`dcache_core::Error::Backend`].

use dcache_core::{BackendErrorKind, Error};
use redis::{ErrorKind, RedisError};

/// The backend name in errors.
pub(crate) const BACKEND: &str = "redis";

/// What failed where: the server address and the operation.
pub(crate) fn command_error(address: &str, what: &str, e: RedisError) -> Error {
    let (kind, check) = classify(&e);
    Error::Backend {
        backend: BACKEND,
        kind,
        message: format!("{what} on {address} failed"),
        check: check.to_owned(),
        source: Box::new(e),
    }
}

/// A failed connection attempt.
pub(crate) fn connect_error(address: &str, timeout: std::time::Duration, e: RedisError) -> Error {
    let kind = if e.kind() == ErrorKind::AuthenticationFailed {
        BackendErrorKind::Other
    } else if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() {
        BackendErrorKind::Unreachable
    } else {
        classify(&e).0
    };
    let check = if kind == BackendErrorKind::Unreachable {
        format!(
            "no connection within the connect timeout ({timeout:?}): check that the server runs, \
             that the address and port are right, and that no firewall or network partition \
             stands between; raise `connect_timeout` for a slow network"
        )
    } else {
        "check the URL's user, password and database number".to_owned()
    };
    Error::Backend {
        backend: BACKEND,
        kind,
        message: format!("connecting to {address}"),
        check,
        source: Box::new(e),
    }
}

/// An error of our own (a transaction that kept conflicting, a bad reply).
pub(crate) fn other(address: &str, message: String, check: &str) -> Error {
    Error::Backend {
        backend: BACKEND,
        kind: BackendErrorKind::Other,
        message: format!("{message} (server {address})"),
        check: check.to_owned(),
        source: message.into(),
    }
}

/// The kind of a command's error and what to check.
fn classify(e: &RedisError) -> (BackendErrorKind, &'static str) {
    if e.is_timeout() {
        (
            BackendErrorKind::Timeout,
            "the server did not answer within the response timeout (it may or may not have \
             applied the command): check the server's load and the network, or raise \
             `response_timeout`",
        )
    } else if e.is_connection_refusal() {
        (
            BackendErrorKind::Unreachable,
            "check that the server runs and listens on this address",
        )
    } else if e.is_connection_dropped() || e.is_io_error() {
        (
            BackendErrorKind::ConnectionLost,
            "the connection broke (the server restarted or the network failed); the command \
             may or may not have been applied: retry once the server is back",
        )
    } else if matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension) {
        (
            BackendErrorKind::Server,
            "the server refused the command: check its log, its memory limit (`maxmemory`), \
             and that it is a writable primary running Redis 6.2+ or Valkey",
        )
    } else {
        (
            BackendErrorKind::Other,
            "check the server version (Redis 6.2+ or Valkey) and that nothing else writes \
             under this store's key prefix",
        )
    }
}

/// True for errors after which the connection must not be reused.
pub(crate) fn breaks_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}
