//! The district server as its own process for the end-to-end tests (several
//! processes on one storage, one killed mid-push): `fieldgrid-server`'s
//! command line, built inside this package so the tests can find it.

use std::process::ExitCode;

use clap::Parser;
use fieldgrid_server::cli::{ServerArgs, run};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ServerArgs,
}

fn main() -> ExitCode {
    fieldgrid_server::init_logging();
    match run(Cli::parse().args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
