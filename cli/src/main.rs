//! `fieldgrid`: the district demo, the reference server, and QA commands.

// A command-line program prints its results.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// FieldGrid: offline-first field collection for grid workers.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a slice of a district on this machine: the server, worker phones
    /// capturing offline, a dropped network, the centre dispatching, and an
    /// honest summary read from the stores and the server.
    Demo(demo::DemoArgs),
    /// Run the district server, or administer it (same as `fieldgrid-server`).
    Server(fieldgrid_server::cli::ServerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Server(args) => {
            tracing_subscriber::fmt().init();
            fieldgrid_server::cli::run(args)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
