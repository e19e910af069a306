//! Connections to the server: a small pool of blocking connections with timeouts.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use dcache_core::Result;
use redis::{Client, Connection, FromRedisValue, RedisError, RedisResult};

use crate::error::{breaks_connection, command_error, connect_error};

/// How connections are made and kept.
#[derive(Debug, Clone)]
pub(crate) struct PoolConfig {
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) max_idle: usize,
}

/// A pool of connections to one server. A connection is taken for one operation (a
/// `WATCH`/`MULTI`/`EXEC` transaction needs one connection throughout) and given back when
/// the operation succeeds; a connection that failed is dropped.
pub(crate) struct Pool {
    client: Client,
    address: String,
    config: PoolConfig,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("address", &self.address)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One connection for the length of an operation; knows whether the server has answered on
/// it yet.
pub(crate) struct Session {
    conn: Connection,
    answered: bool,
}

impl Session {
    /// Sends a command and reads its reply.
    pub(crate) fn query<T: FromRedisValue>(&mut self, cmd: &redis::Cmd) -> RedisResult<T> {
        let reply = cmd.query(&mut self.conn);
        self.answered |= reply.is_ok();
        reply
    }

    /// Sends a pipeline (a `MULTI`/`EXEC` transaction when atomic) and reads its replies.
    pub(crate) fn pipe<T: FromRedisValue>(&mut self, pipe: &redis::Pipeline) -> RedisResult<T> {
        let reply = pipe.query(&mut self.conn);
        self.answered |= reply.is_ok();
        reply
    }
}

impl Pool {
    /// A pool for `client` (nothing is connected yet).
    pub(crate) fn new(client: Client, config: PoolConfig) -> Pool {
        let info = client.get_connection_info();
        let address = info.addr().to_string();
        Pool {
            client,
            address,
            config,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The server's address, for messages.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    fn connect(&self) -> Result<Connection> {
        let timeout = self.config.connect_timeout;
        let conn = self
            .client
            .get_connection_with_timeout(timeout)
            .map_err(|e| connect_error(&self.address, timeout, e))?;
        let response = Some(self.config.response_timeout);
        conn.set_read_timeout(response)
            .and_then(|()| conn.set_write_timeout(response))
            .map_err(|e| connect_error(&self.address, timeout, e))?;
        Ok(conn)
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.config.max_idle {
            idle.push(conn);
        }
    }

    fn drop_idle(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Runs `op` on a connection. When the first command on a connection taken from the pool
    /// finds it broken (the server restarted, or closed it while idle), the pool's idle
    /// connections are dropped and `op` runs once more on a new connection: the server never
    /// answered on the old one, so `op` did nothing there. Any other failure is returned as
    /// [`Error::Backend`](dcache_core::Error::Backend), naming `what`.
    pub(crate) fn run<T>(
        &self,
        what: &str,
        mut op: impl FnMut(&mut Session) -> RedisResult<T>,
    ) -> Result<T> {
        let (conn, mut reused) = match self.take_idle() {
            Some(conn) => (conn, true),
            None => (self.connect()?, false),
        };
        let mut session = Session {
            conn,
            answered: false,
        };
        loop {
            match op(&mut session) {
                Ok(value) => {
                    self.give_back(session.conn);
                    return Ok(value);
                }
                Err(e) => {
                    let broken = breaks_connection(&e);
                    let stale = reused && !session.answered && broken && !e.is_timeout();
                    if stale {
                        self.drop_idle();
                        session = Session {
                            conn: self.connect()?,
                            answered: false,
                        };
                        reused = false;
                        continue;
                    }
                    if !broken {
                        // A server error leaves the connection usable, but a transaction may
                        // still be open on it: reset it before reuse.
                        let _: RedisResult<()> = redis::cmd("DISCARD").query(&mut session.conn);
                        let _: RedisResult<()> = redis::cmd("UNWATCH").query(&mut session.conn);
                        self.give_back(session.conn);
                    } else if !e.is_timeout() {
                        self.drop_idle();
                    }
                    return Err(self.error(what, e));
                }
            }
        }
    }

    /// A command error as a dcache error.
    pub(crate) fn error(&self, what: &str, e: RedisError) -> dcache_core::Error {
        command_error(&self.address, what, e)
    }
}
