//! The command line of the district server: serve, and administer accounts,
//! grids, departments and the catalogue. Used by `fieldgrid-server` and by
//! `fieldgrid server`.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::admin::AdminSession;
use crate::{Config, auth, store};
use clap::{Args, Subcommand};
use fieldgrid_protocol::{GridInfo, Role};

/// The FieldGrid reference district server.
///
/// Without a subcommand it serves: `fieldgrid-server --data DIR --listen 127.0.0.1:8080`.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Data folder (photos, and the SQLite database unless --database is given); created if missing.
    #[arg(long, env = "FIELDGRID_DATA", global = true, default_value = "fieldgrid-data")]
    data: PathBuf,
    /// A PostgreSQL database instead of the data folder's SQLite file
    /// (`postgres://user@host:5432/name`). Several server processes may share it.
    #[arg(long, env = "FIELDGRID_DATABASE_URL", global = true, hide_env_values = true)]
    database: Option<String>,
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
    /// Build a whole district for tests, demos and measurements: grids,
    /// accounts (`worker-{i}` on grid `grid-{i}`, `centre`), departments,
    /// residents and two years of incidents with their timelines, checked by
    /// the protocol's rules. The reference district: 973 grids, 570,000
    /// residents, 3,000,000 incidents.
    BulkDistrict {
        /// Grids.
        #[arg(long, default_value_t = 973)]
        grids: usize,
        /// Residents in all.
        #[arg(long, default_value_t = 570_000)]
        residents: usize,
        /// Incidents in all.
        #[arg(long, default_value_t = 3_000_000)]
        incidents: usize,
        /// Seed of the generated data.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Password of the accounts made.
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
    let location = store::location(&cli.data, cli.database.as_deref());
    let session = || AdminSession::open(&location);
    let now = || chrono::Utc::now().timestamp_millis();
    match &cli.command {
        None => {
            let mut config = Config::new(&cli.data);
            config.database_url = cli.database.clone();
            config.token_ttl_ms = cli.token_minutes * 60_000;
            config.max_in_flight = cli.max_in_flight;
            let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let state = crate::open_state(config).await?;
                let listener = tokio::net::TcpListener::bind(cli.listen)
                    .await
                    .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
                tracing::info!(listen = %cli.listen, engine = state.store.engine(), "serving");
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
            session()?.admin().add_grid(&grid)?;
            tracing::info!(grid = %id, "grid saved");
            Ok(())
        }
        Some(Command::AddWorker {
            username,
            password,
            grids,
        }) => {
            let s = session()?;
            let id = s.admin().add_account(username, password, Role::Worker)?;
            s.admin().assign_grids(&id, grids, now())?;
            tracing::info!(account = %id, grids = grids.len(), "worker saved");
            Ok(())
        }
        Some(Command::AddOperator { username, password }) => {
            let id = session()?.admin().add_account(username, password, Role::Operator)?;
            tracing::info!(account = %id, "operator saved");
            Ok(())
        }
        Some(Command::SetCatalogue { file }) => {
            let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let catalogue: fieldgrid_core::Catalogue =
                serde_json::from_str(&text).map_err(|e| format!("{} is not a catalogue: {e}", file.display()))?;
            session()?.admin().publish_catalogue(&catalogue, now())?;
            tracing::info!(version = catalogue.version, "catalogue published");
            Ok(())
        }
        Some(Command::SeedLoad { devices, password }) => {
            let s = session()?;
            let admin = s.admin();
            let cheap = auth::cheap_hasher();
            for i in 0..*devices {
                let grid = GridInfo {
                    id: format!("load-grid-{i}"),
                    code: format!("load-{i}"),
                    name: format!("load grid {i}"),
                    community: String::new(),
                    sub_district: "load".into(),
                };
                admin.add_grid(&grid)?;
                admin.add_worker(&format!("load-{i}"), password, &[grid.id], &cheap)?;
            }
            tracing::info!(devices, "load accounts seeded");
            Ok(())
        }
        Some(Command::BulkDistrict {
            grids,
            residents,
            incidents,
            seed,
            password,
        }) => {
            let s = session()?;
            crate::bulk::accounts(&s.admin(), *grids, password, &auth::cheap_hasher())?;
            let plan = crate::bulk::DistrictPlan {
                grids: *grids,
                residents: *residents,
                incidents: *incidents,
                seed: *seed,
                now_ms: now(),
            };
            let report = s.block_on(crate::bulk::build(s.store(), &plan))?;
            tracing::info!(
                grids = report.grids,
                residents = report.residents,
                incidents = report.incidents,
                events = report.events,
                seconds = format!("{:.1}", report.seconds),
                "district built"
            );
            Ok(())
        }
        Some(Command::AddDepartment { id, name }) => {
            session()?.admin().add_department(id, name)?;
            tracing::info!(department = %id, "department saved");
            Ok(())
        }
    }
}
