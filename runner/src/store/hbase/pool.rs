//! Connections to the Thrift1 server, and calls over them that survive
//! the server going away for a while.
//!
//! A small pool of our own (idle connections in a `Mutex<Vec<_>>`) rather
//! than r2d2 through thrift-pool: thrift-pool opens connections with no
//! connect or read timeout, and the `hbase-thrift` connection it pools
//! never reports itself broken, so r2d2 would hand a dead connection out
//! again after every failure unless it pinged the server (one extra round
//! trip per checkout). Here a connection that failed is simply dropped,
//! and how many are in use is bounded by the callers (one per apply lane).

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hbase_thrift::hbase::HbaseSyncClient;
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{ReadHalf, TBufferedReadTransport, TBufferedWriteTransport, WriteHalf};

use super::errors::{Failure, understand};

/// One connection: binary protocol over buffered transport, as HBase's
/// Thrift1 server speaks by default.
pub type Client = HbaseSyncClient<
    TBinaryInputProtocol<TBufferedReadTransport<ReadHalf<TcpStream>>>,
    TBinaryOutputProtocol<TBufferedWriteTransport<WriteHalf<TcpStream>>>,
>;

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// First wait between two attempts.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Socket buffers: a `mutateRowsTs` of 1000 rows is a few hundred KiB.
const BUFFER: usize = 64 * 1024;

/// Connections to one Thrift1 server.
pub struct Pool {
    store: String,
    addr: String,
    timeout: Duration,
    retry_for: Duration,
    size: usize,
    idle: Mutex<Vec<Client>>,
}

impl Pool {
    /// A pool of up to `size` idle connections to `addr`; nothing is
    /// opened until the first call.
    pub fn new(
        store: &str,
        addr: &str,
        timeout: Duration,
        retry_for: Duration,
        size: usize,
    ) -> Self {
        Pool {
            store: store.to_string(),
            addr: addr.to_string(),
            timeout,
            retry_for,
            size: size.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// How many connections may be in use at once.
    pub fn size(&self) -> usize {
        self.size
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Client>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `call` on a connection. A transient failure (see
    /// [`super::errors`]) is retried on a new connection, waiting 50 ms,
    /// then twice as long each time up to 2 s, until `retry_for` has
    /// passed; every retry is logged. `what` names the call in logs.
    pub fn call<T>(
        &self,
        what: &str,
        mut call: impl FnMut(&mut Client) -> thrift::Result<T>,
    ) -> Result<T, Failure> {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let failure = match self.take() {
                Ok(mut client) => match call(&mut client) {
                    Ok(value) => {
                        self.give_back(client);
                        return Ok(value);
                    }
                    Err(e) => {
                        let failure = understand(&e);
                        if failure.connection_ok {
                            self.give_back(client);
                        }
                        failure
                    }
                },
                Err(e) => Failure {
                    message: format!("cannot connect to {}: {e}", self.addr),
                    transient: true,
                    connection_ok: false,
                    table_not_found: false,
                },
            };
            if !failure.transient {
                return Err(failure);
            }
            // The other idle connections most likely broke the same way.
            self.idle().clear();
            if self.retry_for.is_zero() {
                return Err(failure);
            }
            if started.elapsed() + backoff > self.retry_for {
                return Err(Failure {
                    message: format!(
                        "{} (still failing after retrying for {})",
                        failure.message,
                        humantime::format_duration(self.retry_for)
                    ),
                    ..failure
                });
            }
            tracing::warn!(
                store = %self.store,
                call = what,
                attempt,
                retry_in_ms = backoff.as_millis() as u64,
                error = %failure.message,
                "HBase call failed; retrying on a new connection"
            );
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn take(&self) -> io::Result<Client> {
        if let Some(client) = self.idle().pop() {
            return Ok(client);
        }
        connect(&self.addr, self.timeout)
    }

    fn give_back(&self, client: Client) {
        let mut idle = self.idle();
        if idle.len() < self.size {
            idle.push(client);
        }
    }
}

/// Opens a connection, trying each address `addr` resolves to.
fn connect(addr: &str, timeout: Duration) -> io::Result<Client> {
    let mut last = None;
    for socket in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&socket, timeout) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(timeout))?;
                stream.set_write_timeout(Some(timeout))?;
                let write = stream.try_clone()?;
                return Ok(HbaseSyncClient::new(
                    TBinaryInputProtocol::new(
                        TBufferedReadTransport::with_capacity(BUFFER, ReadHalf::new(stream)),
                        true,
                    ),
                    TBinaryOutputProtocol::new(
                        TBufferedWriteTransport::with_capacity(BUFFER, WriteHalf::new(write)),
                        true,
                    ),
                ));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other(format!("`{addr}` resolves to no address"))))
}
