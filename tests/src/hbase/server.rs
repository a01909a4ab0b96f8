//! The network side: a TCP listener on 127.0.0.1 with its own accept loop
//! and a thread per connection, each speaking Thrift's binary protocol
//! over buffered transport (what HBase's Thrift1 server speaks by
//! default). Thrift's own `TServer` cannot be stopped, and the emulator
//! must be able to go away and come back on the same port.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use hbase_thrift::hbase::HbaseSyncProcessor;
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::server::TProcessor;
use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport};

use super::handler::Handler;

/// The listener and the open connections.
pub struct Server {
    addr: SocketAddr,
    processor: Arc<HbaseSyncProcessor<Handler>>,
    net: Mutex<Net>,
}

#[derive(Default)]
struct Net {
    /// Bumped whenever the accept loop must end; a loop serves one generation.
    generation: u64,
    /// The running accept loop.
    accepting: Option<JoinHandle<()>>,
    /// Open connections, to shut down on pause and stop.
    connections: HashMap<u64, TcpStream>,
    next_connection: u64,
    stopped: bool,
}

impl Server {
    /// Listens on `127.0.0.1:port` (0: any free port) and starts accepting.
    pub fn start(port: u16, handler: Handler) -> io::Result<Arc<Server>> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let server = Arc::new(Server {
            addr: listener.local_addr()?,
            processor: Arc::new(HbaseSyncProcessor::new(handler)),
            net: Mutex::new(Net::default()),
        });
        server.accept_on(listener, 0);
        Ok(server)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn net(&self) -> MutexGuard<'_, Net> {
        self.net.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accepts on `listener` unless the server moved past `generation`
    /// (paused again or stopped) meanwhile.
    fn accept_on(self: &Arc<Self>, listener: TcpListener, generation: u64) {
        let mut net = self.net();
        if net.stopped || net.generation != generation {
            return;
        }
        let server = Arc::clone(self);
        net.accepting = Some(std::thread::spawn(move || {
            server.accept_loop(listener, generation)
        }));
    }

    fn accept_loop(self: Arc<Self>, listener: TcpListener, generation: u64) {
        for stream in listener.incoming() {
            let mut net = self.net();
            if net.generation != generation {
                // Woken to stop: dropping the listener refuses new connections.
                return;
            }
            let Ok(stream) = stream else { continue };
            let Ok(clone) = stream.try_clone() else {
                continue;
            };
            let id = net.next_connection;
            net.next_connection += 1;
            net.connections.insert(id, clone);
            drop(net);
            let server = Arc::clone(&self);
            std::thread::spawn(move || {
                serve(stream, &server.processor);
                server.net().connections.remove(&id);
            });
        }
    }

    /// Closes the listener and every open connection; returns once new
    /// connections are refused.
    fn go_offline(&self) {
        let accepting = {
            let mut net = self.net();
            net.generation += 1;
            net.accepting.take()
        };
        if let Some(accepting) = accepting {
            // Wake the accept loop so it sees the new generation.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = accepting.join();
        }
        for (_, conn) in self.net().connections.drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    /// Unreachable for `pause`, then back on the same port.
    pub fn pause(self: &Arc<Self>, pause: Duration) {
        self.go_offline();
        let generation = self.net().generation;
        let server = Arc::clone(self);
        std::thread::spawn(move || {
            std::thread::sleep(pause);
            // The port was ours a moment ago; retry briefly in case the
            // old socket has not quite let go.
            for _ in 0..100 {
                {
                    let net = server.net();
                    if net.stopped || net.generation != generation {
                        return;
                    }
                }
                match TcpListener::bind(server.addr) {
                    Ok(listener) => return server.accept_on(listener, generation),
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
            panic!(
                "the HBase emulator could not listen on {} again",
                server.addr
            );
        });
    }

    /// Stops for good.
    pub fn stop(&self) {
        self.net().stopped = true;
        self.go_offline();
    }
}

/// Serves one connection until the client leaves or the connection breaks.
fn serve(stream: TcpStream, processor: &HbaseSyncProcessor<Handler>) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let read = TBufferedReadTransport::with_capacity(64 * 1024, read_half);
    let write = TBufferedWriteTransport::with_capacity(64 * 1024, stream);
    // Not strict on input: HBase's server also accepts old unversioned messages.
    let mut input = TBinaryInputProtocol::new(read, false);
    let mut output = TBinaryOutputProtocol::new(write, true);
    // Handler errors go back as replies; an error here is the connection's.
    while processor.process(&mut input, &mut output).is_ok() {}
}
