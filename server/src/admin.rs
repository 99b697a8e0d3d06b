//! Blocking administration of the storage: what district IT's commands, the
//! demo and the tests do outside HTTP (grids, accounts, departments, the
//! catalogue, bulk building, reading records back).

use argon2::Argon2;
use fieldgrid_core::catalogue::Catalogue;
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

    fn run<T>(&self, f: impl std::future::Future<Output = Result<T, ApiError>>) -> Result<T, String> {
        self.handle.block_on(f).map_err(text)
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
        self.run(self.store.publish_catalogue(catalogue, now))
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

    /// Removes receipts stored before `before`; how many went.
    pub fn purge_receipts(&self, before: i64) -> Result<u64, String> {
        self.run(self.store.purge_receipts(before, 5_000))
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
