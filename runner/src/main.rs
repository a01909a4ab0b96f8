//! The `runner` binary: parses arguments, sets up logging and Ctrl-C, and
//! hands over to the library. Exit codes are documented in `cli`.

use std::process::ExitCode;

use clap::Parser;
use switchyard_runner::cli::{self, Cli};
use switchyard_runner::engine::Cancel;

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
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping: finishing the batches in flight and saving progress (Ctrl-C again to abort)");
            on_signal.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(cli::EXIT_INTERRUPTED));
            }
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
