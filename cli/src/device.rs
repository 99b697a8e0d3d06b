//! `fieldgrid device ...`: QA commands on one phone's store.

// Commands print their results.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use clap::{Args, Subcommand, ValueEnum};
use fieldgrid_core::sync::{HttpOptions, HttpTransport, SyncOptions};
use fieldgrid_core::*;

/// Which store, and its key.
#[derive(Args, Debug)]
pub struct StoreArgs {
    /// The store file.
    #[arg(long)]
    store: PathBuf,
    /// The 32-byte key as 64 hex characters (omit for a plain QA store).
    #[arg(long, env = "FIELDGRID_KEY", hide_env_values = true)]
    key_hex: Option<String>,
}

impl StoreArgs {
    fn open(&self) -> Result<Store, String> {
        let key = match &self.key_hex {
            Some(hex_key) => Some(
                hex::decode(hex_key.trim())
                    .ok()
                    .and_then(|b| StoreKey::from_bytes(&b).ok())
                    .ok_or("--key-hex must be 64 hex characters (32 bytes)")?,
            ),
            None => None,
        };
        Store::open(&self.store, key.as_ref()).map_err(|e| format!("{}: {e}", self.store.display()))
    }
}

/// What to list or export.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum What {
    /// Residents.
    Residents,
    /// Incidents.
    Incidents,
}

/// QA commands on a device store.
#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// Create a store (encrypted with --key-hex) and show its device id.
    Init(StoreArgs),
    /// Import residents from a CSV file (header: name,sex,id_number,phone,residence,care_tags,notes,household_id).
    /// Good rows go in; each bad row is reported with its line and field and writes nothing.
    ImportResidents {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// The grid the residents belong to.
        #[arg(long)]
        grid: String,
        /// The CSV file.
        file: PathBuf,
    },
    /// Export residents or incidents to CSV (standard output).
    Export {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// What to export.
        #[arg(value_enum)]
        what: What,
    },
    /// List residents (filtered like the search screen) or incidents.
    List {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// What to list.
        #[arg(value_enum)]
        what: What,
        /// Name contains.
        #[arg(long)]
        name: Option<String>,
        /// ID number or its last digits.
        #[arg(long)]
        id_number: Option<String>,
        /// Phone number or its last digits.
        #[arg(long)]
        phone: Option<String>,
        /// Care tag (elderly_living_alone, disabled, ...).
        #[arg(long)]
        care_tag: Option<String>,
    },
    /// Report an incident in one step (with photos from files).
    ReportIncident {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// Grid.
        #[arg(long)]
        grid: String,
        /// Category code (see the catalogue).
        #[arg(long)]
        category: String,
        /// What was seen.
        #[arg(long, default_value = "")]
        description: String,
        /// Latitude (WGS-84).
        #[arg(long, requires = "lon")]
        lat: Option<f64>,
        /// Longitude (WGS-84).
        #[arg(long, requires = "lat")]
        lon: Option<f64>,
        /// A photo file; repeat for more.
        #[arg(long)]
        photo: Vec<PathBuf>,
        /// A value of the district's own fields, `field=value`; repeat.
        #[arg(long)]
        value: Vec<String>,
    },
    /// Start an incident draft (kept on the phone, not sent until submitted).
    DraftIncident {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// Grid.
        #[arg(long)]
        grid: String,
        /// Category code (see the catalogue).
        #[arg(long)]
        category: String,
        /// What was seen.
        #[arg(long, default_value = "")]
        description: String,
        /// A value of the district's own fields, `field=value`; repeat.
        #[arg(long)]
        value: Vec<String>,
    },
    /// Add a photo from a file to an incident draft.
    AddPhoto {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// The draft's id.
        #[arg(long)]
        incident: String,
        /// The photo file (JPEG, PNG, WebP or HEIC, at most 10 MiB).
        file: PathBuf,
    },
    /// Submit a draft: its category's required fields are checked, then it is queued.
    Submit {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// The draft's id.
        #[arg(long)]
        incident: String,
    },
    /// Sign in to a district server.
    Login {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// Server URL (https://..., or http:// on loopback).
        #[arg(long)]
        server: String,
        /// User name.
        #[arg(long)]
        username: String,
        /// Password.
        #[arg(long, env = "FIELDGRID_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Sync with the server signed in to.
    Sync {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// Server URL.
        #[arg(long)]
        server: String,
    },
    /// Outbox, refused operations with reasons, conflicts, last sync, clock offset.
    Status(StoreArgs),
    /// The inspection checklists in force, item by item (code, type, question).
    Checklists(StoreArgs),
    /// Record an inspection: `--answer item=value` per item (yes/no, a
    /// number, text or a choice), `--photo item=FILE`; failed items that
    /// raise an incident report one at once.
    Inspect {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// Grid.
        #[arg(long)]
        grid: String,
        /// Checklist code (see `checklists`).
        #[arg(long)]
        checklist: String,
        /// The place inspected (id), if any.
        #[arg(long)]
        place: Option<String>,
        /// An answer, `item=value`; repeat.
        #[arg(long)]
        answer: Vec<String>,
        /// A photo of an item, `item=FILE`; repeat.
        #[arg(long)]
        photo: Vec<String>,
        /// Latitude (WGS-84).
        #[arg(long)]
        lat: f64,
        /// Longitude (WGS-84).
        #[arg(long)]
        lon: f64,
    },
    /// The district's own fields of residents, households, places and
    /// incidents (code, type, required, label; retired ones marked).
    Fields(StoreArgs),
    /// Set or clear values of the district's own fields of a record:
    /// `--value field=value` (yes/no, a number, text or a choice), `--clear field`.
    SetFields {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// resident, household, place or incident (a draft).
        #[arg(long)]
        kind: String,
        /// The record's id.
        #[arg(long)]
        id: String,
        /// A value, `field=value`; repeat.
        #[arg(long)]
        value: Vec<String>,
        /// A field to clear; repeat.
        #[arg(long)]
        clear: Vec<String>,
    },
    /// The visits and phone check-ins due in a grid under the district's
    /// visit rules (server time), overdue first; names masked.
    Due {
        /// The store.
        #[command(flatten)]
        store: StoreArgs,
        /// Grid.
        #[arg(long)]
        grid: String,
    },
}

/// What a CSV column accepts, after a refusal of its format.
fn csv_hint(why: &ValidationError) -> String {
    if why.code != Code::BadFormat {
        return String::new();
    }
    match why.field.as_str() {
        "sex" => " (男/女 or male/female)".into(),
        "residence" => " (户籍/实有/流动 or registered/actual/floating)".into(),
        "care_tags" => {
            let tags: Vec<&str> = CareTag::ALL.iter().map(|t| t.as_str()).collect();
            format!(" (separated by ';': {})", tags.join(", "))
        }
        _ => String::new(),
    }
}

/// `field=value` arguments as values of the district's own fields of `entity`.
fn field_values(st: &Store, entity: Entity, given: &[String]) -> Result<Vec<ItemAnswer>, String> {
    let catalogue = st.catalogue();
    given
        .iter()
        .map(|v| {
            item_answer(v, |code| {
                catalogue
                    .fields_of(entity)
                    .find(|d| d.item.code == code)
                    .map(|d| d.item.answer)
            })
        })
        .collect()
}

/// `item=value` as an answer of the item's type (`type_of`; text when the
/// item is unknown, for the store to refuse by name).
fn item_answer(given: &str, type_of: impl Fn(&str) -> Option<AnswerType>) -> Result<ItemAnswer, String> {
    let (item, value) = given
        .split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or("expected item=value (or field=value)")?;
    let answer = match type_of(&item) {
        Some(t) => t.parse_text(&value).ok_or_else(|| match t {
            AnswerType::YesNo => format!("{item}: answer yes or no"),
            AnswerType::Number => format!("{item}: answer a number"),
            _ => format!("{item}: not an answer of this item"),
        })?,
        None => Answer::Text(value),
    };
    Ok(ItemAnswer { item, answer })
}

fn answer_type(t: AnswerType) -> &'static str {
    match t {
        AnswerType::YesNo => "yes/no",
        AnswerType::Number => "number",
        AnswerType::Text => "text",
        AnswerType::Choice => "choice",
        AnswerType::Photo => "photo",
        AnswerType::Unknown => "?",
    }
}

/// Runs a device command.
pub fn run(cmd: &DeviceCommand) -> Result<(), String> {
    let e = |x: Error| x.to_string();
    match cmd {
        DeviceCommand::Init(s) => {
            let store = s.open()?;
            println!(
                "store ready: {} (schema {}, device {})",
                s.store.display(),
                SCHEMA_VERSION,
                store.device_id().map_err(e)?
            );
        }
        DeviceCommand::ImportResidents { store, grid, file } => {
            let st = store.open()?;
            let input = std::fs::File::open(file).map_err(|x| format!("{}: {x}", file.display()))?;
            let report = st.import_residents_csv(input, grid).map_err(e)?;
            for (line, why) in &report.refused {
                println!("line {line}: {why}{}", csv_hint(why));
            }
            for (line, field, _) in &report.warnings {
                println!("line {line}: {field} is a mobile number in a segment no operator has: saved; check it");
            }
            println!(
                "imported {} residents, refused {} rows (nothing of a refused row was written)",
                report.created.len(),
                report.refused.len()
            );
        }
        DeviceCommand::Export { store, what } => {
            let st = store.open()?;
            let mut w = csv::Writer::from_writer(std::io::stdout());
            let mut page = PageRequest {
                limit: 500,
                after: None,
            };
            match what {
                What::Residents => {
                    // The district's fields, as `extra.<code>` columns (the
                    // import reads them back).
                    let extra_codes: Vec<String> = st
                        .catalogue()
                        .fields_of(Entity::Resident)
                        .map(|d| d.item.code.clone())
                        .collect();
                    let cell = |v: Option<&serde_json::Value>| match v {
                        None => String::new(),
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(serde_json::Value::Bool(b)) => if *b { "是" } else { "否" }.to_owned(),
                        Some(other) => other.to_string(),
                    };
                    w.write_record(
                        [
                            "id",
                            "grid_id",
                            "household_id",
                            "name",
                            "sex",
                            "id_number",
                            "birth_date",
                            "phone",
                            "residence",
                            "care_tags",
                            "notes",
                            "sync",
                        ]
                        .into_iter()
                        .map(str::to_owned)
                        .chain(extra_codes.iter().map(|c| format!("extra.{c}"))),
                    )
                    .map_err(|x| x.to_string())?;
                    loop {
                        let p = st.search_residents(&ResidentQuery::default(), &page).map_err(e)?;
                        for r in &p.items {
                            let tags: Vec<&str> = r.care_tags.iter().map(|t| t.as_str()).collect();
                            w.write_record(
                                [
                                    r.id.as_str(),
                                    &r.grid_id,
                                    r.household_id.as_deref().unwrap_or(""),
                                    r.name.as_str(),
                                    r.sex.as_str(),
                                    r.id_number.as_ref().map_or("", |n| n.as_str()),
                                    &r.birth_date.map(|d| d.to_string()).unwrap_or_default(),
                                    r.phone.as_ref().map_or("", |p| p.as_str()),
                                    r.residence.as_str(),
                                    &tags.join(";"),
                                    r.notes.as_str(),
                                    &format!("{:?}", r.meta.sync),
                                ]
                                .into_iter()
                                .map(str::to_owned)
                                .chain(extra_codes.iter().map(|c| cell(r.extra.0.get(c)))),
                            )
                            .map_err(|x| x.to_string())?;
                        }
                        match p.next {
                            Some(n) => page.after = Some(n),
                            None => break,
                        }
                    }
                }
                What::Incidents => {
                    w.write_record([
                        "id",
                        "grid_id",
                        "category",
                        "title",
                        "status",
                        "occurred_at_ms",
                        "department",
                        "deadline_at_ms",
                        "photos",
                        "sync",
                    ])
                    .map_err(|x| x.to_string())?;
                    loop {
                        let p = st.list_incidents(&IncidentQuery::default(), &page).map_err(e)?;
                        for i in &p.items {
                            w.write_record([
                                i.id.as_str(),
                                &i.grid_id,
                                &i.category,
                                &i.title,
                                i.status.as_str(),
                                &i.occurred_at_ms.to_string(),
                                i.department.as_deref().unwrap_or(""),
                                &i.deadline_at_ms.map(|d| d.to_string()).unwrap_or_default(),
                                &i.photos.len().to_string(),
                                &format!("{:?}", i.meta.sync),
                            ])
                            .map_err(|x| x.to_string())?;
                        }
                        match p.next {
                            Some(n) => page.after = Some(n),
                            None => break,
                        }
                    }
                }
            }
            w.flush().map_err(|x| x.to_string())?;
        }
        DeviceCommand::List {
            store,
            what,
            name,
            id_number,
            phone,
            care_tag,
        } => {
            let st = store.open()?;
            match what {
                What::Residents => {
                    // Any code: residents may hold a newer catalogue's.
                    let care_tag = care_tag.as_deref().map(CareTag::new);
                    let q = ResidentQuery {
                        name: name.clone(),
                        id_number: id_number.clone(),
                        phone: phone.clone(),
                        care_tag,
                        ..Default::default()
                    };
                    let p = st
                        .search_residents(
                            &q,
                            &PageRequest {
                                limit: 100,
                                after: None,
                            },
                        )
                        .map_err(e)?;
                    for r in &p.items {
                        println!(
                            "{}  {}  {}  {}  {:?}",
                            r.id,
                            r.name.masked(),
                            r.id_number.as_ref().map_or(String::new(), |n| n.masked()),
                            r.phone.as_ref().map_or(String::new(), |p| p.masked()),
                            r.meta.sync
                        );
                    }
                    println!(
                        "{} shown{}",
                        p.items.len(),
                        if p.next.is_some() {
                            " (more: narrow the search)"
                        } else {
                            ""
                        }
                    );
                }
                What::Incidents => {
                    let p = st
                        .list_incidents(
                            &IncidentQuery::default(),
                            &PageRequest {
                                limit: 100,
                                after: None,
                            },
                        )
                        .map_err(e)?;
                    for i in &p.items {
                        println!(
                            "{}  {}  {}  {} photos  {:?}",
                            i.id,
                            i.category,
                            i.status.as_str(),
                            i.photos.len(),
                            i.meta.sync
                        );
                    }
                    println!("{} shown", p.items.len());
                }
            }
        }
        DeviceCommand::ReportIncident {
            store,
            grid,
            category,
            description,
            lat,
            lon,
            photo,
            value,
        } => {
            let st = store.open()?;
            let location = match (lat, lon) {
                (Some(latitude), Some(longitude)) => Some(validate::Location {
                    latitude: *latitude,
                    longitude: *longitude,
                    accuracy_m: None,
                    crs: validate::CoordinateSystem::Wgs84,
                }),
                _ => None,
            };
            let photos: Vec<NewPhoto> = photo
                .iter()
                .map(|p| NewPhoto {
                    source: PhotoSource::File(p.clone()),
                    taken_at_ms: None,
                    location: None,
                })
                .collect();
            let input = NewIncident {
                extra: field_values(&st, Entity::Incident, value)?,
                grid_id: grid.clone(),
                category: category.clone(),
                title: String::new(),
                description: description.clone(),
                location,
                address: String::new(),
                occurred_at_ms: None,
                involved_residents: vec![],
            };
            let i = st.report_incident(&input, &photos).map_err(e)?;
            println!(
                "reported {} ({}, {} photos): {:?}",
                i.id,
                i.title,
                i.photos.len(),
                i.meta.sync
            );
        }
        DeviceCommand::DraftIncident {
            store,
            grid,
            category,
            description,
            value,
        } => {
            let st = store.open()?;
            let input = NewIncident {
                extra: field_values(&st, Entity::Incident, value)?,
                grid_id: grid.clone(),
                category: category.clone(),
                title: String::new(),
                description: description.clone(),
                location: None,
                address: String::new(),
                occurred_at_ms: None,
                involved_residents: vec![],
            };
            let d = st.create_incident_draft(&input).map_err(e)?;
            println!("draft {}", d.id);
        }
        DeviceCommand::AddPhoto { store, incident, file } => {
            let st = store.open()?;
            let photo = NewPhoto {
                source: PhotoSource::File(file.clone()),
                taken_at_ms: None,
                location: None,
            };
            let p = st.attach_incident_photo(incident, &photo).map_err(e)?;
            println!("photo {} ({}, {} bytes, sha256 {})", p.id, p.mime, p.size, p.sha256);
        }
        DeviceCommand::Submit { store, incident } => {
            let st = store.open()?;
            let i = st.submit_incident(incident).map_err(e)?;
            println!("submitted {} ({}): {:?}", i.id, i.title, i.meta.sync);
        }
        DeviceCommand::Login {
            store,
            server,
            username,
            password,
        } => {
            let st = store.open()?;
            let t = HttpTransport::new(server, &HttpOptions::default()).map_err(e)?;
            let r = st.login(&t, username, password).map_err(e)?;
            let grids: Vec<&str> = r.grids.iter().map(|g| g.id.as_str()).collect();
            println!("signed in; grids: {}", grids.join(", "));
        }
        DeviceCommand::Checklists(store) => {
            let st = store.open()?;
            for c in &st.catalogue().checklists {
                println!("{} {}", c.code, c.name_zh);
                for i in &c.items {
                    let required = if i.required { "required" } else { "optional" };
                    let options = if i.options.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", i.options.join("/"))
                    };
                    println!(
                        "    {:<22} {:<7} {required:<8} {}{options}",
                        i.code,
                        answer_type(i.answer),
                        i.label_zh
                    );
                }
            }
        }
        DeviceCommand::Inspect {
            store,
            grid,
            checklist,
            place,
            answer,
            photo,
            lat,
            lon,
        } => {
            let st = store.open()?;
            let catalogue = st.catalogue();
            let list = catalogue
                .checklist(checklist)
                .ok_or_else(|| format!("no checklist {checklist:?}: see `fieldgrid device checklists`"))?;
            let answers = answer
                .iter()
                .map(|a| item_answer(a, |item| list.item(item).map(|i| i.answer)))
                .collect::<Result<Vec<_>, _>>()?;
            let mut photos = Vec::new();
            for p in photo {
                let (item, file) = p
                    .split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| format!("{p:?}: expected item=FILE"))?;
                photos.push(ItemPhoto {
                    item,
                    photo: NewPhoto {
                        source: PhotoSource::File(file.into()),
                        taken_at_ms: None,
                        location: None,
                    },
                });
            }
            let r = st
                .record_inspection(&NewInspection {
                    grid_id: grid.clone(),
                    place_id: place.clone(),
                    checklist: checklist.clone(),
                    answers,
                    photos,
                    location: Some(validate::Location {
                        latitude: *lat,
                        longitude: *lon,
                        accuracy_m: None,
                        crs: validate::CoordinateSystem::Wgs84,
                    }),
                    notes: String::new(),
                    occurred_at_ms: None,
                })
                .map_err(e)?;
            println!(
                "recorded inspection {} ({}, {} photos); {} incidents raised",
                r.inspection.id,
                list.name_zh,
                r.inspection.photos.len(),
                r.raised.len()
            );
            for i in &r.raised {
                println!("raised {} ({})", i.id, i.category);
            }
        }
        DeviceCommand::Fields(store) => {
            let st = store.open()?;
            for d in &st.catalogue().field_defs {
                let required = if d.item.required { "required" } else { "optional" };
                let retired = if d.retired { " (retired)" } else { "" };
                let options = if d.item.options.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", d.item.options.join("/"))
                };
                println!(
                    "{:<10} {:<22} {:<7} {required:<8} {}{options}{retired}",
                    d.entity,
                    d.item.code,
                    answer_type(d.item.answer),
                    d.item.label_zh
                );
            }
        }
        DeviceCommand::SetFields {
            store,
            kind,
            id,
            value,
            clear,
        } => {
            let st = store.open()?;
            let entity = Entity::parse(kind)
                .filter(|e| fieldgrid_core::catalogue::EXTENSIBLE.contains(e))
                .ok_or("--kind is resident, household, place or incident")?;
            let answers = field_values(&st, entity, value)?;
            let extra = st.update_extra(entity, id, &answers, clear).map_err(e)?;
            println!("{} now has {} of the district's fields", entity.as_str(), extra.0.len());
        }
        DeviceCommand::Due { store, grid } => {
            let st = store.open()?;
            let due = st.due_visits(grid).map_err(e)?;
            let c = st.visit_counts(grid).map_err(e)?;
            println!(
                "{} overdue, {} due soon, {} due, {} done this period",
                c.overdue, c.due_soon, c.due, c.done
            );
            for d in &due {
                // The last day of the period (China time).
                let by = fieldgrid_core::visits::china_date(d.due_by_ms - 1);
                println!(
                    "{:<8} by {by}  {}  {}  {}",
                    d.state.as_str(),
                    d.rule_name,
                    fieldgrid_core::privacy::mask_name(d.resident.name.as_str()),
                    d.resident.id
                );
            }
        }
        DeviceCommand::Sync { store, server } => {
            let st = store.open()?;
            let t = HttpTransport::new(server, &HttpOptions::default()).map_err(e)?;
            let r = st
                .sync(&t, &SyncOptions::default(), &|_| {}, &AtomicBool::new(false))
                .map_err(e)?;
            println!(
                "confirmed {}, refused {}, photos {}, received {}, clock offset {} ms",
                r.confirmed, r.rejected, r.photos_uploaded, r.pulled, r.clock_offset_ms
            );
        }
        DeviceCommand::Status(s) => {
            let st = s.open()?;
            let o = st.outbox_counts().map_err(e)?;
            let c = st.status_counts().map_err(e)?;
            println!(
                "outbox: {} waiting, {} sending, {} refused",
                o.pending, o.sending, o.rejected
            );
            println!(
                "records: {} ({} on the server, {} only here, {} refused, {} in conflict)",
                c.records, c.on_server, c.only_on_device, c.rejected, c.in_conflict
            );
            for op in st.rejected_operations().map_err(e)? {
                if let Some(r) = op.rejection {
                    println!(
                        "refused: {} {}: {} [{}{}]",
                        op.entity,
                        op.entity_id,
                        r.message,
                        r.code,
                        r.field.map(|f| format!(", field {f}")).unwrap_or_default()
                    );
                }
            }
            match st.last_sync_at().map_err(e)? {
                Some(t) => println!(
                    "last sync: {} (device ms), clock offset {} ms",
                    t,
                    st.server_now_ms().map_err(e)? - st.now_ms()
                ),
                None => println!("last sync: never"),
            }
        }
    }
    Ok(())
}
