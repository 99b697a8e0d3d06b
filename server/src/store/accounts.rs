//! Accounts, grids and departments, sessions, devices, failed sign-ins and
//! the audit log: each statement written once for both engines
//! ([`super::sql`]).

use fieldgrid_protocol::{GridInfo, Role};

use super::error::{StoreError, StoreResult};
use super::sql::{Conn, Row, args, run};
use super::{
    AccountInfo, AuditEntry, AuditRange, Credentials, DRAIN_MS, DeviceInfo, FAILURES_FORGOTTEN_MS, Lockout, Session,
    Store, WipeMode, lock_ms,
};

fn role_of(s: &str) -> Role {
    Role::parse(s).unwrap_or(Role::Worker)
}

fn new_account_id() -> String {
    format!("acct-{}", uuid::Uuid::now_v7())
}

pub(super) fn grid_of(r: &Row) -> StoreResult<GridInfo> {
    Ok(GridInfo {
        id: r.text(0)?,
        code: r.text(1)?,
        name: r.text(2)?,
        community: r.text(3)?,
        sub_district: r.text(4)?,
    })
}

fn device_of(r: &Row) -> StoreResult<DeviceInfo> {
    Ok(DeviceInfo {
        device_id: r.text(0)?,
        first_seen_ms: r.int(1)?,
        last_seen_ms: r.int(2)?,
        revoked_at_ms: r.opt_int(3)?,
        wipe: r.opt_text(4)?.as_deref().and_then(WipeMode::parse),
        wipe_requested_at_ms: r.opt_int(5)?,
        wiped_at_ms: r.opt_int(6)?,
    })
}

fn audit_entry_of(r: &Row) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        id: r.int(0)?,
        at_ms: r.int(1)?,
        actor: r.text(2)?,
        role: r.text(3)?,
        action: r.text(4)?,
        target: r.opt_text(5)?,
        detail: r.json(6).unwrap_or_default(),
        address: r.opt_text(7)?,
    })
}

/// Ends every session of an account, or of one of its devices.
async fn end_sessions(c: &mut impl Conn, account_id: &str, device_id: Option<&str>) -> StoreResult<()> {
    match device_id {
        None => {
            c.execute("DELETE FROM tokens WHERE account_id = $1", args![account_id])
                .await?
        }
        Some(d) => {
            c.execute(
                "DELETE FROM tokens WHERE account_id = $1 AND device_id = $2",
                args![account_id, d],
            )
            .await?
        }
    };
    Ok(())
}

impl Store {
    /// Adds or replaces a grid.
    pub async fn add_grid(&self, g: &GridInfo) -> StoreResult<()> {
        let g = g.clone();
        run!(self, write, |c| async move {
            c.execute(
                "INSERT INTO grids (id, code, name, community, sub_district) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET code = $2, name = $3, community = $4, sub_district = $5",
                args![&g.id, &g.code, &g.name, &g.community, &g.sub_district],
            )
            .await?;
            c.execute(
                "UPDATE incidents SET community = $2, sub_district = $3 WHERE grid_id = $1",
                args![&g.id, &g.community, &g.sub_district],
            )
            .await?;
            Ok(())
        })
    }

    /// Adds or renames a department.
    pub async fn add_department(&self, id: &str, name: &str) -> StoreResult<()> {
        let (id, name) = (id.to_owned(), name.to_owned());
        run!(self, write, |c| async move {
            c.execute(
                "INSERT INTO departments (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = $2",
                args![&id, &name],
            )
            .await?;
            Ok(())
        })
    }

    /// Adds an account with a password hash (or replaces its hash and role); its id.
    pub async fn add_account(&self, username: &str, password_hash: &str, role: Role, now: i64) -> StoreResult<String> {
        let (username, hash) = (username.to_owned(), password_hash.to_owned());
        run!(self, write, |c| async move {
            c.query_one(
                "INSERT INTO accounts (id, username, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (username) DO UPDATE SET password_hash = $3, role = $4 RETURNING id",
                args![&new_account_id(), &username, &hash, role.as_str(), now],
            )
            .await?
            .text(0)
        })
    }

    /// Adds a department account (or replaces its hash); its id.
    pub async fn add_department_account(
        &self,
        username: &str,
        hash: &str,
        department: &str,
        now: i64,
    ) -> StoreResult<String> {
        let (username, hash, department) = (username.to_owned(), hash.to_owned(), department.to_owned());
        run!(self, write, |c| async move {
            c.query_one(
                "INSERT INTO accounts (id, username, password_hash, role, department_id, created_at)
                 VALUES ($1, $2, $3, 'department', $4, $5)
                 ON CONFLICT (username) DO UPDATE SET password_hash = $3, role = 'department', department_id = $4
                 RETURNING id",
                args![&new_account_id(), &username, &hash, &department, now],
            )
            .await
            .map_err(|_| StoreError::Refused("unknown department"))?
            .text(0)
        })
    }

    /// Replaces the grids assigned to an account; grids taken away stay
    /// writable for [`DRAIN_MS`]. Every grid must exist.
    pub async fn assign_grids(&self, account_id: &str, grids: &[String], now: i64) -> StoreResult<()> {
        let (account_id, grids) = (account_id.to_owned(), grids.to_vec());
        run!(self, write, |c| async move {
            let kept = c.dialect().in_list("grid_id", 3);
            c.execute(
                &format!(
                    "UPDATE assignments SET revoked_at = coalesce(revoked_at, $2) WHERE account_id = $1 AND NOT ({kept})"
                ),
                args![&account_id, now, &grids[..]],
            )
            .await?;
            for g in &grids {
                c.execute(
                    "INSERT INTO assignments (account_id, grid_id) VALUES ($1, $2)
                     ON CONFLICT (account_id, grid_id) DO UPDATE SET revoked_at = NULL",
                    args![&account_id, g],
                )
                .await
                .map_err(|_| StoreError::Refused("unknown account or grid"))?;
            }
            Ok(())
        })
    }

    /// The account id of a user name.
    pub async fn account_id(&self, username: &str) -> StoreResult<Option<String>> {
        Ok(self.credentials(username).await?.map(|c| c.account_id))
    }

    /// What signing in as `username` checks.
    pub async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>> {
        let username = username.to_owned();
        run!(self, read, |c| async move {
            let Some(r) = c
                .query_opt(
                    "SELECT id, password_hash, role, department_id, disabled_at IS NOT NULL FROM accounts
                     WHERE username = $1",
                    args![&username],
                )
                .await?
            else {
                return Ok(None);
            };
            Ok(Some(Credentials {
                account_id: r.text(0)?,
                password_hash: r.text(1)?,
                role: role_of(&r.text(2)?),
                department: r.opt_text(3)?,
                disabled: r.flag(4)?,
            }))
        })
    }

    /// Stores a new token (its hash) and drops expired ones.
    pub async fn create_token(
        &self,
        hash: &str,
        account_id: &str,
        device_id: &str,
        expires_at: i64,
        now: i64,
    ) -> StoreResult<()> {
        let (hash, account_id, device_id) = (hash.to_owned(), account_id.to_owned(), device_id.to_owned());
        run!(self, write, |c| async move {
            c.execute("DELETE FROM tokens WHERE expires_at < $1", args![now])
                .await?;
            c.execute(
                "INSERT INTO tokens (hash, account_id, device_id, expires_at) VALUES ($1, $2, $3, $4)",
                args![&hash, &account_id, &device_id, expires_at],
            )
            .await?;
            Ok(())
        })
    }

    /// The session of a token hash.
    pub async fn session(&self, token_hash: &str, now: i64) -> StoreResult<Option<Session>> {
        let token_hash = token_hash.to_owned();
        run!(self, read, |c| async move {
            let Some(r) = c
                .query_opt(
                    "SELECT t.account_id, t.device_id, t.expires_at, a.role, a.department_id, d.wipe, d.wiped_at,
                       d.last_seen
                     FROM tokens t JOIN accounts a ON a.id = t.account_id AND a.disabled_at IS NULL
                     LEFT JOIN devices d ON d.account_id = t.account_id AND d.device_id = t.device_id
                     WHERE t.hash = $1 AND d.revoked_at IS NULL",
                    args![&token_hash],
                )
                .await?
            else {
                return Ok(None);
            };
            let account_id = r.text(0)?;
            let (mut grids, mut draining) = (Vec::new(), Vec::new());
            for a in c
                .query(
                    "SELECT grid_id, revoked_at FROM assignments WHERE account_id = $1",
                    args![&account_id],
                )
                .await?
            {
                match a.opt_int(1)? {
                    None => grids.push(a.text(0)?),
                    Some(at) if at > now - DRAIN_MS => draining.push(a.text(0)?),
                    Some(_) => {}
                }
            }
            grids.sort();
            let wiped = r.opt_int(6)?.is_some();
            Ok(Some(Session {
                account_id,
                device_id: r.text(1)?,
                expires_at: r.int(2)?,
                role: role_of(&r.text(3)?),
                department: r.opt_text(4)?,
                grids,
                draining,
                wipe: r.opt_text(5)?.filter(|_| !wiped).as_deref().and_then(WipeMode::parse),
                last_seen: r.opt_int(7)?.unwrap_or(0),
            }))
        })
    }

    /// The grids assigned to an account now.
    pub async fn grids_of(&self, account_id: &str) -> StoreResult<Vec<GridInfo>> {
        let account_id = account_id.to_owned();
        run!(self, read, |c| async move {
            c.query(
                "SELECT g.id, g.code, g.name, g.community, g.sub_district FROM assignments a JOIN grids g ON g.id = a.grid_id
                 WHERE a.account_id = $1 AND a.revoked_at IS NULL ORDER BY g.code",
                args![&account_id],
            )
            .await?
            .iter()
            .map(grid_of)
            .collect()
        })
    }

    /// Ends the session of a token.
    pub async fn sign_out(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        run!(self, write, |c| async move {
            c.execute("DELETE FROM tokens WHERE hash = $1", args![&token_hash])
                .await?;
            Ok(())
        })
    }

    /// Every account, in user-name order.
    pub async fn accounts(&self) -> StoreResult<Vec<AccountInfo>> {
        run!(self, read, |c| async move {
            let grids = c.dialect().json_array("grid_id", "grid_id");
            c.query(
                &format!(
                    "SELECT a.id, a.username, a.role, a.department_id, a.disabled_at,
                       (SELECT {grids} FROM assignments s WHERE s.account_id = a.id AND s.revoked_at IS NULL)
                     FROM accounts a ORDER BY a.username"
                ),
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(AccountInfo {
                    id: r.text(0)?,
                    username: r.text(1)?,
                    role: role_of(&r.text(2)?),
                    department: r.opt_text(3)?,
                    disabled_at_ms: r.opt_int(4)?,
                    grids: r.json(5)?,
                })
            })
            .collect()
        })
    }

    /// An account.
    pub async fn account(&self, id: &str) -> StoreResult<Option<AccountInfo>> {
        Ok(self.accounts().await?.into_iter().find(|a| a.id == id))
    }

    /// Disables an account (every session ends at once) or enables it again.
    pub async fn set_disabled(&self, account_id: &str, disabled_at: Option<i64>) -> StoreResult<bool> {
        let account_id = account_id.to_owned();
        run!(self, write, |c| async move {
            let n = c
                .execute(
                    "UPDATE accounts SET disabled_at = $2 WHERE id = $1",
                    args![&account_id, disabled_at],
                )
                .await?;
            if disabled_at.is_some() {
                end_sessions(c, &account_id, None).await?;
            }
            Ok(n == 1)
        })
    }

    /// Replaces an account's password hash; every session of it ends.
    pub async fn set_password(&self, account_id: &str, hash: &str) -> StoreResult<bool> {
        let (account_id, hash) = (account_id.to_owned(), hash.to_owned());
        run!(self, write, |c| async move {
            let n = c
                .execute(
                    "UPDATE accounts SET password_hash = $2 WHERE id = $1",
                    args![&account_id, &hash],
                )
                .await?;
            end_sessions(c, &account_id, None).await?;
            Ok(n == 1)
        })
    }

    /// The devices an account signed in from.
    pub async fn devices(&self, account_id: &str) -> StoreResult<Vec<DeviceInfo>> {
        let account_id = account_id.to_owned();
        run!(self, read, |c| async move {
            c.query(
                "SELECT device_id, first_seen, last_seen, revoked_at, wipe, wipe_requested_at, wiped_at
                 FROM devices WHERE account_id = $1 ORDER BY last_seen DESC",
                args![&account_id],
            )
            .await?
            .iter()
            .map(device_of)
            .collect()
        })
    }

    /// Notes a device's sign-in or contact (its first and last seen).
    pub async fn touch_device(&self, account_id: &str, device_id: &str, now: i64) -> StoreResult<()> {
        let (account_id, device_id) = (account_id.to_owned(), device_id.to_owned());
        run!(self, write, |c| async move {
            let last = c.dialect().greatest("devices.last_seen", "$3");
            c.execute(
                &format!(
                    "INSERT INTO devices (account_id, device_id, first_seen, last_seen) VALUES ($1, $2, $3, $3)
                     ON CONFLICT (account_id, device_id) DO UPDATE SET last_seen = {last}"
                ),
                args![&account_id, &device_id, now],
            )
            .await?;
            Ok(())
        })
    }

    /// Revokes a device: its sessions end and it cannot sign in again.
    pub async fn revoke_device(&self, account_id: &str, device_id: &str, now: i64) -> StoreResult<bool> {
        let (account_id, device_id) = (account_id.to_owned(), device_id.to_owned());
        run!(self, write, |c| async move {
            let n = c
                .execute(
                    "UPDATE devices SET revoked_at = coalesce(revoked_at, $3) WHERE account_id = $1 AND device_id = $2",
                    args![&account_id, &device_id, now],
                )
                .await?;
            end_sessions(c, &account_id, Some(&device_id)).await?;
            Ok(n == 1)
        })
    }

    /// Asks a device to wipe itself at its next contact.
    pub async fn request_wipe(&self, account_id: &str, device_id: &str, mode: WipeMode, now: i64) -> StoreResult<bool> {
        let (account_id, device_id) = (account_id.to_owned(), device_id.to_owned());
        run!(self, write, |c| async move {
            let n = c
                .execute(
                    "UPDATE devices SET wipe = $3, wipe_requested_at = $4, wiped_at = NULL
                     WHERE account_id = $1 AND device_id = $2",
                    args![&account_id, &device_id, mode.as_str(), now],
                )
                .await?;
            Ok(n == 1)
        })
    }

    /// A device confirms its wipe: recorded, its sessions end.
    pub async fn confirm_wipe(&self, account_id: &str, device_id: &str, now: i64) -> StoreResult<()> {
        let (account_id, device_id) = (account_id.to_owned(), device_id.to_owned());
        run!(self, write, |c| async move {
            c.execute(
                "UPDATE devices SET wiped_at = $3 WHERE account_id = $1 AND device_id = $2 AND wipe IS NOT NULL",
                args![&account_id, &device_id, now],
            )
            .await?;
            end_sessions(c, &account_id, Some(&device_id)).await
        })
    }

    /// The failed sign-ins counted now under these keys (keys with none,
    /// or only forgotten ones, are left out).
    pub async fn lockouts(&self, keys: &[String], now: i64) -> StoreResult<Vec<Lockout>> {
        let keys = keys.to_vec();
        run!(self, read, |c| async move {
            let of_keys = c.dialect().in_list("key", 1);
            c.query(
                &format!(
                    "SELECT key, failures, locked_until FROM sign_in_failures WHERE {of_keys} AND updated_at >= $2"
                ),
                args![&keys[..], now - FAILURES_FORGOTTEN_MS],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(Lockout {
                    key: r.text(0)?,
                    failures: r.int(1)?,
                    locked_until: r.int(2)?,
                })
            })
            .collect()
        })
    }

    /// Counts a failed sign-in under each key; the lock grows with the count.
    pub async fn sign_in_failed(&self, keys: &[String], now: i64) -> StoreResult<()> {
        let keys = keys.to_vec();
        run!(self, write, |c| async move {
            for key in &keys {
                let failures = c
                    .query_one(
                        "INSERT INTO sign_in_failures (key, failures, locked_until, updated_at) VALUES ($1, 1, 0, $2)
                         ON CONFLICT (key) DO UPDATE SET failures = CASE WHEN sign_in_failures.updated_at < $3 THEN 1
                           ELSE sign_in_failures.failures + 1 END, updated_at = $2
                         RETURNING failures",
                        args![key, now, now - FAILURES_FORGOTTEN_MS],
                    )
                    .await?
                    .int(0)?;
                c.execute(
                    "UPDATE sign_in_failures SET locked_until = $2 WHERE key = $1",
                    args![key, now + lock_ms(failures)],
                )
                .await?;
            }
            Ok(())
        })
    }

    /// Forgets the failures of these keys (a sign-in succeeded).
    pub async fn sign_in_succeeded(&self, keys: &[String]) -> StoreResult<()> {
        let keys = keys.to_vec();
        run!(self, write, |c| async move {
            let of_keys = c.dialect().in_list("key", 1);
            c.execute(
                &format!("DELETE FROM sign_in_failures WHERE {of_keys}"),
                args![&keys[..]],
            )
            .await?;
            Ok(())
        })
    }

    /// Adds a line to the audit log.
    pub async fn audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let e = entry.clone();
        run!(self, write, |c| async move {
            c.execute(
                "INSERT INTO audit (at, actor, role, action, target, detail, address) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                args![e.at_ms, &e.actor, &e.role, &e.action, e.target.as_deref(), &e.detail.to_string(), e.address.as_deref()],
            )
            .await?;
            Ok(())
        })
    }

    /// The audit log after a position, oldest first.
    pub async fn audit_log(&self, range: AuditRange) -> StoreResult<Vec<AuditEntry>> {
        run!(self, read, |c| async move {
            let limit = i64::try_from(range.limit).unwrap_or(i64::MAX);
            c.query(
                &format!(
                    "SELECT id, at, actor, role, action, target, detail, address FROM audit WHERE id > $1 AND id < $2
                     ORDER BY id {} LIMIT $3",
                    range.order()
                ),
                args![range.after, range.before, limit],
            )
            .await?
            .iter()
            .map(audit_entry_of)
            .collect()
        })
    }
}
