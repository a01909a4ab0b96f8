//! The `runner` binary: parses arguments, sets up logging and Ctrl-C, and
//! hands over to the library. Exit codes are documented in `cli`.

use std::process::ExitCode;

use clap::Parser;
use switchyard_runner::cli::{self, Cli};
use switchyard_runner::engine::{Cancel, Signal};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (_, 0) => "switchyard_runner=info,warn",
        (_, 1) => "switchyard_runner=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(switchyard_runner::report::progress::LogWriter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_FAILED);
        }
    };
    let cancel = Cancel::default();
    let on_signal = cancel.clone();
    runtime.spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            eprintln!(
                "warning: cannot listen for Ctrl-C and SIGTERM; they stop the runner at once"
            );
            return;
        };
        let mut first = true;
        loop {
            let got = tokio::select! {
                Some(()) = int.recv() => Signal::Interrupt,
                Some(()) = term.recv() => Signal::Terminate,
                else => return,
            };
            if !first {
                std::process::exit(i32::from(got.exit_code()));
            }
            first = false;
            eprintln!(
                "stopping: finishing what is in flight and saving progress (Ctrl-C again to abort)"
            );
            on_signal.signal(got);
        }
    });
    let code = runtime.block_on(async move {
        tokio::task::spawn_blocking(move || cli::run(cli, cancel))
            .await
            .unwrap_or(ExitCode::from(cli::EXIT_FAILED))
    });
    runtime.shutdown_background();
    code
}
