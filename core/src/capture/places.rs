//! Places (compounds, buildings, units) and households.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::extra::Origin;
use super::{
    HouseholdChange, ImportReport, NewHousehold, NewPlace, PlaceChange, changed_fields, editable, extra, fields_of,
    record_meta, require_grid,
};
use crate::catalogue::Catalogue;
use crate::entity::Entity;
use crate::error::{Code, Error, Result};
use crate::model::{Household, Place, PlaceKind};
use crate::outbox::{self, Change};
use crate::privacy::PrivateText;
use crate::store::Store;
use crate::validate::{self, limits};

const PLACE_COLUMNS: &str = "id, grid_id, kind, parent_id, name, created_at, updated_at, server_version, deleted_at";
const HOUSEHOLD_COLUMNS: &str =
    "id, grid_id, unit_id, building_id, room, address, notes, created_at, updated_at, server_version, deleted_at";

impl Store {
    /// Creates a compound, building or unit.
    pub fn create_place(&self, input: &NewPlace) -> Result<Place> {
        let name = validate::text("name", &input.name, limits::LABEL, false)?;
        let extra = extra::of_new(&self.catalogue(), Entity::Place, &input.extra, Origin::Form)?;
        let now = self.now_ms();
        self.write(|tx| {
            require_grid(tx, &input.grid_id)?;
            check_parent(tx, input.kind, input.parent_id.as_deref(), &input.grid_id)?;
            let place = Place {
                id: crate::new_id(),
                grid_id: input.grid_id.clone(),
                kind: input.kind,
                parent_id: input.parent_id.clone(),
                name,
                extra,
                meta: Default::default(),
            };
            tx.execute(
                "INSERT INTO places (id, grid_id, kind, parent_id, name, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    place.id,
                    place.grid_id,
                    place.kind.as_str(),
                    place.parent_id,
                    place.name,
                    now
                ],
            )?;
            extra::save_new(tx, &place.id, &place.extra)?;
            outbox::enqueue(tx, Entity::Place, &place.id, Change::Create, now)?;
            load_place(tx, &place.id)
        })
    }

    /// Changes a place.
    pub fn update_place(&self, id: &str, changes: &[PlaceChange]) -> Result<Place> {
        let now = self.now_ms();
        self.write(|tx| {
            let base = editable(tx, Entity::Place, id)?;
            let old = load_place(tx, id)?;
            let mut new = old.clone();
            for change in changes {
                match change {
                    PlaceChange::Name(n) => new.name = validate::text("name", n, limits::LABEL, false)?,
                }
            }
            let patch = changed_fields(&fields_of(&old)?, &fields_of(&new)?);
            if patch.is_empty() {
                return Ok(old);
            }
            tx.execute(
                "UPDATE places SET name = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, new.name, now],
            )?;
            outbox::enqueue(tx, Entity::Place, id, Change::Update { patch: &patch, base }, now)?;
            load_place(tx, id)
        })
    }

    /// Deletes a place. Refused while live places or households are in it.
    pub fn delete_place(&self, id: &str) -> Result<()> {
        let now = self.now_ms();
        self.write(|tx| {
            let base = editable(tx, Entity::Place, id)?;
            let children: i64 = tx.query_row(
                "SELECT (SELECT count(*) FROM places WHERE parent_id = ?1 AND deleted_at IS NULL)
                      + (SELECT count(*) FROM households WHERE unit_id = ?1 AND deleted_at IS NULL)",
                [id],
                |r| r.get(0),
            )?;
            if children > 0 {
                return Err(Error::invalid("id", Code::NotAllowed));
            }
            tx.execute(
                "UPDATE places SET deleted_at = ?2, updated_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            outbox::enqueue(tx, Entity::Place, id, Change::Delete { base }, now)?;
            Ok(())
        })
    }

    /// A place by id (deleted ones included, marked in their meta).
    pub fn get_place(&self, id: &str) -> Result<Place> {
        self.read(|c| load_place(c, id))
    }

    /// The live places of a grid, optionally of one kind or under one parent,
    /// by name.
    pub fn places(&self, grid_id: &str, kind: Option<PlaceKind>, parent_id: Option<&str>) -> Result<Vec<Place>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {PLACE_COLUMNS} FROM places WHERE grid_id = ?1 AND deleted_at IS NULL
                   AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR parent_id = ?3)
                 ORDER BY name, id"
            ))?;
            let mut rows = stmt.query(params![grid_id, kind.map(|k| k.as_str()), parent_id])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(place_from_row(c, r)?);
            }
            Ok(out)
        })
    }

    /// Creates a household.
    pub fn create_household(&self, input: &NewHousehold) -> Result<Household> {
        let now = self.now_ms();
        let catalogue = self.catalogue();
        self.write(|tx| {
            let id = insert_household(tx, &catalogue, input, Origin::Form, now)?;
            load_household(tx, &id)
        })
    }

    /// Creates many households, like [`Store::import_residents`].
    pub fn import_households(&self, rows: &[NewHousehold]) -> Result<ImportReport> {
        let now = self.now_ms();
        let catalogue = self.catalogue();
        self.import(rows, |tx, row| {
            insert_household(tx, &catalogue, row, Origin::Generated, now)
        })
    }

    /// Changes a household.
    pub fn update_household(&self, id: &str, changes: &[HouseholdChange]) -> Result<Household> {
        let now = self.now_ms();
        self.write(|tx| {
            let base = editable(tx, Entity::Household, id)?;
            let old = load_household(tx, id)?;
            let mut new = old.clone();
            for change in changes {
                match change {
                    HouseholdChange::Room(v) => new.room = validate::text("room", v, limits::LABEL, false)?,
                    HouseholdChange::Address(v) => {
                        new.address = PrivateText::new(validate::text("address", v, limits::ADDRESS, false)?)
                    }
                    HouseholdChange::Notes(v) => {
                        new.notes = PrivateText::new(validate::optional_text("notes", v, limits::NOTES, true)?)
                    }
                }
            }
            let patch = changed_fields(&fields_of(&old)?, &fields_of(&new)?);
            if patch.is_empty() {
                return Ok(old);
            }
            tx.execute(
                "UPDATE households SET room = ?2, address = ?3, notes = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, new.room, new.address.as_str(), new.notes.as_str(), now],
            )?;
            outbox::enqueue(tx, Entity::Household, id, Change::Update { patch: &patch, base }, now)?;
            load_household(tx, id)
        })
    }

    /// Deletes a household. Refused while live residents belong to it.
    pub fn delete_household(&self, id: &str) -> Result<()> {
        let now = self.now_ms();
        self.write(|tx| {
            let base = editable(tx, Entity::Household, id)?;
            let residents: i64 = tx.query_row(
                "SELECT count(*) FROM residents WHERE household_id = ?1 AND deleted_at IS NULL",
                [id],
                |r| r.get(0),
            )?;
            if residents > 0 {
                return Err(Error::invalid("id", Code::NotAllowed));
            }
            tx.execute(
                "UPDATE households SET deleted_at = ?2, updated_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            outbox::enqueue(tx, Entity::Household, id, Change::Delete { base }, now)?;
            Ok(())
        })
    }

    /// A household by id (deleted ones included, marked in their meta).
    pub fn get_household(&self, id: &str) -> Result<Household> {
        self.read(|c| load_household(c, id))
    }

    /// The live households in a unit or building, by room.
    pub fn households_in(&self, place_id: &str) -> Result<Vec<Household>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {HOUSEHOLD_COLUMNS} FROM households
                 WHERE (unit_id = ?1 OR building_id = ?1) AND deleted_at IS NULL ORDER BY room, id"
            ))?;
            let mut rows = stmt.query([place_id])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(household_from_row(c, r)?);
            }
            Ok(out)
        })
    }
}

/// Validates and writes a household and its create operation.
fn insert_household(
    tx: &Transaction<'_>,
    catalogue: &Catalogue,
    input: &NewHousehold,
    origin: Origin,
    now: i64,
) -> Result<String> {
    let extra = extra::of_new(catalogue, Entity::Household, &input.extra, origin)?;
    let room = validate::text("room", &input.room, limits::LABEL, false)?;
    let address = match &input.address {
        Some(a) => validate::optional_text("address", a, limits::ADDRESS, false)?,
        None => String::new(),
    };
    let notes = validate::optional_text("notes", &input.notes, limits::NOTES, true)?;
    require_grid(tx, &input.grid_id)?;
    let (building_id, composed) = match &input.unit_id {
        Some(unit) => locate_unit(tx, unit, &input.grid_id)?,
        None => (None, String::new()),
    };
    let address = if address.is_empty() {
        format!("{composed}{room}")
    } else {
        address
    };
    let household = Household {
        id: crate::new_id(),
        grid_id: input.grid_id.clone(),
        unit_id: input.unit_id.clone(),
        building_id,
        room,
        address: PrivateText::new(address),
        notes: PrivateText::new(notes),
        extra,
        meta: Default::default(),
    };
    tx.prepare_cached(
        "INSERT INTO households (id, grid_id, unit_id, building_id, room, address, notes, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        household.id,
        household.grid_id,
        household.unit_id,
        household.building_id,
        household.room,
        household.address.as_str(),
        household.notes.as_str(),
        now
    ])?;
    extra::save_new(tx, &household.id, &household.extra)?;
    outbox::enqueue(tx, Entity::Household, &household.id, Change::Create, now)?;
    Ok(household.id)
}

/// Checks the parent rules: a compound has none; a building has none or a
/// compound; a unit has a building. The parent is live and in the same grid.
fn check_parent(tx: &Transaction<'_>, kind: PlaceKind, parent: Option<&str>, grid_id: &str) -> Result<()> {
    let required = match kind {
        PlaceKind::Compound => {
            return match parent {
                None => Ok(()),
                Some(_) => Err(Error::invalid("parent_id", Code::NotAllowed)),
            };
        }
        PlaceKind::Building => PlaceKind::Compound,
        PlaceKind::Unit => PlaceKind::Building,
    };
    let Some(parent) = parent else {
        return match kind {
            PlaceKind::Unit => Err(Error::invalid("parent_id", Code::Required)),
            _ => Ok(()),
        };
    };
    let row: Option<(String, String, Option<i64>)> = tx
        .query_row(
            "SELECT kind, grid_id, deleted_at FROM places WHERE id = ?1",
            [parent],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    match row {
        None => Err(Error::invalid("parent_id", Code::UnknownReference)),
        Some((_, _, Some(_))) => Err(Error::invalid("parent_id", Code::Deleted)),
        Some((k, _, _)) if k != required.as_str() => Err(Error::invalid("parent_id", Code::WrongKind)),
        Some((_, g, _)) if g != grid_id => Err(Error::invalid("parent_id", Code::OtherGrid)),
        Some(_) => Ok(()),
    }
}

/// For a household's `unit_id` (a unit, or a building without units): the
/// building it is in, and the address prefix `compound building unit`.
fn locate_unit(tx: &Transaction<'_>, unit_id: &str, grid_id: &str) -> Result<(Option<String>, String)> {
    let place = match load_place(tx, unit_id) {
        Err(Error::NotFound { .. }) => return Err(Error::invalid("unit_id", Code::UnknownReference)),
        other => other?,
    };
    if place.meta.deleted {
        return Err(Error::invalid("unit_id", Code::Deleted));
    }
    if place.grid_id != grid_id {
        return Err(Error::invalid("unit_id", Code::OtherGrid));
    }
    let mut names = vec![place.name.clone()];
    let mut building = None;
    let mut cursor = Some(place);
    while let Some(p) = cursor {
        match p.kind {
            PlaceKind::Compound => return Err(Error::invalid("unit_id", Code::WrongKind)),
            PlaceKind::Building => building = Some(p.id.clone()),
            PlaceKind::Unit => {}
        }
        cursor = match &p.parent_id {
            Some(parent) => {
                let parent = load_place(tx, parent)?;
                names.push(parent.name.clone());
                if parent.kind == PlaceKind::Compound {
                    break;
                }
                Some(parent)
            }
            None => None,
        };
    }
    names.reverse();
    Ok((building, names.concat()))
}

pub(crate) fn load_place(conn: &Connection, id: &str) -> Result<Place> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {PLACE_COLUMNS} FROM places WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => place_from_row(conn, r),
        None => Err(Error::NotFound {
            entity: "place",
            id: id.to_owned(),
        }),
    }
}

fn place_from_row(conn: &Connection, r: &Row<'_>) -> Result<Place> {
    let id: String = r.get(0)?;
    let kind: String = r.get(2)?;
    Ok(Place {
        meta: record_meta(conn, &id, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?)?,
        grid_id: r.get(1)?,
        kind: PlaceKind::parse(&kind).ok_or_else(|| Error::Internal("unknown place kind".into()))?,
        parent_id: r.get(3)?,
        name: r.get(4)?,
        extra: extra::load(conn, &id)?,
        id,
    })
}

pub(crate) fn load_household(conn: &Connection, id: &str) -> Result<Household> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {HOUSEHOLD_COLUMNS} FROM households WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => household_from_row(conn, r),
        None => Err(Error::NotFound {
            entity: "household",
            id: id.to_owned(),
        }),
    }
}

fn household_from_row(conn: &Connection, r: &Row<'_>) -> Result<Household> {
    let id: String = r.get(0)?;
    Ok(Household {
        meta: record_meta(conn, &id, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?)?,
        grid_id: r.get(1)?,
        unit_id: r.get(2)?,
        building_id: r.get(3)?,
        room: r.get(4)?,
        address: PrivateText::new(r.get::<_, String>(5)?),
        notes: PrivateText::new(r.get::<_, String>(6)?),
        extra: extra::load(conn, &id)?,
        id,
    })
}
