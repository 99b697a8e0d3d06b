//! [`FieldGridStore`]: the open on-device store, with capture and queries.
//!
//! Every method blocks until the store has answered (a capture returns once
//! it is durable on disk): call them off the UI thread. The object is safe to
//! share between threads; calls from many threads are serialised where they
//! write and run side by side where they only read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::changes::RecordKind;
use fieldgrid_core::catalogue::Term;
use fieldgrid_core::privacy;
use fieldgrid_core::query::StatusCounts;
use fieldgrid_core::validate::{self, IdNumber};
use fieldgrid_core::{
    self as core, Category, Extra, Grid, HouseholdChange, IncidentChange, ItemAnswer, NewHousehold, NewIncident,
    NewPlace, Photo, Place, PlaceChange, PlaceKind, Sex, Store, StoreKey,
};

use crate::error::{FieldGridError, Result, guard, install_quiet_panic_hook};
use crate::types::*;

/// An open FieldGrid store. Open one per signed-in worker and keep it for
/// the life of the app; `close_store` or `wipe` ends it.
#[derive(uniffi::Object)]
pub struct FieldGridStore {
    store: RwLock<Option<Arc<Store>>>,
    syncing: AtomicBool,
}

impl FieldGridStore {
    /// Takes the store out for a remote wipe: no call can use it any more;
    /// waits (up to five seconds) for calls still running to let go of it.
    pub(crate) fn take_for_remote_wipe(&self) -> Result<core::Store> {
        let mut store = self
            .store
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(closed)?;
        for _ in 0..250 {
            match Arc::try_unwrap(store) {
                Ok(s) => return Ok(s),
                Err(shared) => store = shared,
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(FieldGridError::Internal {
            reason: "the store stayed in use; it is closed and will be wiped at the next sync".to_owned(),
        })
    }

    /// The open core store, or `Conflict` once closed or wiped.
    pub(crate) fn core(&self) -> Result<Arc<Store>> {
        self.store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(closed)
    }

    /// Runs `f` on the open store inside the panic guard.
    fn with<T>(&self, f: impl FnOnce(&Store) -> core::Result<T>) -> Result<T> {
        guard(|| {
            let store = self.core()?;
            Ok(f(&store)?)
        })
    }

    /// Marks a sync as running; `None` if one already is.
    pub(crate) fn begin_sync(self: &Arc<Self>) -> Option<SyncRunning> {
        (!self.syncing.swap(true, Ordering::AcqRel)).then(|| SyncRunning(self.clone()))
    }
}

fn closed() -> FieldGridError {
    FieldGridError::Conflict {
        reason: "the store is closed".to_owned(),
    }
}

/// Held while a sync runs on a store; clears the mark when dropped.
pub(crate) struct SyncRunning(Arc<FieldGridStore>);

impl Drop for SyncRunning {
    fn drop(&mut self) {
        self.0.syncing.store(false, Ordering::Release);
    }
}

#[uniffi::export]
impl FieldGridStore {
    /// Opens (or creates) the store at `path`. With a `key` (exactly 32 random
    /// bytes from the platform key store) the file is encrypted (SQLCipher)
    /// and so are its photos. A wrong key, a plain file opened with a key, or a
    /// file from a newer app version is a `Storage` error that leaves the file
    /// untouched.
    #[uniffi::constructor(default(key = None))]
    pub fn open(path: String, key: Option<Vec<u8>>) -> Result<Arc<FieldGridStore>> {
        install_quiet_panic_hook();
        guard(|| {
            let key = key.as_deref().map(StoreKey::from_bytes).transpose()?;
            let store = Store::open(&path, key.as_ref())?;
            Ok(Arc::new(FieldGridStore {
                store: RwLock::new(Some(Arc::new(store))),
                syncing: AtomicBool::new(false),
            }))
        })
    }

    /// Closes the database file now, even while other references to this
    /// object remain; later calls return `Conflict`. A sync in progress keeps
    /// the file open until it returns. (Kotlin's `close()`/`use {}` and Swift's
    /// `deinit` release this object; the file closes with the last reference.)
    pub fn close_store(&self) {
        self.store.write().unwrap_or_else(PoisonError::into_inner).take();
    }

    /// Removes the store for good: database, photos, sync state. Refused with
    /// `Conflict` while operations have not reached the server, unless `force`
    /// (tell the worker what would be lost first), and while a sync runs.
    pub fn wipe(&self, force: bool) -> Result<()> {
        guard(|| {
            let mut slot = self.store.write().unwrap_or_else(PoisonError::into_inner);
            let store = slot.take().ok_or_else(closed)?;
            if !force {
                // Checked here as well as in the core (whose wipe consumes the
                // store), so that a refused wipe leaves the store open.
                let refusal = match store.outbox_counts() {
                    Ok(c) if c.pending + c.sending == 0 => None,
                    Ok(c) => Some(core::Error::Unsynced {
                        operations: c.pending + c.sending,
                    }),
                    Err(e) => Some(e),
                };
                if let Some(e) = refusal {
                    *slot = Some(store);
                    return Err(e.into());
                }
            }
            match Arc::try_unwrap(store) {
                Ok(store) => Ok(store.wipe(force)?),
                Err(store) => {
                    *slot = Some(store);
                    Err(FieldGridError::Conflict {
                        reason: "another call (a sync) is using the store; cancel it first".to_owned(),
                    })
                }
            }
        })
    }

    /// The path of the database file.
    pub fn path(&self) -> Result<String> {
        self.with(|s| Ok(s.path().to_string_lossy().into_owned()))
    }

    /// The id this phone is known by to the server.
    pub fn device_id(&self) -> Result<String> {
        self.with(|s| s.device_id())
    }

    /// The grids on this phone: those assigned at the last sign-in, and a
    /// grid taken away until its data has left the phone (at the next sync).
    pub fn grids(&self) -> Result<Vec<Grid>> {
        self.with(|s| s.grids())
    }

    /// The incident categories in force (updated by sync).
    pub fn categories(&self) -> Result<Vec<Category>> {
        self.with(|s| Ok(s.catalogue().categories.clone()))
    }

    // ----- Places and households -----

    /// Creates a compound, building or unit.
    pub fn create_place(&self, input: NewPlace) -> Result<Place> {
        self.with(|s| s.create_place(&input))
    }

    /// Changes a place.
    pub fn update_place(&self, id: String, changes: Vec<PlaceChange>) -> Result<Place> {
        self.with(|s| s.update_place(&id, &changes))
    }

    /// The places of a grid, optionally of one kind and under one parent.
    pub fn places(&self, grid_id: String, kind: Option<PlaceKind>, parent_id: Option<String>) -> Result<Vec<Place>> {
        self.with(|s| s.places(&grid_id, kind, parent_id.as_deref()))
    }

    /// Creates a household (room).
    pub fn create_household(&self, input: NewHousehold) -> Result<Household> {
        self.with(|s| s.create_household(&input)).map(Into::into)
    }

    /// Changes a household.
    pub fn update_household(&self, id: String, changes: Vec<HouseholdChange>) -> Result<Household> {
        self.with(|s| s.update_household(&id, &changes)).map(Into::into)
    }

    /// The households in a unit (or building).
    pub fn households_in(&self, place_id: String) -> Result<Vec<Household>> {
        self.with(|s| s.households_in(&place_id))
            .map(|v| v.into_iter().map(Into::into).collect())
    }

    // ----- Residents -----

    /// Creates a resident; the birth date is filled from the ID number.
    pub fn create_resident(&self, input: NewResident) -> Result<Resident> {
        let input = input.into_core()?;
        self.with(|s| s.create_resident(&input)).map(Into::into)
    }

    /// Imports many residents: valid rows are saved, each refused row is
    /// reported with its field and rule (nothing of it written).
    pub fn import_residents(&self, rows: Vec<NewResident>) -> Result<ImportReport> {
        // A row whose birth date cannot be read is refused like the core's
        // bad rows: reported with its index, the other rows imported.
        let (mut index, mut valid, mut refused) = (Vec::new(), Vec::new(), Vec::new());
        for (i, row) in rows.into_iter().enumerate() {
            match row.into_core() {
                Ok(r) => {
                    index.push(i);
                    valid.push(r);
                }
                Err(e) => refused.push((i, e)),
            }
        }
        let mut report = self.with(|s| s.import_residents(&valid))?;
        report.rejected = (report.rejected.into_iter())
            .map(|(i, e)| (index.get(i).copied().unwrap_or(i), e))
            .chain(refused)
            .collect();
        report.rejected.sort_by_key(|(i, _)| *i);
        Ok(report.into())
    }

    /// Changes a resident, field by field.
    pub fn update_resident(&self, id: String, changes: Vec<ResidentChange>) -> Result<Resident> {
        let changes = changes
            .into_iter()
            .map(ResidentChange::into_core)
            .collect::<Result<Vec<_>, _>>()?;
        self.with(|s| s.update_resident(&id, &changes)).map(Into::into)
    }

    /// Deletes a resident (kept as a tombstone until the server confirms).
    pub fn delete_resident(&self, id: String) -> Result<()> {
        self.with(|s| s.delete_resident(&id))
    }

    /// One resident.
    pub fn get_resident(&self, id: String) -> Result<Resident> {
        self.with(|s| s.get_resident(&id)).map(Into::into)
    }

    /// Residents matching every filter given, a page at a time.
    pub fn search_residents(&self, query: ResidentQuery, page: PageRequest) -> Result<ResidentPage> {
        let page = self.with(|s| s.search_residents(&query.into(), &page.into()))?;
        Ok(ResidentPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next,
        })
    }

    /// The residents of a household.
    pub fn residents_of_household(&self, household_id: String) -> Result<Vec<Resident>> {
        self.with(|s| s.residents_of_household(&household_id))
            .map(|v| v.into_iter().map(Into::into).collect())
    }

    // ----- Incidents -----

    /// Reports an incident in one step, with its photos.
    pub fn report_incident(&self, input: NewIncident, photos: Vec<NewPhoto>) -> Result<Incident> {
        let photos = crate::types::photos(photos);
        self.with(|s| s.report_incident(&input, &photos)).map(Into::into)
    }

    /// Saves an incident draft: kept on this phone, not sent, survives restarts.
    pub fn create_incident_draft(&self, input: NewIncident) -> Result<Incident> {
        self.with(|s| s.create_incident_draft(&input)).map(Into::into)
    }

    /// Changes a draft.
    pub fn update_incident_draft(&self, id: String, changes: Vec<IncidentChange>) -> Result<Incident> {
        self.with(|s| s.update_incident_draft(&id, &changes)).map(Into::into)
    }

    /// Attaches a photo to a draft.
    pub fn attach_incident_photo(&self, incident_id: String, photo: NewPhoto) -> Result<Photo> {
        let photo = photo.into();
        self.with(|s| s.attach_incident_photo(&incident_id, &photo))
    }

    /// Submits a draft (checked against its category's required fields).
    pub fn submit_incident(&self, id: String) -> Result<Incident> {
        self.with(|s| s.submit_incident(&id)).map(Into::into)
    }

    /// Throws a draft away.
    pub fn discard_incident_draft(&self, id: String) -> Result<()> {
        self.with(|s| s.discard_incident_draft(&id))
    }

    /// Adds a worker event (resolved on site, note) to an incident's timeline.
    pub fn add_incident_event(&self, incident_id: String, input: NewIncidentEvent) -> Result<IncidentEvent> {
        let input = core::NewIncidentEvent {
            kind: input.kind,
            note: input.note,
            photos: crate::types::photos(input.photos),
        };
        self.with(|s| s.add_incident_event(&incident_id, &input))
            .map(Into::into)
    }

    /// One incident, with its current status and deadline.
    pub fn get_incident(&self, id: String) -> Result<Incident> {
        self.with(|s| s.get_incident(&id)).map(Into::into)
    }

    /// An incident's timeline, oldest first.
    pub fn incident_timeline(&self, incident_id: String) -> Result<Vec<IncidentEvent>> {
        self.with(|s| s.incident_timeline(&incident_id))
            .map(|v| v.into_iter().map(Into::into).collect())
    }

    /// Incidents matching the filters, newest first, a page at a time.
    pub fn list_incidents(&self, query: IncidentQuery, page: PageRequest) -> Result<IncidentPage> {
        let page = self.with(|s| s.list_incidents(&query.into(), &page.into()))?;
        Ok(IncidentPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next,
        })
    }

    // ----- Service logs, photos, overview -----

    /// Logs help given to residents.
    pub fn create_service_log(&self, input: NewServiceLog) -> Result<ServiceLog> {
        let input = input.into();
        self.with(|s| s.create_service_log(&input)).map(Into::into)
    }

    /// One service log.
    pub fn get_service_log(&self, id: String) -> Result<ServiceLog> {
        self.with(|s| s.get_service_log(&id)).map(Into::into)
    }

    /// Every care tag with its name: the built-in ones, then the district's.
    /// Forms offer those not `retired`; a resident may still hold a retired
    /// one (shown by its name) or a newer catalogue's (shown by its code).
    pub fn care_tags(&self) -> Result<Vec<Term>> {
        self.with(|s| Ok(s.catalogue().care_tag_terms()))
    }

    /// Every service kind with its name, as `care_tags`.
    pub fn service_kinds(&self) -> Result<Vec<Term>> {
        self.with(|s| Ok(s.catalogue().service_kind_terms()))
    }

    /// The district's own fields of a kind of record (resident, household,
    /// place, incident), in the catalogue's order, for its forms: each as a
    /// checklist item is (code, label, answer type, required, limits).
    /// Retired fields are left out; their values stay in records' `extra`.
    pub fn form_fields(&self, kind: RecordKind) -> Result<Vec<ChecklistItem>> {
        let entity = core::Entity::from(kind);
        self.with(|s| {
            Ok(s.catalogue()
                .form_fields(entity)
                .map(|d| ChecklistItem::from(&d.item))
                .collect())
        })
    }

    /// Sets and clears values of the district's own fields of a resident,
    /// household, place or incident draft; returns the record's values.
    /// Errors name the field (`extra.gas_supplier`); a required field
    /// cannot be cleared.
    pub fn update_extra(
        &self,
        kind: RecordKind,
        id: String,
        set: Vec<ItemAnswer>,
        clear: Vec<String>,
    ) -> Result<Extra> {
        self.with(|s| s.update_extra(kind.into(), &id, &set, &clear))
    }

    /// The inspection checklists in force (updated by sync), for the forms.
    pub fn checklists(&self) -> Result<Vec<Checklist>> {
        self.with(|s| {
            Ok(s.catalogue()
                .checklists
                .iter()
                .filter(|c| c.usable())
                .map(Into::into)
                .collect())
        })
    }

    /// Records an inspection with its photos; every failed item that raises
    /// an incident reports one, with the item's photos, at once. Errors name
    /// the item (`answers.detector_installed`).
    pub fn record_inspection(&self, input: NewInspection) -> Result<InspectionReport> {
        let input = input.into();
        self.with(|s| s.record_inspection(&input)).map(Into::into)
    }

    /// One inspection.
    pub fn get_inspection(&self, id: String) -> Result<Inspection> {
        self.with(|s| s.get_inspection(&id)).map(Into::into)
    }

    /// A stored photo's bytes (decrypted when the store is keyed).
    pub fn photo_bytes(&self, photo: Photo) -> Result<Vec<u8>> {
        self.with(|s| s.photo_bytes(&photo))
    }

    /// The counts of a grid's home screen.
    pub fn dashboard(&self, grid_id: String) -> Result<Dashboard> {
        self.with(|s| s.dashboard(&grid_id)).map(Into::into)
    }

    /// The visits and phone check-ins of a grid not yet made in their
    /// period under the district's visit rules, by server time: overdue
    /// first, then by due date. A service log of a kind the rule counts,
    /// linked to the resident, completes one.
    pub fn due_visits(&self, grid_id: String) -> Result<Vec<DueVisit>> {
        self.with(|s| s.due_visits(&grid_id))
            .map(|v| v.into_iter().map(Into::into).collect())
    }

    /// How the records on this phone stand against the server.
    pub fn status_counts(&self) -> Result<StatusCounts> {
        self.with(|s| s.status_counts())
    }

    /// When the last sync finished (device ms), if ever.
    pub fn last_sync_at_ms(&self) -> Result<Option<i64>> {
        self.with(|s| s.last_sync_at())
    }

    /// The concurrent edits the server recorded on a record, newest first:
    /// which field, the value in force and the value it replaced (JSON text;
    /// personal data when the field is).
    pub fn conflicts_of(&self, entity_id: String) -> Result<Vec<FieldConflict>> {
        self.with(|s| s.conflicts_of(&entity_id)).map(|list| {
            list.into_iter()
                .map(|(field, kept, replaced)| FieldConflict {
                    field,
                    kept_json: kept.to_string(),
                    replaced_json: replaced.to_string(),
                })
                .collect()
        })
    }

    /// Marks a record's conflicts as seen by the worker (its status returns
    /// to its sync state).
    pub fn acknowledge_conflicts(&self, entity_id: String) -> Result<()> {
        self.with(|s| s.acknowledge_conflicts(&entity_id))
    }
}

/// Where the store of one account lives in a folder of stores (`dir`): a
/// phone shared by workers in shifts opens one store, with its own key, per
/// account, so switching accounts never mixes their data.
#[uniffi::export]
pub fn store_path_for_account(dir: String, account_id: String) -> String {
    core::store_path_for_account(std::path::Path::new(&dir), &account_id)
        .to_string_lossy()
        .into_owned()
}

/// Moves a store that cannot be opened (its key lost, the file damaged) out of
/// the way with its photos, so the app can start afresh without destroying what
/// may be the only copy of a day's work. Returns the new path.
#[uniffi::export]
pub fn move_store_aside(path: String) -> Result<String> {
    guard(|| {
        let now = chrono::Utc::now().timestamp_millis();
        Ok(Store::move_aside(&path, now)?.to_string_lossy().into_owned())
    })
}

/// A concurrent edit of one field: another phone changed it too, the server
/// kept the later change and recorded the other.
#[derive(uniffi::Record, Clone, Debug)]
pub struct FieldConflict {
    /// The field (`phone`, `notes`, ...).
    pub field: String,
    /// The value in force, as JSON.
    pub kept_json: String,
    /// The value it replaced, as JSON.
    pub replaced_json: String,
}

/// What an ID number tells, for filling a form as it is typed.
#[derive(uniffi::Record, Clone, Debug)]
pub struct IdNumberInfo {
    /// Birth date, `YYYY-MM-DD`.
    pub birth_date: String,
    /// Sex from the sequence digit.
    pub sex: Sex,
}

/// Checks an 18-character ID number (region, date, check character) and
/// returns what it tells; a `Validation` error on field `id_number` otherwise.
#[uniffi::export]
pub fn check_id_number(value: String) -> Result<IdNumberInfo> {
    guard(|| {
        let today = chrono::Local::now().date_naive();
        let id = IdNumber::parse(&value, today).map_err(|code| core::Error::invalid("id_number", code))?;
        Ok(IdNumberInfo {
            birth_date: id.birth_date().to_string(),
            sex: id.sex(),
        })
    })
}

/// A phone number as the form should show it.
#[derive(uniffi::Record, Clone, Debug)]
pub struct PhoneInfo {
    /// Normalised: `13812345678`, `0546-8123456`.
    pub normalized: String,
    /// `true` for a mobile, `false` for a landline.
    pub mobile: bool,
    /// Something the worker should confirm before saving (the number is
    /// saved either way): `unallocated_segment` for a mobile number in a
    /// segment no operator has today (a typo, or a segment newer than this
    /// app).
    pub warning: Option<String>,
}

/// Checks a phone number as it is typed; a `Validation` error on field
/// `phone` if it is not a mainland mobile or landline number.
#[uniffi::export]
pub fn check_phone(value: String) -> Result<PhoneInfo> {
    guard(|| {
        let phone = validate::Phone::parse(&value).map_err(|code| core::Error::invalid("phone", code))?;
        Ok(PhoneInfo {
            normalized: phone.as_str().to_owned(),
            mobile: phone.kind() == validate::phone::PhoneKind::Mobile,
            warning: phone.warning().map(|w| w.as_str().to_owned()),
        })
    })
}

/// A name masked for lists and notices (`张*明`).
#[uniffi::export]
pub fn mask_name(name: String) -> String {
    privacy::mask_name(&name)
}

/// An ID number masked for display (region and check character kept).
#[uniffi::export]
pub fn mask_id_number(id_number: String) -> String {
    validate::id_number::mask_id_number(&id_number)
}

/// A phone number masked for display (`138****5678`).
#[uniffi::export]
pub fn mask_phone(phone: String) -> String {
    validate::phone::mask_phone(&phone)
}
