//! Blocking administration of the storage: what district IT's commands, the
//! demo and the tests do outside HTTP (grids, accounts, departments, the
//! catalogue, bulk building, reading records back).

use argon2::Argon2;
use fieldgrid_domain::catalogue::Catalogue;
use fieldgrid_protocol::{GridInfo, Role};
use tokio::runtime::Handle;

use crate::auth;
use crate::error::ApiError;
use crate::records::Record;
use crate::store::{Location, Store};

fn text(e: ApiError) -> String {
    e.message
}

/// Administration of a store, each call blocking until done. Not for use
/// from inside an async task.
pub struct Admin<'a> {
    store: &'a Store,
    handle: Handle,
}

impl<'a> Admin<'a> {
    /// Administration of `store` on the runtime `handle` (or the current one).
    pub fn new(store: &'a Store, handle: Option<&Handle>) -> Admin<'a> {
        Admin {
            store,
            handle: handle.cloned().unwrap_or_else(Handle::current),
        }
    }

    fn run<T, E: Into<ApiError>>(&self, f: impl std::future::Future<Output = Result<T, E>>) -> Result<T, String> {
        self.handle.block_on(f).map_err(|e| text(e.into()))
    }

    /// Adds or replaces a grid.
    pub fn add_grid(&self, g: &GridInfo) -> Result<(), String> {
        self.run(self.store.add_grid(g))
    }

    /// Adds a department the centre dispatches to.
    pub fn add_department(&self, id: &str, name: &str) -> Result<(), String> {
        self.run(self.store.add_department(id, name))
    }

    /// Adds an account (or changes its password and role); returns its id.
    pub fn add_account(&self, username: &str, password: &str, role: Role) -> Result<String, String> {
        self.add_account_with(username, password, role, &Argon2::default())
    }

    /// [`Admin::add_account`] with a chosen hasher ([`auth::cheap_hasher`]
    /// for load-test accounts).
    pub fn add_account_with(
        &self,
        username: &str,
        password: &str,
        role: Role,
        hasher: &Argon2<'_>,
    ) -> Result<String, String> {
        let hash = auth::hash_password(username, password, hasher)?;
        let now = chrono::Utc::now().timestamp_millis();
        self.run(self.store.add_account(username.trim(), &hash, role, now))
    }

    /// Replaces the grids assigned to an account (grids taken away stay
    /// writable for a while). Every grid must exist.
    pub fn assign_grids(&self, account_id: &str, grids: &[String], now: i64) -> Result<(), String> {
        self.run(self.store.assign_grids(account_id, grids, now))
    }

    /// A worker with these grids (created, or its password and grids replaced).
    pub fn add_worker(
        &self,
        username: &str,
        password: &str,
        grids: &[String],
        hasher: &Argon2<'_>,
    ) -> Result<String, String> {
        let id = self.add_account_with(username, password, Role::Worker, hasher)?;
        self.assign_grids(&id, grids, chrono::Utc::now().timestamp_millis())?;
        Ok(id)
    }

    /// A department's account (created, or its password replaced).
    pub fn add_department_account(&self, username: &str, password: &str, department: &str) -> Result<String, String> {
        let hash = auth::hash_password(username, password, &Argon2::default())?;
        let now = chrono::Utc::now().timestamp_millis();
        let id = self.run(
            self.store
                .add_department_account(username.trim(), &hash, department, now),
        )?;
        self.audit(
            "add_department_account",
            Some(&id),
            serde_json::json!({"department": department}),
        )?;
        Ok(id)
    }

    /// Disables an account (every session ends) or enables it again.
    pub fn set_disabled(&self, account_id: &str, disabled: bool) -> Result<(), String> {
        let at = disabled.then(|| chrono::Utc::now().timestamp_millis());
        if !self.run(self.store.set_disabled(account_id, at))? {
            return Err("no such account".into());
        }
        let action = if disabled { "disable_account" } else { "enable_account" };
        self.audit(action, Some(account_id), serde_json::json!({}))
    }

    /// Replaces an account's password: every session of it ends.
    pub fn reset_password(&self, account_id: &str, username: &str, password: &str) -> Result<(), String> {
        let hash = auth::hash_password(username, password, &Argon2::default())?;
        if !self.run(self.store.set_password(account_id, &hash))? {
            return Err("no such account".into());
        }
        self.audit("reset_password", Some(account_id), serde_json::json!({}))
    }

    /// The devices an account signed in from.
    pub fn devices(&self, account_id: &str) -> Result<Vec<crate::store::DeviceInfo>, String> {
        self.run(self.store.devices(account_id))
    }

    /// Revokes a device: its sessions end and it cannot sign in again.
    pub fn revoke_device(&self, account_id: &str, device_id: &str) -> Result<(), String> {
        let now = chrono::Utc::now().timestamp_millis();
        if !self.run(self.store.revoke_device(account_id, device_id, now))? {
            return Err("no such device".into());
        }
        self.audit(
            "revoke_device",
            Some(account_id),
            serde_json::json!({"device": device_id}),
        )
    }

    /// Asks a device to wipe itself at its next contact.
    pub fn wipe_device(&self, account_id: &str, device_id: &str, mode: crate::store::WipeMode) -> Result<(), String> {
        let now = chrono::Utc::now().timestamp_millis();
        if !self.run(self.store.request_wipe(account_id, device_id, mode, now))? {
            return Err("no such device".into());
        }
        self.audit(
            "wipe_device",
            Some(account_id),
            serde_json::json!({"device": device_id, "mode": mode.as_str()}),
        )
    }

    /// The audit log after a position.
    pub fn audit_log(&self, after: i64, limit: usize) -> Result<Vec<crate::store::AuditEntry>, String> {
        self.run(self.store.audit_log(crate::store::AuditRange {
            after,
            before: i64::MAX,
            limit,
            newest_first: false,
        }))
    }

    /// Writes district IT's action to the audit log (actor `cli`).
    fn audit(&self, action: &str, target: Option<&str>, detail: serde_json::Value) -> Result<(), String> {
        self.run(self.store.audit(&crate::store::AuditEntry {
            id: 0,
            at_ms: chrono::Utc::now().timestamp_millis(),
            actor: "cli".into(),
            role: "admin".into(),
            action: action.into(),
            target: target.map(str::to_owned),
            detail,
            address: None,
        }))
    }

    /// The account id of a user name.
    pub fn account_id(&self, username: &str) -> Result<Option<String>, String> {
        self.run(self.store.account_id(username))
    }

    /// The catalogue in force.
    pub fn catalogue(&self) -> Result<Catalogue, String> {
        self.run(self.store.catalogue())
    }

    /// Publishes a newer catalogue.
    pub fn publish_catalogue(&self, catalogue: &Catalogue, now: i64) -> Result<(), String> {
        self.run(self.store.publish_catalogue(catalogue, now))?;
        self.audit(
            "publish_catalogue",
            Some(crate::store::CATALOGUE_ID),
            serde_json::json!({"version": catalogue.version}),
        )
    }

    /// A record by id.
    pub fn record(&self, id: &str) -> Result<Option<Record>, String> {
        self.run(self.store.record(id))
    }

    /// Records of an entity, optionally of one grid.
    pub fn records_of(&self, entity: &str, grid: Option<&str>) -> Result<Vec<Record>, String> {
        self.run(self.store.records_of(entity, grid))
    }

    /// Receipts stored.
    pub fn receipt_count(&self) -> Result<i64, String> {
        self.run(self.store.receipt_count())
    }

    /// An account's unfinished upload of a photo: (received, size).
    pub fn upload(&self, sha: &str, account_id: &str) -> Result<Option<(i64, i64)>, String> {
        self.run(self.store.upload(sha, account_id))
    }

    /// Removes unfinished uploads left alone (see `photos::expire_uploads`).
    pub fn expire_uploads(&self, photo_dir: &std::path::Path, now: i64) -> Result<usize, String> {
        self.run(crate::photos::expire_uploads(self.store, photo_dir, now))
    }

    /// Saves records as they are (bulk building: the caller has checked them).
    pub fn save_records(&self, records: Vec<Record>, now: i64) -> Result<(), String> {
        self.run(self.store.save_records(records, now))
    }

    /// Repairs the records phones cannot read (`repair::repair_records`).
    pub fn repair_records(&self, now: i64, dry_run: bool) -> Result<crate::repair::Repair, String> {
        self.run(crate::repair::repair_records(self.store, now, dry_run))
    }

    /// Removes receipts stored before `before`; how many went.
    pub fn purge_receipts(&self, before: i64) -> Result<u64, String> {
        self.run(self.store.purge_receipts(before, 5_000))
    }

    /// Removes receipts of refused operations stored before `before`.
    pub fn purge_rejected_receipts(&self, before: i64) -> Result<u64, String> {
        self.run(self.store.purge_rejected_receipts(before, 5_000))
    }
}

/// A store opened for administration alone (the server's commands), with a
/// runtime of its own.
pub struct AdminSession {
    runtime: tokio::runtime::Runtime,
    store: Store,
}

impl AdminSession {
    /// Opens the storage at `location` (creating or upgrading it).
    pub fn open(location: &Location) -> Result<AdminSession, String> {
        // Multi-threaded: the database connections' tasks must run while
        // `Admin` blocks on a handle (a current-thread runtime drives its
        // tasks only inside its own `block_on`).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let store = runtime.block_on(Store::open(location, std::time::Duration::from_secs(300)))?;
        Ok(AdminSession { runtime, store })
    }

    /// Its administration.
    pub fn admin(&self) -> Admin<'_> {
        Admin::new(&self.store, Some(self.runtime.handle()))
    }

    /// The store, for work that is not administration (bulk building).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs a future on the session's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}
