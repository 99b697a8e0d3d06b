//! The command line of the district server: serve, and administer accounts,
//! grids, departments and the catalogue. Used by `fieldgrid-server` and by
//! `fieldgrid server`.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::{Config, auth, db};
use clap::{Args, Subcommand};
use fieldgrid_protocol::{GridInfo, Role};

/// The FieldGrid reference district server.
///
/// Without a subcommand it serves: `fieldgrid-server --data DIR --listen 127.0.0.1:8080`.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Data folder (database and photos); created if missing.
    #[arg(long, env = "FIELDGRID_DATA", global = true, default_value = "fieldgrid-data")]
    data: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "FIELDGRID_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Session token lifetime in minutes.
    #[arg(long, env = "FIELDGRID_TOKEN_MINUTES", default_value_t = 720)]
    token_minutes: i64,
    /// Requests handled at once before answering 429.
    #[arg(long, env = "FIELDGRID_MAX_IN_FLIGHT", default_value_t = 256)]
    max_in_flight: usize,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::enum_variant_names)] // `add-grid`, `add-worker`... read well on the command line
enum Command {
    /// Add or update a grid.
    AddGrid {
        /// Grid id.
        #[arg(long)]
        id: String,
        /// District grid code.
        #[arg(long)]
        code: String,
        /// Grid name.
        #[arg(long)]
        name: String,
        /// Community (社区).
        #[arg(long, default_value = "")]
        community: String,
        /// Sub-district (街道).
        #[arg(long, default_value = "")]
        sub_district: String,
    },
    /// Add a grid worker (or reset their password) and assign grids.
    AddWorker {
        /// User name.
        #[arg(long)]
        username: String,
        /// Password (at least 8 characters).
        #[arg(long, env = "FIELDGRID_PASSWORD")]
        password: String,
        /// Comma-separated grid ids; replaces the current assignment.
        #[arg(long, value_delimiter = ',')]
        grids: Vec<String>,
    },
    /// Add a centre operator.
    AddOperator {
        /// User name.
        #[arg(long)]
        username: String,
        /// Password (at least 8 characters).
        #[arg(long, env = "FIELDGRID_PASSWORD")]
        password: String,
    },
    /// Publish a newer incident category catalogue (JSON: {"version", "categories"}).
    SetCatalogue {
        /// The catalogue file.
        #[arg(long)]
        file: PathBuf,
    },
    /// Create N load-test workers (`load-{i}`, grid `load-grid-{i}`, cheap password hashing) for `fieldgrid load`.
    SeedLoad {
        /// How many.
        #[arg(long)]
        devices: usize,
        /// Their password.
        #[arg(long, env = "FIELDGRID_PASSWORD")]
        password: String,
    },
    /// Add a department incidents are dispatched to.
    AddDepartment {
        /// Department id.
        #[arg(long)]
        id: String,
        /// Name.
        #[arg(long)]
        name: String,
    },
}

/// Runs the command.
pub fn run(cli: ServerArgs) -> Result<(), String> {
    let admin = || db::open(&cli.data).map_err(|e| format!("cannot open {}: {e}", cli.data.display()));
    match &cli.command {
        None => {
            let mut config = Config::new(&cli.data);
            config.token_ttl_ms = cli.token_minutes * 60_000;
            config.max_in_flight = cli.max_in_flight;
            let state = crate::open_state(config)?;
            let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(cli.listen)
                    .await
                    .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
                tracing::info!(listen = %cli.listen, data = %cli.data.display(), "serving");
                crate::serve(state, listener, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .map_err(|e| e.to_string())
            })
        }
        Some(Command::AddGrid {
            id,
            code,
            name,
            community,
            sub_district,
        }) => {
            let grid = GridInfo {
                id: id.clone(),
                code: code.clone(),
                name: name.clone(),
                community: community.clone(),
                sub_district: sub_district.clone(),
            };
            auth::add_grid(&admin()?, &grid).map_err(|e| e.to_string())?;
            tracing::info!(grid = %id, "grid saved");
            Ok(())
        }
        Some(Command::AddWorker {
            username,
            password,
            grids,
        }) => {
            let conn = admin()?;
            let id = auth::add_account(&conn, username, password, Role::Worker)?;
            auth::assign_grids(&conn, &id, grids, chrono::Utc::now().timestamp_millis())?;
            tracing::info!(account = %id, grids = grids.len(), "worker saved");
            Ok(())
        }
        Some(Command::AddOperator { username, password }) => {
            let id = auth::add_account(&admin()?, username, password, Role::Operator)?;
            tracing::info!(account = %id, "operator saved");
            Ok(())
        }
        Some(Command::SetCatalogue { file }) => {
            let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let catalogue: fieldgrid_core::Catalogue =
                serde_json::from_str(&text).map_err(|e| format!("{} is not a catalogue: {e}", file.display()))?;
            crate::catalogue::publish(&admin()?, &catalogue, chrono::Utc::now().timestamp_millis())?;
            tracing::info!(version = catalogue.version, "catalogue published");
            Ok(())
        }
        Some(Command::SeedLoad { devices, password }) => {
            let conn = admin()?;
            let now = chrono::Utc::now().timestamp_millis();
            for i in 0..*devices {
                let grid = GridInfo {
                    id: format!("load-grid-{i}"),
                    code: format!("load-{i}"),
                    name: format!("load grid {i}"),
                    community: String::new(),
                    sub_district: "load".into(),
                };
                auth::add_grid(&conn, &grid).map_err(|e| e.to_string())?;
                let id = auth::add_account_with(
                    &conn,
                    &format!("load-{i}"),
                    password,
                    Role::Worker,
                    &auth::cheap_hasher(),
                )?;
                auth::assign_grids(&conn, &id, &[grid.id], now)?;
            }
            tracing::info!(devices, "load accounts seeded");
            Ok(())
        }
        Some(Command::AddDepartment { id, name }) => {
            auth::add_department(&admin()?, id, name).map_err(|e| e.to_string())?;
            tracing::info!(department = %id, "department saved");
            Ok(())
        }
    }
}
