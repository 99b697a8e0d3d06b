//! Screens that follow the data: the core tells one listener per store which
//! kinds of record and which grids each committed write changed (never a
//! record's content). The Kotlin and Swift layers turn this into lists that
//! re-run their query when their data changed (`FieldGrid.observe…`).

use std::sync::Arc;

use fieldgrid_core as core;

use crate::store::FieldGridStore;

/// A kind of record.
#[derive(uniffi::Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// Compounds, buildings and units.
    Place,
    /// Households.
    Household,
    /// Residents.
    Resident,
    /// Incidents.
    Incident,
    /// Steps of an incident's timeline.
    IncidentEvent,
    /// Services given.
    ServiceLog,
    /// Inspections.
    Inspection,
    /// Photos' records.
    Photo,
}

impl From<core::Entity> for RecordKind {
    fn from(e: core::Entity) -> Self {
        match e {
            core::Entity::Place => RecordKind::Place,
            core::Entity::Household => RecordKind::Household,
            core::Entity::Resident => RecordKind::Resident,
            core::Entity::Incident => RecordKind::Incident,
            core::Entity::IncidentEvent => RecordKind::IncidentEvent,
            core::Entity::ServiceLog => RecordKind::ServiceLog,
            core::Entity::Inspection => RecordKind::Inspection,
            core::Entity::Photo => RecordKind::Photo,
        }
    }
}

impl From<RecordKind> for core::Entity {
    fn from(k: RecordKind) -> Self {
        match k {
            RecordKind::Place => core::Entity::Place,
            RecordKind::Household => core::Entity::Household,
            RecordKind::Resident => core::Entity::Resident,
            RecordKind::Incident => core::Entity::Incident,
            RecordKind::IncidentEvent => core::Entity::IncidentEvent,
            RecordKind::ServiceLog => core::Entity::ServiceLog,
            RecordKind::Inspection => core::Entity::Inspection,
            RecordKind::Photo => core::Entity::Photo,
        }
    }
}

/// What one committed write (a capture, a pulled page) changed.
#[derive(uniffi::Record, Clone, Debug, PartialEq, Eq)]
pub struct DataChange {
    /// Kinds of record changed.
    pub kinds: Vec<RecordKind>,
    /// Grids of the changed records still on the phone.
    pub grids: Vec<String>,
    /// Some change's grid is unknown (a record removed): every grid counts.
    pub any_grid: bool,
}

/// Receives [`DataChange`]s, on the thread that wrote, after the commit.
/// Keep it quick (post to the UI's scheduler), never call the store from it,
/// and never throw from it.
#[uniffi::export(with_foreign)]
pub trait ChangeListener: Send + Sync {
    /// One write's changes.
    fn on_change(&self, change: DataChange);
}

struct Forward(Arc<dyn ChangeListener>);

impl core::ChangeListener for Forward {
    fn changed(&self, change: &core::DataChange) {
        self.0.on_change(DataChange {
            kinds: change.entities.iter().copied().map(RecordKind::from).collect(),
            grids: change.grids.clone(),
            any_grid: change.any_grid,
        });
    }
}

#[uniffi::export]
impl FieldGridStore {
    /// Tells `listener` of every change committed from now on (`None`:
    /// stop). One listener per store; a new one replaces the last.
    pub fn set_change_listener(&self, listener: Option<Arc<dyn ChangeListener>>) {
        if let Ok(store) = self.core() {
            store.set_change_listener(listener.map(|l| Arc::new(Forward(l)) as Arc<dyn core::ChangeListener>));
        }
    }
}
