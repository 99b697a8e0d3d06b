//! Livelihood service logs: visits, deliveries, phone check-ins.

use rusqlite::{Connection, params};

use super::photos::{insert_photos, photos_of};
use super::{NewServiceLog, check_resident_refs, record_meta, require_grid};
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::model::{PhotoOwner, ServiceKind, ServiceLog};
use crate::outbox::{self, Change};
use crate::privacy::PrivateText;
use crate::store::Store;
use crate::validate::{self, limits};

impl Store {
    /// Records help given to residents, with optional photos.
    pub fn create_service_log(&self, input: &NewServiceLog) -> Result<ServiceLog> {
        let notes = validate::optional_text("notes", &input.notes, limits::NOTES, true)?;
        if !self.catalogue().has_service_kind(input.kind.as_str()) {
            return Err(Error::invalid("kind", crate::Code::BadFormat));
        }
        if notes.is_empty() && input.kind == ServiceKind::OtherAssistance {
            return Err(Error::invalid("notes", crate::Code::Required));
        }
        let now = self.now_ms();
        let occurred = input.occurred_at_ms.unwrap_or(now);
        validate::not_in_future("occurred_at_ms", occurred, now)?;
        let staged = self.stage_photos("photos", &input.photos)?;
        self.write(|tx| {
            require_grid(tx, &input.grid_id)?;
            let log = ServiceLog {
                id: crate::new_id(),
                grid_id: input.grid_id.clone(),
                kind: input.kind.clone(),
                resident_ids: check_resident_refs(tx, "resident_ids", &input.resident_ids)?,
                notes: PrivateText::new(notes),
                occurred_at_ms: occurred,
                photos: Vec::new(),
                meta: Default::default(),
            };
            tx.execute(
                "INSERT INTO service_logs (id, grid_id, kind, residents, notes, occurred_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![
                    log.id,
                    log.grid_id,
                    log.kind.as_str(),
                    serde_json::to_string(&log.resident_ids)?,
                    log.notes.as_str(),
                    log.occurred_at_ms,
                    now
                ],
            )?;
            outbox::enqueue(tx, Entity::ServiceLog, &log.id, Change::Create, now)?;
            insert_photos(tx, &PhotoOwner::ServiceLog(log.id.clone()), staged, true, now)?;
            load_service_log(tx, &log.id)
        })
    }

    /// A service log by id, with its photos.
    pub fn get_service_log(&self, id: &str) -> Result<ServiceLog> {
        self.read(|c| load_service_log(c, id))
    }
}

pub(crate) fn load_service_log(conn: &Connection, id: &str) -> Result<ServiceLog> {
    let mut stmt = conn.prepare_cached(
        "SELECT grid_id, kind, residents, notes, occurred_at, created_at, updated_at, server_version, deleted_at
         FROM service_logs WHERE id = ?1",
    )?;
    let mut rows = stmt.query([id])?;
    let Some(r) = rows.next()? else {
        return Err(Error::NotFound {
            entity: "service_log",
            id: id.to_owned(),
        });
    };
    let kind: String = r.get(1)?;
    let residents: String = r.get(2)?;
    Ok(ServiceLog {
        id: id.to_owned(),
        grid_id: r.get(0)?,
        kind: ServiceKind::new(kind),
        resident_ids: serde_json::from_str(&residents)?,
        notes: PrivateText::new(r.get::<_, String>(3)?),
        occurred_at_ms: r.get(4)?,
        photos: photos_of(conn, &PhotoOwner::ServiceLog(id.to_owned()))?,
        meta: record_meta(conn, id, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?)?,
    })
}
