//! Signing in and out, the device's id, and the end of a store's life on a
//! phone (remote wipe, logout).

use fieldgrid_protocol::{LoginRequest, LoginResponse};

use super::retry::sync_error;
use super::{Transport, block_on};
use crate::error::{Error, Result};
use crate::model::Grid;
use crate::store::{Store, meta_get, meta_set};

impl Store {
    /// The id this device is known by to the server (made once, kept).
    pub fn device_id(&self) -> Result<String> {
        if let Some(id) = self.read(|c| meta_get(c, "device_id"))? {
            return Ok(id);
        }
        self.write(|tx| {
            if let Some(id) = meta_get(tx, "device_id")? {
                return Ok(id);
            }
            let id = crate::new_id();
            meta_set(tx, "device_id", &id)?;
            Ok(id)
        })
    }

    /// Signs in: keeps the session, records the grids assigned, and marks
    /// grids no longer assigned (their data leaves after their operations are
    /// sent, at the next sync).
    pub async fn login_async(
        &self,
        transport: &impl Transport,
        username: &str,
        password: &str,
    ) -> Result<LoginResponse> {
        let req = LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
            device_id: self.device_id()?,
        };
        let resp = transport.login(&req).await.map_err(sync_error)?;
        // One store, one account: another worker's session never writes here
        // (a phone shared in shifts has a store per account).
        if let Some(owner) = self.read(|c| meta_get(c, "account_id"))?
            && owner != resp.account_id
        {
            if let Err(e) = transport.logout(&resp.token).await {
                tracing::info!(error = %e, "the other account's session could not be ended at once");
            }
            return Err(Error::OtherAccount);
        }
        // A grid this phone did not hold (newly assigned, or given back after
        // it was taken away) has changes older than the pull cursor, which one
        // cursor for all grids would never fetch: pull everything again from
        // the start (changes already here are skipped by their version).
        let held: Vec<String> = self.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM grids WHERE revoked = 0")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let gained = resp.grids.iter().any(|g| !held.contains(&g.id));
        for g in &resp.grids {
            self.put_grid(&Grid::from(g))?;
        }
        let now = self.now_ms();
        self.write(|tx| {
            meta_set(tx, "token", &resp.token)?;
            meta_set(tx, "token_expires_at", &resp.expires_at_ms.to_string())?;
            meta_set(tx, "account_id", &resp.account_id)?;
            meta_set(tx, "clock_offset_ms", &(resp.server_time_ms - now).to_string())?;
            let assigned: Vec<&str> = resp.grids.iter().map(|g| g.id.as_str()).collect();
            tx.execute(
                "UPDATE grids SET revoked = (id NOT IN (SELECT value FROM json_each(?1)))",
                [serde_json::to_string(&assigned)?],
            )?;
            if gained {
                meta_set(tx, "pull_cursor", "0")?;
            }
            Ok(())
        })?;
        if gained && !held.is_empty() {
            tracing::info!("a grid was assigned: its history will be pulled from the start");
        }
        tracing::info!(grids = resp.grids.len(), "signed in");
        Ok(resp)
    }

    /// Signs out: the server ends the session (when it can be reached; an
    /// unreachable server lets the token expire on its own), and the phone
    /// forgets it. The data stays.
    pub async fn sign_out_async(&self, transport: &impl Transport) -> Result<()> {
        // Forgotten here first: a sign-out abandoned while the server is
        // being told still leaves the phone signed out.
        let token = self.read(|c| meta_get(c, "token"))?;
        self.logout()?;
        if let Some(token) = token
            && let Err(e) = transport.logout(&token).await
        {
            tracing::info!(error = %e, "the server could not be told of the sign-out; the session expires on its own");
        }
        Ok(())
    }

    /// Erases the store as the district asked (a lost or retired phone,
    /// [`Error::WipeRequested`]): database, photos and sync state, whatever
    /// waits; then tells the server, whose confirmation ends the session.
    /// The platform's key is the app's to delete.
    pub async fn remote_wipe_async(self, transport: &impl Transport) -> Result<()> {
        let token = self.read(|c| meta_get(c, "token"))?;
        self.wipe(true)?;
        if let Some(token) = token
            && let Err(e) = transport.confirm_wiped(&token).await
        {
            tracing::warn!(error = %e, "wiped; the server could not be told (it will ask again)");
        }
        tracing::warn!("store wiped at the district's request");
        Ok(())
    }

    /// [`Store::login_async`], for blocking code.
    pub fn login(&self, transport: &impl Transport, username: &str, password: &str) -> Result<LoginResponse> {
        block_on(self.login_async(transport, username, password))?
    }

    /// [`Store::sign_out_async`], for blocking code.
    pub fn sign_out(&self, transport: &impl Transport) -> Result<()> {
        block_on(self.sign_out_async(transport))?
    }

    /// [`Store::remote_wipe_async`], for blocking code.
    pub fn remote_wipe(self, transport: &impl Transport) -> Result<()> {
        block_on(self.remote_wipe_async(transport))?
    }

    /// Forgets the session here (the data stays; the server is not told:
    /// see [`Store::sign_out`]).
    pub fn logout(&self) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM meta WHERE key IN ('token', 'token_expires_at')", [])?;
            Ok(())
        })
    }
}
