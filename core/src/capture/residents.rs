//! Residents: create, update, delete, bulk import.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::extra::Origin;
use super::{NewResident, ResidentChange, changed_fields, editable, extra, fields_of, record_meta, require_grid};
use crate::catalogue::Catalogue;
use crate::entity::Entity;
use crate::error::{Code, Error, Result, ValidationError};
use crate::model::{CareTag, ResidenceStatus, Resident, Sex};
use crate::outbox::{self, Change};
use crate::privacy::{PersonName, PrivateText};
use crate::search;
use crate::store::Store;
use crate::validate::{self, IdNumber, Phone, limits};

pub(crate) const RESIDENT_COLUMNS: &str = "r.rid, r.id, r.grid_id, r.household_id, r.building_id, r.name, r.sex, \
     r.id_number, r.birth_date, r.phone, r.residence, r.care_tags, r.notes, r.created_at, r.updated_at, \
     r.server_version, r.deleted_at";

/// What happened to each row of a bulk import.
#[derive(Clone, Debug, Default)]
pub struct ImportReport {
    /// Ids of the residents created, in input order.
    pub created: Vec<String>,
    /// Rows refused: (index in the input, why). Nothing of them was written.
    pub rejected: Vec<(usize, ValidationError)>,
}

/// Rows per transaction in a bulk import. Each commit writes (and encrypts)
/// every index page the batch touched, so larger batches rewrite hot pages
/// less often: 20,000 imports ~25% faster than 5,000 (docs/PERFORMANCE.md).
/// A crash loses at most one batch, about half a second of work.
const IMPORT_BATCH: usize = 20_000;

impl Store {
    /// Creates a resident. The birth date is filled from the ID number.
    pub fn create_resident(&self, input: &NewResident) -> Result<Resident> {
        let today = self.today();
        let now = self.now_ms();
        let catalogue = self.catalogue();
        self.write(|tx| {
            let id = insert_resident(tx, &catalogue, input, Origin::Form, today, now)?;
            load_resident(tx, &id)
        })
    }

    /// Creates many residents (a district spreadsheet): every row is validated
    /// like [`Store::create_resident`]; refused rows are reported with their
    /// index and leave no trace; accepted rows are committed in batches.
    pub fn import_residents(&self, rows: &[NewResident]) -> Result<ImportReport> {
        let today = self.today();
        let now = self.now_ms();
        let catalogue = self.catalogue();
        self.import(rows, |tx, row| {
            insert_resident(tx, &catalogue, row, Origin::Generated, today, now)
        })
    }

    /// Writes `rows` with `insert` in batches of [`IMPORT_BATCH`], one
    /// transaction each; a row refused by validation is reported and skipped
    /// (validation runs before any write, so it leaves nothing behind).
    pub(crate) fn import<T>(
        &self,
        rows: &[T],
        insert: impl Fn(&Transaction<'_>, &T) -> Result<String>,
    ) -> Result<ImportReport> {
        let mut report = ImportReport::default();
        for (batch_no, batch) in rows.chunks(IMPORT_BATCH).enumerate() {
            let offset = batch_no * IMPORT_BATCH;
            let (created, rejected) = self.write(|tx| {
                let mut created = Vec::with_capacity(batch.len());
                let mut rejected = Vec::new();
                for (i, row) in batch.iter().enumerate() {
                    match insert(tx, row) {
                        Ok(id) => created.push(id),
                        Err(Error::Validation(v)) => rejected.push((offset + i, v)),
                        Err(other) => return Err(other),
                    }
                }
                Ok((created, rejected))
            })?;
            report.created.extend(created);
            report.rejected.extend(rejected);
        }
        tracing::info!(
            created = report.created.len(),
            rejected = report.rejected.len(),
            "import finished"
        );
        Ok(report)
    }

    /// Applies `changes` to a resident. Only the fields that end up different
    /// are queued for the server.
    pub fn update_resident(&self, id: &str, changes: &[ResidentChange]) -> Result<Resident> {
        let today = self.today();
        let now = self.now_ms();
        let catalogue = self.catalogue();
        self.write(|tx| {
            let base = editable(tx, Entity::Resident, id)?;
            let (rid, old_building, old) = load_resident_row(tx, id)?;
            let mut input = NewResident {
                extra: Vec::new(),
                grid_id: old.grid_id.clone(),
                household_id: old.household_id.clone(),
                name: old.name.as_str().to_owned(),
                sex: old.sex,
                id_number: old.id_number.as_ref().map(|n| n.as_str().to_owned()),
                birth_date: old.birth_date,
                phone: old.phone.as_ref().map(|p| p.as_str().to_owned()),
                residence: old.residence,
                care_tags: old.care_tags.clone(),
                notes: old.notes.as_str().to_owned(),
            };
            let sets_birth_date = changes.iter().any(|c| matches!(c, ResidentChange::BirthDate(_)));
            for change in changes {
                match change {
                    ResidentChange::Name(v) => input.name = v.clone(),
                    ResidentChange::Sex(v) => input.sex = *v,
                    ResidentChange::IdNumber(v) => {
                        input.id_number = v.clone();
                        if v.is_some() && !sets_birth_date {
                            input.birth_date = None; // follows the new number
                        }
                    }
                    ResidentChange::BirthDate(v) => input.birth_date = *v,
                    ResidentChange::Phone(v) => input.phone = v.clone(),
                    ResidentChange::Household(v) => input.household_id = v.clone(),
                    ResidentChange::Residence(v) => input.residence = *v,
                    ResidentChange::AddCareTag(t) => {
                        // A tag added now is one this phone's catalogue has;
                        // tags a newer catalogue gave the resident stay.
                        if !catalogue.has_care_tag(t.as_str()) {
                            return Err(Error::invalid("care_tags", Code::BadFormat));
                        }
                        input.care_tags.push(t.clone())
                    }
                    ResidentChange::RemoveCareTag(t) => input.care_tags.retain(|x| x != t),
                    ResidentChange::Notes(v) => input.notes = v.clone(),
                }
            }
            let (mut new, building) = build_resident(tx, &input, id, today)?;
            new.extra = old.extra.clone(); // changed with `Store::update_extra`
            let patch = changed_fields(&fields_of(&old)?, &fields_of(&new)?);
            if patch.is_empty() {
                return Ok(old);
            }
            new.meta = old.meta.clone();
            tx.prepare_cached(
                "UPDATE residents SET household_id = ?2, building_id = ?3, name = ?4, sex = ?5, id_number = ?6,
                   id_rev = ?7, birth_date = ?8, phone = ?9, phone_rev = ?10, residence = ?11, care_tags = ?12,
                   notes = ?13, updated_at = ?14
                 WHERE rid = ?1",
            )?
            .execute(params![
                rid,
                new.household_id,
                building,
                new.name.as_str(),
                new.sex.as_str(),
                new.id_number.as_ref().map(IdNumber::as_str),
                new.id_number.as_ref().map(|n| search::reversed(n.as_str())),
                new.birth_date.map(|d| d.to_string()),
                new.phone.as_ref().map(Phone::as_str),
                new.phone.as_ref().map(|p| search::reversed(&p.digits())),
                new.residence.as_str(),
                serde_json::to_string(&new.care_tags)?,
                new.notes.as_str(),
                now
            ])?;
            search::unindex_resident(tx, rid, &old, old_building.as_deref())?;
            search::index_resident(tx, rid, &new, building.as_deref())?;
            outbox::enqueue(tx, Entity::Resident, id, Change::Update { patch: &patch, base }, now)?;
            load_resident(tx, id)
        })
    }

    /// Deletes a resident: a tombstone that syncs; gone from search at once.
    pub fn delete_resident(&self, id: &str) -> Result<()> {
        let now = self.now_ms();
        self.write(|tx| {
            let base = editable(tx, Entity::Resident, id)?;
            let (rid, building, old) = load_resident_row(tx, id)?;
            tx.execute(
                "UPDATE residents SET deleted_at = ?2, updated_at = ?2 WHERE rid = ?1",
                params![rid, now],
            )?;
            search::unindex_resident(tx, rid, &old, building.as_deref())?;
            outbox::enqueue(tx, Entity::Resident, id, Change::Delete { base }, now)?;
            Ok(())
        })
    }

    /// A resident by id (deleted ones included, marked in their meta).
    pub fn get_resident(&self, id: &str) -> Result<Resident> {
        self.read(|c| load_resident(c, id))
    }
}

/// Validates `input` and writes the resident, its index rows and its create
/// operation; returns the new id.
fn insert_resident(
    tx: &Transaction<'_>,
    catalogue: &Catalogue,
    input: &NewResident,
    origin: Origin,
    today: NaiveDate,
    now: i64,
) -> Result<String> {
    if !input.care_tags.iter().all(|t| catalogue.has_care_tag(t.as_str())) {
        return Err(Error::invalid("care_tags", Code::BadFormat));
    }
    let id = crate::new_id();
    let (mut resident, building) = build_resident(tx, input, &id, today)?;
    resident.extra = extra::of_new(catalogue, Entity::Resident, &input.extra, origin)?;
    extra::save_new(tx, &id, &resident.extra)?;
    tx.prepare_cached(INSERT_RESIDENT)?
        .execute(resident_row(&resident, building.as_deref(), now, None)?)?;
    let rid = tx.last_insert_rowid();
    search::index_resident(tx, rid, &resident, building.as_deref())?;
    outbox::enqueue(tx, Entity::Resident, &id, Change::Create, now)?;
    Ok(id)
}

/// Writes a resident row, columns in the order of [`resident_row`]. The
/// caller may append an `ON CONFLICT` clause using the same parameters.
pub(crate) const INSERT_RESIDENT: &str = "INSERT INTO residents (id, grid_id, household_id, building_id, name, sex,
       id_number, id_rev, birth_date, phone, phone_rev, residence, care_tags, notes, created_at, updated_at,
       server_version)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16)";

/// The parameters of [`INSERT_RESIDENT`]: the record as stored, with its
/// reversed search columns, `now` as created and updated time, and the server
/// version (`None` for a capture).
pub(crate) fn resident_row(
    r: &Resident,
    building: Option<&str>,
    now: i64,
    version: Option<i64>,
) -> Result<rusqlite::ParamsFromIter<Vec<rusqlite::types::Value>>> {
    use rusqlite::types::Value;
    let text = |s: Option<String>| s.map_or(Value::Null, Value::Text);
    Ok(rusqlite::params_from_iter(vec![
        Value::Text(r.id.clone()),
        Value::Text(r.grid_id.clone()),
        text(r.household_id.clone()),
        text(building.map(str::to_owned)),
        Value::Text(r.name.as_str().to_owned()),
        Value::Text(r.sex.as_str().to_owned()),
        text(r.id_number.as_ref().map(|n| n.as_str().to_owned())),
        text(r.id_number.as_ref().map(|n| search::reversed(n.as_str()))),
        text(r.birth_date.map(|d| d.to_string())),
        text(r.phone.as_ref().map(|p| p.as_str().to_owned())),
        text(r.phone.as_ref().map(|p| search::reversed(&p.digits()))),
        Value::Text(r.residence.as_str().to_owned()),
        Value::Text(serde_json::to_string(&r.care_tags)?),
        Value::Text(r.notes.as_str().to_owned()),
        Value::Integer(now),
        version.map_or(Value::Null, Value::Integer),
    ]))
}

/// Every rule a resident obeys. Returns the record (without meta) and the
/// building it lives in.
fn build_resident(
    conn: &Connection,
    input: &NewResident,
    id: &str,
    today: NaiveDate,
) -> Result<(Resident, Option<String>)> {
    require_grid(conn, &input.grid_id)?;
    let building = match &input.household_id {
        Some(h) => {
            let row: Option<(String, Option<i64>, Option<String>)> = conn
                .prepare_cached("SELECT grid_id, deleted_at, building_id FROM households WHERE id = ?1")?
                .query_row([h], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            match row {
                None => return Err(Error::invalid("household_id", Code::UnknownReference)),
                Some((_, Some(_), _)) => return Err(Error::invalid("household_id", Code::Deleted)),
                Some((grid, None, _)) if grid != input.grid_id => {
                    return Err(Error::invalid("household_id", Code::OtherGrid));
                }
                Some((_, None, building)) => building,
            }
        }
        None => None,
    };
    let name = validate::text("name", &input.name, limits::NAME, false)?;
    let id_number = match input.id_number.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(IdNumber::parse(s, today).map_err(|c| Error::invalid("id_number", c))?),
    };
    if let Some(n) = &id_number
        && n.sex() != input.sex
    {
        return Err(Error::invalid("sex", Code::SexMismatch));
    }
    let birth_date = match (&id_number, input.birth_date) {
        (Some(n), Some(d)) if d != n.birth_date() => return Err(Error::invalid("birth_date", Code::BirthDateMismatch)),
        (Some(n), _) => Some(n.birth_date()),
        (None, Some(d)) => {
            validate::birth_date(d, today)?;
            Some(d)
        }
        (None, None) => None,
    };
    let phone = match input.phone.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(Phone::parse(s).map_err(|c| Error::invalid("phone", c))?),
    };
    let mut care_tags: Vec<CareTag> = input.care_tags.clone();
    care_tags.sort_unstable();
    care_tags.dedup();
    let max = limits::CARE_TAGS;
    if care_tags.len() > max {
        return Err(Error::invalid("care_tags", Code::TooMany { max }));
    }
    let notes = validate::optional_text("notes", &input.notes, limits::NOTES, true)?;
    if let Some(n) = &id_number {
        let taken: Option<i64> = conn
            .prepare_cached("SELECT 1 FROM residents WHERE id_rev = ?1 AND deleted_at IS NULL AND id <> ?2")?
            .query_row(params![search::reversed(n.as_str()), id], |r| r.get(0))
            .optional()?;
        if taken.is_some() {
            return Err(Error::invalid("id_number", Code::Duplicate));
        }
    }
    let resident = Resident {
        id: id.to_owned(),
        grid_id: input.grid_id.clone(),
        household_id: input.household_id.clone(),
        name: PersonName::new(name),
        sex: input.sex,
        id_number,
        birth_date,
        phone,
        residence: input.residence,
        care_tags,
        notes: PrivateText::new(notes),
        extra: Default::default(),
        meta: Default::default(),
    };
    Ok((resident, building))
}

pub(crate) fn load_resident(conn: &Connection, id: &str) -> Result<Resident> {
    load_resident_row(conn, id).map(|(_, _, r)| r)
}

/// The resident with its local row number and building.
fn load_resident_row(conn: &Connection, id: &str) -> Result<(i64, Option<String>, Resident)> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {RESIDENT_COLUMNS} FROM residents r WHERE r.id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok((r.get(0)?, r.get(4)?, resident_from_row(conn, r)?)),
        None => Err(Error::NotFound {
            entity: "resident",
            id: id.to_owned(),
        }),
    }
}

/// A resident from a row selected with [`RESIDENT_COLUMNS`].
pub(crate) fn resident_from_row(conn: &Connection, r: &Row<'_>) -> Result<Resident> {
    let mut resident = resident_fields_from_row(r)?;
    resident.extra = extra::load(conn, &resident.id)?;
    resident.meta = record_meta(conn, &resident.id, r.get(13)?, r.get(14)?, r.get(15)?, r.get(16)?)?;
    Ok(resident)
}

/// A resident's fields from a row, without its bookkeeping (no status query):
/// what a create operation sends.
pub(crate) fn resident_fields(conn: &Connection, id: &str) -> Result<Resident> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {RESIDENT_COLUMNS} FROM residents r WHERE r.id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => {
            let mut resident = resident_fields_from_row(r)?;
            resident.extra = extra::load(conn, id)?;
            Ok(resident)
        }
        None => Err(Error::NotFound {
            entity: "resident",
            id: id.to_owned(),
        }),
    }
}

fn resident_fields_from_row(r: &Row<'_>) -> Result<Resident> {
    let corrupt = |what: &str| Error::Internal(format!("stored resident has a malformed {what}"));
    let id: String = r.get(1)?;
    let sex: String = r.get(6)?;
    let id_number: Option<String> = r.get(7)?;
    let birth_date: Option<String> = r.get(8)?;
    let phone: Option<String> = r.get(9)?;
    let residence: String = r.get(10)?;
    let tags: String = r.get(11)?;
    Ok(Resident {
        meta: Default::default(),
        grid_id: r.get(2)?,
        household_id: r.get(3)?,
        name: PersonName::new(r.get::<_, String>(5)?),
        sex: Sex::parse(&sex).ok_or_else(|| corrupt("sex"))?,
        id_number: id_number
            .map(IdNumber::try_from)
            .transpose()
            .map_err(|_| corrupt("id number"))?,
        birth_date: birth_date
            .map(|d| d.parse::<NaiveDate>())
            .transpose()
            .map_err(|_| corrupt("birth date"))?,
        phone: phone
            .map(|p| Phone::parse(&p))
            .transpose()
            .map_err(|_| corrupt("phone"))?,
        residence: ResidenceStatus::parse(&residence).ok_or_else(|| corrupt("residence"))?,
        care_tags: {
            // Sorted as they are kept now (a resident stored or pulled
            // before may list them in another order): an edit that leaves
            // them alone does not send them.
            let mut tags: Vec<CareTag> = serde_json::from_str(&tags)?;
            tags.sort_unstable();
            tags.dedup();
            tags
        },
        notes: PrivateText::new(r.get::<_, String>(12)?),
        extra: Default::default(),
        id,
    })
}
