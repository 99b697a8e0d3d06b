//! Accounts, grids, departments (administered from the command line or a
//! seed file), login, and the bearer-token check every request passes.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use fieldgrid_protocol::{GridInfo, LoginRequest, LoginResponse, Role, codes};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiJson, ApiResult};
use crate::{AppState, db_call};

/// Adds or replaces a grid.
pub fn add_grid(conn: &Connection, g: &GridInfo) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO grids (id, code, name, community, sub_district) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET code = ?2, name = ?3, community = ?4, sub_district = ?5",
        params![g.id, g.code, g.name, g.community, g.sub_district],
    )?;
    Ok(())
}

/// Adds a department the centre dispatches to.
pub fn add_department(conn: &Connection, id: &str, name: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO departments (id, name) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET name = ?2",
        params![id, name],
    )?;
    Ok(())
}

/// Adds an account (or changes its password and role); returns its id.
pub fn add_account(conn: &Connection, username: &str, password: &str, role: Role) -> Result<String, String> {
    add_account_with(conn, username, password, role, &Argon2::default())
}

/// Password hashing cheap enough for thousands of simulated accounts (load
/// tests only: the parameters travel in the stored hash).
pub fn cheap_hasher() -> Argon2<'static> {
    let params = argon2::Params::new(64, 1, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// [`add_account`] with a chosen hasher.
pub fn add_account_with(
    conn: &Connection,
    username: &str,
    password: &str,
    role: Role,
    hasher: &Argon2<'_>,
) -> Result<String, String> {
    if username.trim().is_empty() || password.len() < 8 {
        return Err("a user name and a password of at least 8 characters are required".into());
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let hash = hasher
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| e.to_string())?
        .to_string();
    let role = match role {
        Role::Worker => "worker",
        Role::Operator => "operator",
    };
    let id = format!("acct-{}", uuid::Uuid::now_v7());
    conn.query_row(
        "INSERT INTO accounts (id, username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (username) DO UPDATE SET password_hash = ?3, role = ?4 RETURNING id",
        params![id, username.trim(), hash, role, chrono::Utc::now().timestamp_millis()],
        |r| r.get(0),
    )
    .map_err(|e| e.to_string())
}

/// How long a device may still push to a grid taken from its account.
pub const DRAIN_MS: i64 = 7 * 24 * 3_600_000;

/// Replaces the grids assigned to an account. Every grid must exist. Grids
/// taken away stay writable (not readable) for [`DRAIN_MS`], so the old
/// device can send what it captured there before its copy is removed.
pub fn assign_grids(conn: &Connection, account_id: &str, grid_ids: &[String], now: i64) -> Result<(), String> {
    let tx = conn.unchecked_transaction().map_err(|e| e.to_string())?;
    tx.execute(
        "UPDATE assignments SET revoked_at = coalesce(revoked_at, ?2)
         WHERE account_id = ?1 AND grid_id NOT IN (SELECT value FROM json_each(?3))",
        params![
            account_id,
            now,
            serde_json::to_string(grid_ids).map_err(|e| e.to_string())?
        ],
    )
    .map_err(|e| e.to_string())?;
    for g in grid_ids {
        tx.execute(
            "INSERT INTO assignments (account_id, grid_id) VALUES (?1, ?2)
             ON CONFLICT (account_id, grid_id) DO UPDATE SET revoked_at = NULL",
            params![account_id, g],
        )
        .map_err(|_| format!("unknown grid {g}"))?;
    }
    tx.commit().map_err(|e| e.to_string())
}

/// The account id of a user name.
pub fn account_id(conn: &Connection, username: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT id FROM accounts WHERE username = ?1", [username], |r| r.get(0))
        .optional()
}

/// The grids assigned to an account.
pub fn grids_of(conn: &Connection, account_id: &str) -> rusqlite::Result<Vec<GridInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.id, g.code, g.name, g.community, g.sub_district FROM assignments a JOIN grids g ON g.id = a.grid_id
         WHERE a.account_id = ?1 AND a.revoked_at IS NULL ORDER BY g.code",
    )?;
    let rows = stmt.query_map([account_id], |r| {
        Ok(GridInfo {
            id: r.get(0)?,
            code: r.get(1)?,
            name: r.get(2)?,
            community: r.get(3)?,
            sub_district: r.get(4)?,
        })
    })?;
    rows.collect()
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `POST /v1/session`.
pub async fn login(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<axum::Json<LoginResponse>> {
    let now = state.now_ms();
    let ttl = state.config.token_ttl_ms;
    let response = db_call(&state, move |conn| {
        let row: Option<(String, String, String)> = conn
            .query_row(
                "SELECT id, password_hash, role FROM accounts WHERE username = ?1",
                [req.username.trim()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let bad = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::BAD_CREDENTIALS,
                "wrong user name or password",
            )
        };
        let (account_id, hash, role) = row.ok_or_else(bad)?;
        let parsed = PasswordHash::new(&hash).map_err(ApiError::internal)?;
        Argon2::default()
            .verify_password(req.password.as_bytes(), &parsed)
            .map_err(|_| bad())?;
        if req.device_id.trim().is_empty() || req.device_id.len() > 100 {
            return Err(ApiError::bad_request("device_id is required"));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(ApiError::internal)?;
        let token = hex::encode(raw);
        conn.execute("DELETE FROM tokens WHERE expires_at < ?1", [now])?;
        conn.execute(
            "INSERT INTO tokens (hash, account_id, device_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash(&token), account_id, req.device_id, now + ttl],
        )?;
        let role = if role == "operator" {
            Role::Operator
        } else {
            Role::Worker
        };
        Ok(LoginResponse {
            grids: grids_of(conn, &account_id)?,
            token,
            expires_at_ms: now + ttl,
            account_id,
            role,
            server_time_ms: now,
        })
    })
    .await?;
    tracing::info!(account = %response.account_id, "signed in");
    Ok(axum::Json(response))
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Account id.
    pub account_id: String,
    /// Role.
    pub role: Role,
    /// Device the token was issued to.
    pub device_id: String,
    /// Grids assigned (workers).
    pub grids: Vec<String>,
    /// Grids taken away recently: still writable, no longer readable.
    pub draining: Vec<String>,
}

impl Caller {
    /// Whether the caller may read and write `grid_id`.
    pub fn may_access(&self, grid_id: &str) -> bool {
        self.role == Role::Operator || self.grids.iter().any(|g| g == grid_id)
    }

    /// Whether the caller may send operations on `grid_id`.
    pub fn may_write(&self, grid_id: &str) -> bool {
        self.may_access(grid_id) || self.draining.iter().any(|g| g == grid_id)
    }

    /// The grids whose records the caller may send: assigned, or recently
    /// taken away.
    pub fn writable_grids(&self) -> Vec<&str> {
        self.grids.iter().chain(&self.draining).map(String::as_str).collect()
    }

    /// Refuses anyone but a centre operator.
    pub fn require_operator(&self) -> ApiResult<()> {
        match self.role {
            Role::Operator => Ok(()),
            Role::Worker => Err(ApiError::forbidden("centre operators only")),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let unauthenticated = || ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED, "sign in first");
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthenticated)?
            .to_owned();
        let now = state.now_ms();
        db_call(state, move |conn| {
            let row: Option<(String, String, i64, String)> = conn
                .prepare_cached(
                    "SELECT t.account_id, t.device_id, t.expires_at, a.role FROM tokens t
                     JOIN accounts a ON a.id = t.account_id WHERE t.hash = ?1",
                )?
                .query_row([token_hash(&token)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()?;
            let (account_id, device_id, expires_at, role) = row.ok_or_else(unauthenticated)?;
            if expires_at <= now {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    codes::AUTH_EXPIRED,
                    "the session has expired: sign in again",
                ));
            }
            let grids = grids_of(conn, &account_id)?.into_iter().map(|g| g.id).collect();
            let draining = conn
                .prepare_cached("SELECT grid_id FROM assignments WHERE account_id = ?1 AND revoked_at > ?2")?
                .query_map(params![account_id, now - DRAIN_MS], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            let role = if role == "operator" {
                Role::Operator
            } else {
                Role::Worker
            };
            Ok(Caller {
                account_id,
                role,
                device_id,
                grids,
                draining,
            })
        })
        .await
    }
}
