//! `fieldgrid-server`: runs the district server, and administers it.

use std::process::ExitCode;

use clap::Parser;
use fieldgrid_server::cli::{ServerArgs, run};

/// The FieldGrid reference district server.
///
/// Without a subcommand it serves: `fieldgrid-server --data DIR --listen 127.0.0.1:8080`.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServerArgs,
}

fn main() -> ExitCode {
    fieldgrid_server::init_logging();
    match run(Cli::parse().args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
