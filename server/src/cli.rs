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
    /// Map tiles for the console's map, as a URL with {z}, {x} and {y}
    /// (GCJ-02 tiles, as Chinese map services serve them); without it the
    /// map is drawn with no background, needing nothing outside the LAN.
    #[arg(long, env = "FIELDGRID_MAP_TILES")]
    map_tiles: Option<String>,
    /// Mark the console's cookie Secure: set it when the server is reached
    /// over HTTPS (a TLS proxy in front of it).
    #[arg(long, env = "FIELDGRID_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Address of a proxy in front of the server (repeat, or comma-separate
    /// in the variable): for its requests the client address, which
    /// sign-in lockouts and the audit log use, is taken from
    /// X-Forwarded-For. Without it the header is ignored.
    #[arg(long = "trusted-proxy", env = "FIELDGRID_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<std::net::IpAddr>,
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
    /// Publish a newer catalogue (JSON: {"version", "categories", "visit_rules", "checklists", "field_defs",
    /// "care_tags", "service_kinds"}).
    SetCatalogue {
        /// The catalogue file.
        #[arg(long)]
        file: PathBuf,
    },
    /// Print the catalogue in force (JSON), to edit and publish with set-catalogue.
    Catalogue,
    /// Add a field of the district's own to residents, households, places or
    /// incidents, or change one (only what is given: its label, whether it
    /// is required, more options, wider limits): publishes the catalogue in
    /// force with it as the next version.
    SetField {
        /// resident, household, place or incident.
        #[arg(long)]
        entity: String,
        /// Stable code (a-z, 0-9 and _).
        #[arg(long)]
        code: String,
        /// The label on the phones' forms (required for a new field).
        #[arg(long)]
        label: Option<String>,
        /// yes_no, number, text or choice (required for a new field).
        #[arg(long)]
        answer: Option<String>,
        /// Records created on forms from now on must give it.
        #[arg(long, conflicts_with = "optional")]
        required: bool,
        /// No longer required.
        #[arg(long)]
        optional: bool,
        /// The choices of a choice field, comma-separated.
        #[arg(long, value_delimiter = ',')]
        options: Vec<String>,
        /// Smallest number a number field accepts.
        #[arg(long)]
        min: Option<f64>,
        /// Largest number a number field accepts.
        #[arg(long)]
        max: Option<f64>,
        /// Longest text a text field accepts (characters).
        #[arg(long)]
        max_len: Option<u32>,
    },
    /// Retire a field: it leaves the phones' forms, and the values captured stay.
    RetireField {
        /// resident, household, place or incident.
        #[arg(long)]
        entity: String,
        /// Its code.
        #[arg(long)]
        code: String,
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
    /// Add an account for a department (it sees and handles what is dispatched to it).
    AddDepartmentAccount {
        /// User name.
        #[arg(long)]
        username: String,
        /// Password (at least 8 characters).
        #[arg(long, env = "FIELDGRID_PASSWORD")]
        password: String,
        /// The department's id.
        #[arg(long)]
        department: String,
    },
    /// Add an account for district IT (accounts, devices, the audit log).
    AddAdmin {
        /// User name.
        #[arg(long)]
        username: String,
        /// Password (at least 8 characters).
        #[arg(long, env = "FIELDGRID_PASSWORD")]
        password: String,
    },
    /// Disable an account: every session ends at once.
    DisableAccount {
        /// User name.
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled account again.
    EnableAccount {
        /// User name.
        #[arg(long)]
        username: String,
    },
    /// Set a new password: every old session ends.
    ResetPassword {
        /// User name.
        #[arg(long)]
        username: String,
        /// The new password (at least 8 characters).
        #[arg(long, env = "FIELDGRID_PASSWORD")]
        password: String,
    },
    /// List an account's devices (JSON on stdout): last contact, revoked, wipe state.
    Devices {
        /// User name.
        #[arg(long)]
        username: String,
    },
    /// Revoke a device: its sessions end and it cannot sign in again.
    RevokeDevice {
        /// User name.
        #[arg(long)]
        username: String,
        /// The device's id (see `devices`).
        #[arg(long)]
        device: String,
    },
    /// Wipe a lost phone (`wipe`) or a retired one after it sends what waits (`send-then-wipe`).
    WipeDevice {
        /// User name.
        #[arg(long)]
        username: String,
        /// The device's id (see `devices`).
        #[arg(long)]
        device: String,
        /// `wipe` or `send-then-wipe`.
        #[arg(long, default_value = "wipe")]
        mode: String,
    },
    /// Print the audit log (JSON lines on stdout), from a position on.
    Audit {
        /// Lines after this position.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many lines.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Find the records phones cannot read (stored before the server
    /// checked every record's wire shape) and store each, completed, as a
    /// new version that phones pull again. Records that read are never
    /// touched. Prints a JSON summary; run it with the server stopped.
    RepairRecords {
        /// Only say what would be repaired.
        #[arg(long)]
        dry_run: bool,
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
            config.map_tiles = cli.map_tiles.clone();
            config.secure_cookies = cli.secure_cookies;
            config.trusted_proxies = cli.trusted_proxies.clone();
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
            let catalogue: fieldgrid_domain::Catalogue =
                serde_json::from_str(&text).map_err(|e| format!("{} is not a catalogue: {e}", file.display()))?;
            session()?.admin().publish_catalogue(&catalogue, now())?;
            tracing::info!(version = catalogue.version, "catalogue published");
            Ok(())
        }
        Some(Command::Catalogue) => print_json_lines(std::iter::once(session()?.admin().catalogue()?)),
        Some(Command::SetField {
            entity,
            code,
            label,
            answer,
            required,
            optional,
            options,
            min,
            max,
            max_len,
        }) => {
            use fieldgrid_domain::catalogue::{AnswerType, ChecklistItem, FieldDef};
            let answer = answer
                .as_ref()
                .map(|a| {
                    serde_json::from_value(serde_json::Value::String(a.clone()))
                        .ok()
                        .filter(|a| *a != AnswerType::Unknown)
                        .ok_or("--answer is yes_no, number, text or choice")
                })
                .transpose()?;
            change_fields(&session()?, |fields| {
                let i = match fields.iter().position(|d| &d.entity == entity && &d.item.code == code) {
                    Some(i) => i,
                    None => {
                        let (Some(label), Some(answer)) = (label, answer) else {
                            return Err("a new field needs --label and --answer".to_owned());
                        };
                        fields.push(FieldDef {
                            entity: entity.clone(),
                            item: ChecklistItem::new(code, label, answer),
                            retired: false,
                        });
                        fields.len() - 1
                    }
                };
                // Only what was given changes (a retired field stays retired).
                let item = &mut fields[i].item;
                if let Some(label) = label {
                    item.label_zh.clone_from(label);
                }
                if let Some(answer) = answer {
                    item.answer = answer;
                }
                if *required || *optional {
                    item.required = *required;
                }
                if !options.is_empty() {
                    item.options.clone_from(options);
                }
                item.min = min.or(item.min);
                item.max = max.or(item.max);
                item.max_len = max_len.or(item.max_len);
                Ok(())
            })
        }
        Some(Command::RetireField { entity, code }) => change_fields(&session()?, |fields| {
            let def = fields
                .iter_mut()
                .find(|d| &d.entity == entity && &d.item.code == code)
                .ok_or_else(|| format!("the catalogue in force has no field {entity}.{code}"))?;
            def.retired = true;
            Ok(())
        }),
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
        Some(Command::AddDepartmentAccount {
            username,
            password,
            department,
        }) => {
            let id = session()?
                .admin()
                .add_department_account(username, password, department)?;
            tracing::info!(account = %id, "department account saved");
            Ok(())
        }
        Some(Command::AddAdmin { username, password }) => {
            let id = session()?.admin().add_account(username, password, Role::Admin)?;
            tracing::info!(account = %id, "district IT account saved");
            Ok(())
        }
        Some(Command::DisableAccount { username }) | Some(Command::EnableAccount { username }) => {
            let s = session()?;
            let id = account_of(&s, username)?;
            let disable = matches!(&cli.command, Some(Command::DisableAccount { .. }));
            s.admin().set_disabled(&id, disable)?;
            tracing::info!(account = %id, disabled = disable, "account saved");
            Ok(())
        }
        Some(Command::ResetPassword { username, password }) => {
            let s = session()?;
            let id = account_of(&s, username)?;
            s.admin().reset_password(&id, username, password)?;
            tracing::info!(account = %id, "password reset; every session of the account ended");
            Ok(())
        }
        Some(Command::Devices { username }) => {
            let s = session()?;
            let devices = s.admin().devices(&account_of(&s, username)?)?;
            // With the wipe's state spelled out: none, pending, done.
            let lines: Vec<serde_json::Value> = devices
                .iter()
                .map(|d| {
                    let mut v = serde_json::to_value(d).unwrap_or_default();
                    v["wipe_state"] = serde_json::Value::from(d.wipe_state());
                    v
                })
                .collect();
            print_json_lines(lines.iter())
        }
        Some(Command::RevokeDevice { username, device }) => {
            let s = session()?;
            s.admin().revoke_device(&account_of(&s, username)?, device)?;
            tracing::info!("device revoked");
            Ok(())
        }
        Some(Command::WipeDevice { username, device, mode }) => {
            let mode = match mode.as_str() {
                "wipe" => crate::store::WipeMode::Wipe,
                "send-then-wipe" | "send_then_wipe" => crate::store::WipeMode::SendThenWipe,
                _ => return Err("mode is wipe or send-then-wipe".into()),
            };
            let s = session()?;
            s.admin().wipe_device(&account_of(&s, username)?, device, mode)?;
            tracing::info!("wipe asked for: the device learns it at its next contact");
            Ok(())
        }
        Some(Command::Audit { after, limit }) => print_json_lines(session()?.admin().audit_log(*after, *limit)?.iter()),
        Some(Command::RepairRecords { dry_run }) => {
            let repair = session()?.admin().repair_records(now(), *dry_run)?;
            tracing::info!(
                checked = repair.checked,
                repaired = repair.repaired.len(),
                unreadable = repair.unreadable.len(),
                dry_run,
                "records checked"
            );
            print_json_lines(std::iter::once(repair))
        }
        Some(Command::AddDepartment { id, name }) => {
            session()?.admin().add_department(id, name)?;
            tracing::info!(department = %id, "department saved");
            Ok(())
        }
    }
}

/// Publishes the catalogue in force with its fields changed by `change`,
/// as the next version (refused, as any catalogue, if it breaks a rule or
/// takes a published field away).
fn change_fields(
    session: &AdminSession,
    change: impl FnOnce(&mut Vec<fieldgrid_domain::catalogue::FieldDef>) -> Result<(), String>,
) -> Result<(), String> {
    let mut catalogue = session.admin().catalogue()?;
    change(&mut catalogue.field_defs)?;
    catalogue.version += 1;
    session
        .admin()
        .publish_catalogue(&catalogue, chrono::Utc::now().timestamp_millis())?;
    tracing::info!(version = catalogue.version, "catalogue published");
    Ok(())
}

fn account_of(session: &AdminSession, username: &str) -> Result<String, String> {
    session
        .admin()
        .account_id(username)?
        .ok_or_else(|| "no such account".to_owned())
}

/// A command that lists prints one JSON object a line on stdout.
#[allow(clippy::print_stdout)]
fn print_json_lines<T: serde::Serialize>(items: impl Iterator<Item = T>) -> Result<(), String> {
    for item in items {
        println!("{}", serde_json::to_string(&item).map_err(|e| e.to_string())?);
    }
    Ok(())
}
