//! `fieldgrid`: the district demo, the reference server, and QA commands.

// A command-line program prints its results.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use fieldgrid_cli::{demo, device, load};

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
    /// QA commands on one phone's store: init, import, export, list, report, sync, status.
    #[command(subcommand)]
    Device(device::DeviceCommand),
    /// N simulated phones at once against a server: throughput, latency percentiles, errors.
    Load(load::LoadArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Device(cmd) => device::run(&cmd),
        Command::Load(args) => load::run(&args).and_then(|r| {
            println!(
                "{} phones x {} operations: {} of {} phones completed, {} operations confirmed, {} requests ({} retried) in {:.1} s ({:.0} operations/s); latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; errors {}",
                args.devices,
                args.operations,
                r.completed,
                args.devices,
                r.operations,
                r.requests,
                r.retries,
                r.elapsed.as_secs_f64(),
                r.operations as f64 / r.elapsed.as_secs_f64(),
                r.p50.as_secs_f64() * 1e3,
                r.p99.as_secs_f64() * 1e3,
                r.max.as_secs_f64() * 1e3,
                r.errors.len(),
            );
            for e in r.errors.iter().take(20) {
                println!("  {e}");
            }
            if r.errors.len() > 20 {
                println!("  ... and {} more", r.errors.len() - 20);
            }
            if r.completed == args.devices {
                Ok(())
            } else {
                Err(format!("{} of {} phones did not complete", args.devices - r.completed, args.devices))
            }
        }),
        Command::Server(args) => {
            fieldgrid_server::init_logging();
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
