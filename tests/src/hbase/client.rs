//! A Thrift1 client of the emulator (or of any HBase Thrift1 server):
//! binary protocol over buffered transport, as the runner's store speaks.

use std::net::TcpStream;
use std::time::Duration;

use hbase_thrift::hbase::HbaseSyncClient;
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::transport::{ReadHalf, TBufferedReadTransport, TBufferedWriteTransport, WriteHalf};

/// A connected client.
pub type Client = HbaseSyncClient<
    TBinaryInputProtocol<TBufferedReadTransport<ReadHalf<TcpStream>>>,
    TBinaryOutputProtocol<TBufferedWriteTransport<WriteHalf<TcpStream>>>,
>;

/// Connects to `addr` (`host:port`), giving up on a silent server after 10 s.
pub fn connect(addr: &str) -> thrift::Result<Client> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let write = stream.try_clone()?;
    Ok(HbaseSyncClient::new(
        TBinaryInputProtocol::new(TBufferedReadTransport::new(ReadHalf::new(stream)), true),
        TBinaryOutputProtocol::new(TBufferedWriteTransport::new(WriteHalf::new(write)), true),
    ))
}
