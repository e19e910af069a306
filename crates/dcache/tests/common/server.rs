//! A `redis-server` of a test's own, which the test can kill and restart.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The tests' error type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether `redis-server` can be run. Panics in CI when it cannot; elsewhere says loudly that
/// the test is skipped.
pub fn redis_server_available() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "redis-server is required in CI (apt-get install -y redis-server)"
    );
    eprintln!(
        "\n!!!!!!!! SKIPPING a Redis fault test: redis-server is not installed\n!!!!!!!! install \
         it with: apt-get install -y redis-server\n"
    );
    false
}

/// A free TCP port on `ip` (bound and released: another process could take it first, which
/// only makes the server fail to start, loudly).
pub fn free_port(ip: &str) -> Result<u16, BoxError> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// A `redis-server` child process; killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// The addresses it listens on.
    pub bind: Vec<String>,
    /// Its port.
    pub port: u16,
    /// Its working directory (for the append-only file).
    pub dir: PathBuf,
    /// Whether it persists every write (`appendonly yes`, `appendfsync always`).
    pub persistent: bool,
}

impl Server {
    /// Starts a server on `bind` (addresses) and `port`, with its files in `dir`; waits until
    /// it answers on the first address.
    pub fn start(
        bind: &[&str],
        port: u16,
        dir: &Path,
        persistent: bool,
    ) -> Result<Server, BoxError> {
        let mut server = Server {
            child: None,
            bind: bind.iter().map(|s| (*s).to_owned()).collect(),
            port,
            dir: dir.to_path_buf(),
            persistent,
        };
        server.restart()?;
        Ok(server)
    }

    /// The URL of the server as seen at `ip`.
    pub fn url_at(&self, ip: &str) -> String {
        format!("redis://{ip}:{}/", self.port)
    }

    /// The URL on its first address.
    pub fn url(&self) -> String {
        self.url_at(&self.bind[0])
    }

    /// Kills the server (SIGKILL: no shutdown save).
    pub fn kill(&mut self) -> Result<(), BoxError> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the server again (after [`kill`](Self::kill)).
    pub fn restart(&mut self) -> Result<(), BoxError> {
        self.kill()?;
        let appendonly = if self.persistent { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind"])
            .args(&self.bind)
            .args([
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                "always",
            ])
            .args(["--protected-mode", "no", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let ready = redis::Client::open(self.url().as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ready.is_ok() {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                return Err(format!("redis-server exited at start: {status}").into());
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err("redis-server did not answer within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.kill() {
            eprintln!("could not stop redis-server on port {}: {e}", self.port);
        }
    }
}
