//! The `runner` command line.
//!
//! Exit codes: 0 done (or nothing left to do), 1 a step failed, 2 bad
//! usage or an invalid workflow, 3 a gate failed (too many differences),
//! 130 interrupted by Ctrl-C, 143 by SIGTERM (progress is saved; `exec`
//! resumes).
//!
//! What a command prints beyond a line or two has its own file: `status`
//! (`runner status`) and `summary` (the table at the end of `exec`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod rows;
mod status;
mod summary;

use crate::engine::{self, Cancel, EngineError, ExecOptions, ExecResult};
use crate::steps::StepError;
use crate::workflow::{self, LoadOptions, Workflow, WorkflowError};

/// Runs zero-downtime, blue-green migrations of event-sourced read models.
#[derive(Debug, Parser)]
#[command(
    name = "runner",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 done (or nothing left to do), 1 a step failed, 2 bad usage or an invalid workflow, 3 a gate failed, 130 interrupted by Ctrl-C and 143 by SIGTERM (progress is saved; `exec` resumes)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors in the log.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workflow, or resume it where the last run stopped.
    Exec {
        #[command(flatten)]
        file: FileArgs,
        /// Forget saved state (and anything kept in the state folder) first.
        #[arg(long)]
        fresh: bool,
        /// No progress bars.
        #[arg(long)]
        no_progress: bool,
        /// Run this step and every later one again, even if done (after
        /// fixing a plugin or a store); earlier steps are not run again.
        #[arg(long, value_name = "STEP")]
        from: Option<String>,
    },
    /// Check a workflow without touching any system (with `--connect`,
    /// also ask every source, store and plugin it uses, writing nothing).
    Validate {
        #[command(flatten)]
        file: FileArgs,
        /// Also run the preflight: brokers, topics, consumer groups, Thrift
        /// servers, tables and plugins, as `exec` does before it starts.
        #[arg(long)]
        connect: bool,
    },
    /// Show the steps in order and what each will do, touching nothing.
    Plan {
        #[command(flatten)]
        file: FileArgs,
        /// Print the workflow as the runner reads it instead: the templates
        /// it extends merged in, variables expanded, each value with the
        /// file and line it comes from.
        #[arg(long)]
        resolved: bool,
    },
    /// Show where a workflow stands.
    Status {
        #[command(flatten)]
        file: FileArgs,
        /// Print the raw state as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the workflow's `[router]` alone, in the foreground, until
    /// Ctrl-C: for putting it in front of the read-apis yourself. It
    /// follows the routing state that `runner exec`, the admin endpoint
    /// and `runner rollback` change.
    Route {
        #[command(flatten)]
        file: FileArgs,
    },
    /// Serve one of the workflow's stores as an example read-api (rows as
    /// JSON, the store's watermark in `x-switchyard-watermark`), in the
    /// foreground until Ctrl-C.
    ServeStore {
        #[command(flatten)]
        file: FileArgs,
        /// The store's name in the workflow.
        store: String,
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: std::net::SocketAddr,
        /// A cell not to serve, as `family:qualifier` (again for more).
        #[arg(long, value_parser = parse_cell)]
        hide: Vec<(String, Vec<u8>)>,
    },
    /// Print a store's rows as it serves them: visible cells only, each
    /// with its version, for any kind of store. Without a table, its
    /// tables. Keys are text, or `hex:…` for bytes.
    Rows {
        #[command(flatten)]
        file: FileArgs,
        /// The store's name in the workflow.
        store: String,
        /// The table.
        table: Option<String>,
        /// Only this row key (again for more).
        #[arg(long, value_parser = rows::parse_key, conflicts_with_all = ["from", "to"])]
        key: Vec<rows::Key>,
        /// From this row key on (included).
        #[arg(long, value_parser = rows::parse_key)]
        from: Option<rows::Key>,
        /// Up to this row key (not included, as an HBase scan).
        #[arg(long, value_parser = rows::parse_key)]
        to: Option<rows::Key>,
        /// As of a version: milliseconds, an RFC 3339 time, `latest`, or
        /// `watermark - 10m` (the store's own watermark).
        #[arg(long)]
        as_of: Option<String>,
        /// At most this many rows; 0 for all.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One JSON object a row (keys, qualifiers and values as text when
        /// UTF-8, else as `…_hex`).
        #[arg(long)]
        json: bool,
    },
    /// Print the latest report of a compare step again (Markdown, or the
    /// JSON with `--json`): the counts table by table and the first
    /// differences cell by cell.
    Report {
        #[command(flatten)]
        file: FileArgs,
        /// The compare step (default: the one that reported last).
        step: Option<String>,
        /// The JSON report instead.
        #[arg(long)]
        json: bool,
    },
    /// Send every read to blue at once: every router of the workflow
    /// follows within a second, whether `runner exec` runs it or
    /// `runner route`.
    Rollback {
        #[command(flatten)]
        file: FileArgs,
        /// Why, kept in the routing state and shown by `runner status`.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Set green's share of shifted reads by hand, ending a rollback or a
    /// cutover (as the admin endpoint's `POST /routing` does); `0` keeps
    /// every read on blue and lets a ramp start again.
    Share {
        #[command(flatten)]
        file: FileArgs,
        /// Percent of shifted reads to green, 0 to 100.
        percent: f64,
        /// Why, kept in the routing state and shown by `runner status`.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Answer a step paused on an inconclusive stage: `pass` counts the
    /// stage as passed and the step goes on; `again` holds it again.
    Resume {
        #[command(flatten)]
        file: FileArgs,
        /// `pass` or `again`.
        #[arg(value_parser = ["pass", "again"])]
        answer: String,
    },
    /// Write a deterministic sample: `chat`, an event log; `chat-reads`,
    /// a request log of reads of its rooms for the `traffic` step.
    Sample {
        /// Which sample.
        #[arg(value_parser = ["chat", "chat-reads"])]
        kind: String,
        /// Number of events (of requests, for `chat-reads`).
        #[arg(long, default_value_t = 100_000)]
        events: u64,
        /// Random seed.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Partitions (1 to 1024).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
        partitions: u64,
        /// Output file (NDJSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Plugin tools.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

/// `runner plugin …`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Build a plugin crate for wasm32-wasip2; print the .wasm and its sha256.
    Build {
        /// The plugin crate's folder.
        dir: PathBuf,
    },
    /// Print the sha256 of a component, for `sha256 = "…"` pins.
    Hash {
        /// The .wasm file.
        file: PathBuf,
    },
    /// Remove the compiled plugins kept on disk (the next run compiles
    /// them again).
    Clean,
}

/// The workflow file and how to read it.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// The workflow file.
    pub file: PathBuf,
    /// Override a variable: `--var name=value` (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Keep state in this folder instead of `.switchyard/NAME` beside the file.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))
}

impl FileArgs {
    fn options(&self) -> LoadOptions {
        LoadOptions {
            overrides: self.vars.clone(),
            state_dir: self.state.clone(),
        }
    }

    fn load(&self) -> Result<Workflow, WorkflowError> {
        workflow::load(&self.file, &self.options())
    }

    fn resolve(&self) -> Result<String, WorkflowError> {
        workflow::resolve(&self.file, &self.options())
    }
}

/// Exit code: a step failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or an invalid workflow.
pub const EXIT_INVALID: u8 = 2;
/// Exit code: a gate failed.
pub const EXIT_GATE: u8 = 3;
/// Exit code: interrupted.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs a parsed command line; `cancel` is set on Ctrl-C.
pub fn run(cli: Cli, cancel: Cancel) -> ExitCode {
    match cli.command {
        Command::Validate { file, connect } => match file.load() {
            Ok(w) => {
                println!(
                    "{} is valid: {} steps, {} sources, {} stores, {} plugins",
                    file.file.display(),
                    w.steps.len(),
                    w.sources.len(),
                    w.stores.len(),
                    w.plugins.len()
                );
                if connect {
                    preflight(&w, cancel)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => invalid(e),
        },
        // Printed even when the sections are wrong: that is when it helps.
        Command::Plan {
            file,
            resolved: true,
        } => match file.resolve() {
            Ok(text) => {
                print!("{text}");
                match file.load() {
                    Ok(_) => ExitCode::SUCCESS,
                    Err(e) => invalid(e),
                }
            }
            Err(e) => invalid(e),
        },
        Command::Plan { file, .. } => match file.load() {
            Ok(w) => {
                print!("{}", workflow::plan::text(&w));
                ExitCode::SUCCESS
            }
            Err(e) => invalid(e),
        },
        Command::Route { file } => match file.load() {
            Ok(w) => route(&w, cancel),
            Err(e) => invalid(e),
        },
        Command::ServeStore {
            file,
            store,
            listen,
            hide,
        } => match file.load() {
            Ok(w) => serve_store(&w, &store, listen, hide, cancel),
            Err(e) => invalid(e),
        },
        Command::Rows {
            file,
            store,
            table,
            key,
            from,
            to,
            as_of,
            limit,
            json,
        } => match file.load() {
            Ok(w) => {
                let query = rows::Query {
                    keys: key.into_iter().map(|k| k.0).collect(),
                    from: from.map(|k| k.0),
                    to: to.map(|k| k.0),
                    as_of,
                    limit,
                };
                print_rows(&w, &store, table.as_deref(), &query, json)
            }
            Err(e) => invalid(e),
        },
        Command::Report { file, step, json } => match file.load() {
            Ok(w) => print_report(&w, step.as_deref(), json),
            Err(e) => invalid(e),
        },
        Command::Rollback { file, reason } => match file.load() {
            Ok(w) => rollback(&w, reason.as_deref()),
            Err(e) => invalid(e),
        },
        Command::Share {
            file,
            percent,
            reason,
        } => match file.load() {
            Ok(w) => share(&w, percent, reason.as_deref()),
            Err(e) => invalid(e),
        },
        Command::Resume { file, answer } => match file.load() {
            Ok(w) => resume(&w, &answer),
            Err(e) => invalid(e),
        },
        Command::Status { file, json } => match file.load() {
            Ok(w) => status(&w, json),
            Err(e) => invalid(e),
        },
        Command::Exec {
            file,
            fresh,
            no_progress,
            from,
        } => {
            let w = match file.load() {
                Ok(w) => w,
                Err(e) => return invalid(e),
            };
            let options = ExecOptions {
                fresh,
                cancel,
                progress: !no_progress,
                from,
            };
            match engine::exec(w, &options) {
                Ok(ExecResult::Completed(report)) => {
                    print!("{}", summary::render(&report));
                    ExitCode::SUCCESS
                }
                Ok(ExecResult::AlreadyComplete { finished_at_ms }) => {
                    let when = finished_at_ms
                        .map(|ms| {
                            humantime::format_rfc3339_seconds(
                                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
                            )
                            .to_string()
                        })
                        .unwrap_or_else(|| "earlier".into());
                    println!(
                        "workflow already completed ({when}); nothing to do. Use `--fresh` to run it again from the start."
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(match &e {
                        EngineError::Step { source, .. } => match **source {
                            StepError::Gate(_) => EXIT_GATE,
                            StepError::Interrupted => options
                                .cancel
                                .reason()
                                .map_or(EXIT_INTERRUPTED, |s| s.exit_code()),
                            _ => EXIT_FAILED,
                        },
                        // Pointed at a folder that is not this workflow's.
                        EngineError::State(crate::state::StateError::NotOurs { .. }) => {
                            EXIT_INVALID
                        }
                        EngineError::Usage(_) => EXIT_INVALID,
                        _ => EXIT_FAILED,
                    })
                }
            }
        }
        Command::Sample {
            kind,
            events,
            seed,
            partitions,
            out,
        } => {
            let sample = crate::sample::ChatSample {
                events,
                seed,
                partitions: partitions.max(1),
                ..Default::default()
            };
            if kind == "chat-reads" {
                return match crate::sample::write_chat_reads(&sample, events, &out) {
                    Ok(()) => {
                        println!("wrote {events} chat reads to {}", out.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: cannot write `{}`: {e}", out.display());
                        ExitCode::from(EXIT_FAILED)
                    }
                };
            }
            match crate::sample::write_chat(&sample, &out) {
                Ok((p, e, d)) => {
                    println!(
                        "wrote {events} chat events to {} ({p} posted, {e} edited, {d} deleted)",
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot write `{}`: {e}", out.display());
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
        Command::Plugin(PluginCommand::Build { dir }) => {
            // `.` and `..` have no name of their own: name the folder they are.
            let name = dir
                .canonicalize()
                .unwrap_or_else(|_| dir.clone())
                .file_name()
                .map_or("plugin".into(), |n| n.to_string_lossy().into_owned());
            match crate::plugin::load::build_crate(&name, &dir).and_then(|path| {
                crate::plugin::load::component_bytes(
                    &name,
                    &crate::plugin::PluginSource::Wasm(path),
                    None,
                )
            }) {
                Ok((bytes, path)) => {
                    println!(
                        "{}\nsha256 = \"{}\"",
                        path.display(),
                        crate::plugin::load::sha256_hex(&bytes)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
        Command::Plugin(PluginCommand::Clean) => {
            let Some(cache) = crate::plugin::cache::CompiledCache::default_folder() else {
                println!("no cache of compiled plugins (SWITCHYARD_PLUGIN_CACHE=off, or no home)");
                return ExitCode::SUCCESS;
            };
            match cache.clean() {
                Ok((entries, bytes)) => {
                    println!(
                        "removed {entries} compiled plugin(s), {} KiB, from {}",
                        crate::report::thousands(bytes / 1024),
                        cache.dir().display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot clean `{}`: {e}", cache.dir().display());
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
        Command::Plugin(PluginCommand::Hash { file }) => {
            match crate::plugin::load::read_component(&file) {
                Ok(bytes) => {
                    println!("sha256 = \"{}\"", crate::plugin::load::sha256_hex(&bytes));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: cannot read `{}`: {e}", file.display());
                    ExitCode::from(EXIT_FAILED)
                }
            }
        }
    }
}

/// `validate --connect`: the preflight of every step.
fn preflight(w: &Workflow, cancel: Cancel) -> ExitCode {
    let plugins = crate::steps::plugins::PluginRegistry::new(cancel);
    let steps: Vec<&crate::steps::Step> = w.steps.iter().collect();
    match engine::preflight::check(w, &plugins, &steps) {
        Ok(lines) => {
            for line in lines {
                println!("  ok: {line}");
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "the workflow is valid, but {} of the systems it uses {} not ready",
                problems.len(),
                if problems.len() == 1 { "is" } else { "are" }
            );
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn invalid(e: WorkflowError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_INVALID)
}

/// `runner route`.
fn route(w: &Workflow, cancel: Cancel) -> ExitCode {
    let Some(config) = &w.router else {
        eprintln!("error: {} has no `[router]` section", w.file.display());
        return ExitCode::from(EXIT_INVALID);
    };
    if let Err(e) = crate::state::check_folder(&w.state_dir, &w.name) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    let plugins = crate::steps::plugins::PluginRegistry::new(cancel.clone());
    let plugins = match crate::steps::route::load_plugins(&plugins, &w.setup, config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let router = match crate::router::Router::start(config, plugins, &w.state_dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    println!(
        "routing reads on {} (blue {}, green {}); Ctrl-C stops",
        router.address(),
        config.blue,
        config.green
    );
    while !cancel.is_cancelled() && !router.finished() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    match router.join() {
        Ok(summary) => {
            println!("router stopped: {summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// `runner serve-store`.
/// `family:qualifier`, as `--hide` takes it.
fn parse_cell(text: &str) -> Result<(String, Vec<u8>), String> {
    match text.split_once(':') {
        Some((f, q)) if !f.is_empty() => Ok((f.to_string(), q.as_bytes().to_vec())),
        _ => Err(format!("`{text}`: write a cell as `family:qualifier`")),
    }
}

/// `runner report`: the report a compare step left in the state folder.
fn print_report(w: &Workflow, step: Option<&str>, json: bool) -> ExitCode {
    let compares: Vec<&str> = w
        .steps
        .iter()
        .filter(|s| s.kind() == "compare")
        .map(|s| s.id.get_ref().as_str())
        .collect();
    if let Some(id) = step
        && !compares.contains(&id)
    {
        eprintln!(
            "error: {} has no compare step `{id}`; its compare steps: {}",
            w.file.display(),
            if compares.is_empty() {
                "none".to_string()
            } else {
                compares.join(", ")
            }
        );
        return ExitCode::from(EXIT_INVALID);
    }
    let extension = if json { "json" } else { "md" };
    let file_of = |id: &str| w.state_dir.join(format!("compare-{id}.{extension}"));
    // The one written last, unless a step is named.
    let chosen = match step {
        Some(id) => Some(file_of(id)),
        None => compares
            .iter()
            .map(|id| file_of(id))
            .filter_map(|f| Some((std::fs::metadata(&f).ok()?.modified().ok()?, f)))
            .max()
            .map(|(_, f)| f),
    };
    match chosen.map(|f| (std::fs::read_to_string(&f), f)) {
        Some((Ok(text), _)) => {
            // A reader that stops early (`| head`) is not an error.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Some((Err(e), f)) => {
            eprintln!("error: no report at {}: {e}", f.display());
            ExitCode::from(EXIT_FAILED)
        }
        None => {
            eprintln!(
                "error: no compare step of {} has reported yet (state: {})",
                w.file.display(),
                w.state_dir.display()
            );
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// `runner rows`.
fn print_rows(
    w: &Workflow,
    name: &str,
    table: Option<&str>,
    query: &rows::Query,
    json: bool,
) -> ExitCode {
    let Some(config) = w.store(name) else {
        eprintln!("error: {} declares no `[store.{name}]`", w.file.display());
        return ExitCode::from(EXIT_INVALID);
    };
    // Looking must not make a store: a file it would create is not there yet.
    if let Some(file) = config.files(&w.home()).first()
        && !file.exists()
    {
        eprintln!(
            "error: store `{name}` holds nothing yet: {} does not exist",
            file.display()
        );
        return ExitCode::from(EXIT_FAILED);
    }
    let mut store = match w.open_store(name) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let tables = match store.tables() {
        Ok(tables) => tables,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let mut out = std::io::stdout().lock();
    let Some(table) = table else {
        for t in tables {
            // A reader that stops early (`| head`) is not an error.
            if writeln!(out, "{t}").is_err() {
                break;
            }
        }
        return ExitCode::SUCCESS;
    };
    if !tables.iter().any(|t| t == table) {
        eprintln!(
            "error: store `{name}` has no table `{table}`; it has {}",
            if tables.is_empty() {
                "none".to_string()
            } else {
                tables.join(", ")
            }
        );
        return ExitCode::from(EXIT_FAILED);
    }
    // Written row by row as the pages come; a reader that stops early
    // (`| head`) is not an error.
    let mut stopped = false;
    let mut show = |row: &crate::model::Row| {
        let written = if json {
            writeln!(out, "{}", rows::json(table, row))
        } else {
            out.write_all(rows::text(table, std::slice::from_ref(row)).as_bytes())
        };
        stopped = written.is_err();
        !stopped
    };
    match rows::read(store.as_mut(), table, query, &mut show) {
        Ok(_) if stopped => ExitCode::SUCCESS,
        Ok((shown, cut)) => {
            if shown == 0 {
                eprintln!("(no rows)");
            }
            if cut {
                eprintln!(
                    "(the first {} rows; `--limit 0` shows them all)",
                    query.limit
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn serve_store(
    w: &Workflow,
    store: &str,
    listen: std::net::SocketAddr,
    hide: Vec<(String, Vec<u8>)>,
    cancel: Cancel,
) -> ExitCode {
    let Some(config) = w.store(store) else {
        eprintln!("error: {} declares no `[store.{store}]`", w.file.display());
        return ExitCode::from(EXIT_INVALID);
    };
    // Serving reads what is there; it never creates a store's files (in a
    // state folder they would not be listed as the runner's).
    if let Some(missing) = config
        .files(&w.home())
        .into_iter()
        .take(1)
        .find(|f| !f.exists())
    {
        eprintln!(
            "error: store `{store}` has nothing to serve yet: `{}` does not exist",
            missing.display()
        );
        return ExitCode::from(EXIT_FAILED);
    }
    let api = match w
        .open_store(store)
        .map_err(|e| e.to_string())
        .and_then(|s| crate::read_api::ReadApi::start(s, listen, hide))
    {
        Ok(api) => api,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    println!("serving `{store}` on {}; Ctrl-C stops", api.address());
    while !cancel.is_cancelled() && !api.finished() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    match api.join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// `runner rollback`.
fn rollback(w: &Workflow, reason: Option<&str>) -> ExitCode {
    if w.router.is_none() {
        eprintln!(
            "error: {} has no `[router]` section: no reads are routed, so none can be sent back",
            w.file.display()
        );
        return ExitCode::from(EXIT_INVALID);
    }
    if let Err(e) = crate::state::check_folder(&w.state_dir, &w.name) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    let why = match reason {
        Some(r) => format!("rolled back from the command line: {r}"),
        None => "rolled back from the command line".to_string(),
    };
    let file = crate::router::RoutingFile::new(&w.state_dir);
    let rolled_back = file.update_from(
        &why,
        |r| {
            r.roll_back();
            Ok(())
        },
        true,
    );
    match rolled_back {
        Ok(routing) => {
            println!("routing: {}", routing.describe());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// `runner share`.
fn share(w: &Workflow, percent: f64, reason: Option<&str>) -> ExitCode {
    if w.router.is_none() {
        eprintln!(
            "error: {} has no `[router]` section: no reads are routed",
            w.file.display()
        );
        return ExitCode::from(EXIT_INVALID);
    }
    if let Err(e) = crate::state::check_folder(&w.state_dir, &w.name) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    let share = match crate::router::routing::share_of(percent) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let why = match reason {
        Some(r) => format!("share set from the command line: {r}"),
        None => "share set from the command line".to_string(),
    };
    let file = crate::router::RoutingFile::new(&w.state_dir);
    match file.update(&why, |r| {
        r.set_share(share);
        Ok(())
    }) {
        Ok(routing) => {
            println!("routing: {}", routing.describe());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// `runner resume`.
fn resume(w: &Workflow, answer: &str) -> ExitCode {
    if let Err(e) = crate::state::check_folder(&w.state_dir, &w.name) {
        eprintln!("error: {e}");
        return ExitCode::from(EXIT_INVALID);
    }
    // A pause left by a runner that ended is asked anew by the next run;
    // an answer to it would be taken for the next question.
    if !crate::state::runner_alive(&w.state_dir) {
        eprintln!(
            "error: no runner is running workflow `{}`: no step waits for an answer (`runner exec {}` holds a paused stage again)",
            w.name,
            w.file.display()
        );
        return ExitCode::from(EXIT_FAILED);
    }
    let answer: crate::router::Answer = match answer.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let file = crate::router::RoutingFile::new(&w.state_dir);
    let why = format!("`{}` answered from the command line", answer.name());
    match file.update(&why, |r| r.answer(answer)) {
        Ok(routing) => {
            println!("routing: {}", routing.describe());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn status(w: &Workflow, json: bool) -> ExitCode {
    let state = match crate::state::read(&w.state_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let Some(state) = state else {
        println!(
            "workflow `{}` has not run yet (no state in {})",
            w.name,
            w.state_dir.display()
        );
        return ExitCode::SUCCESS;
    };
    if state.workflow != w.name {
        eprintln!(
            "error: `{}` holds the state of workflow `{}`, not of `{}`",
            w.state_dir.display(),
            state.workflow,
            w.name
        );
        return ExitCode::from(EXIT_FAILED);
    }
    let alive = crate::state::runner_alive(&w.state_dir);
    if json {
        let mut value = serde_json::to_value(&state).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("runner_alive".into(), alive.into());
            if w.router.is_some()
                && let Ok(routing) = crate::router::RoutingFile::new(&w.state_dir).read()
            {
                map.insert(
                    "routing".into(),
                    serde_json::to_value(&routing).unwrap_or_default(),
                );
            }
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    print!("{}", status::text(w, &state, alive));
    ExitCode::SUCCESS
}
