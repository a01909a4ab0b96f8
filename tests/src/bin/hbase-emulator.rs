//! Runs the HBase Thrift1 emulator until killed, to try the HBase
//! workflows by hand: `hbase-emulator --port 9090`.

use std::process::ExitCode;

use switchyard_tests::hbase::HbaseEmulator;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut port = 9090;
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            println!("usage: hbase-emulator [--port N]  (default 9090; 0 picks a free port)");
            return ExitCode::SUCCESS;
        }
        match (arg.as_str(), args.next().map(|v| v.parse::<u16>())) {
            ("--port", Some(Ok(p))) => port = p,
            _ => {
                eprintln!("usage: hbase-emulator [--port N]  (default 9090; 0 picks a free port)");
                return ExitCode::from(2);
            }
        }
    }
    match HbaseEmulator::start_on(port) {
        Ok(emulator) => {
            println!("HBase Thrift1 emulator listening on {}", emulator.addr());
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("error: cannot listen on 127.0.0.1:{port}: {e}");
            ExitCode::FAILURE
        }
    }
}
