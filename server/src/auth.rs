//! Sign-in and the bearer-token check every request passes. Password
//! hashing (Argon2) runs on a blocking thread, never holding a database
//! connection.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use fieldgrid_protocol::{LoginRequest, LoginResponse, Role, codes};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ApiJson, ApiResult};

pub use crate::store::DRAIN_MS;

/// Password hashing cheap enough for thousands of simulated accounts (load
/// tests only: the parameters travel in the stored hash).
pub fn cheap_hasher() -> Argon2<'static> {
    let params = argon2::Params::new(64, 1, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// The stored form of a password (Argon2id PHC string, random salt).
pub fn hash_password(username: &str, password: &str, hasher: &Argon2<'_>) -> Result<String, String> {
    if username.trim().is_empty() || password.len() < 8 {
        return Err("a user name and a password of at least 8 characters are required".into());
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Ok(hasher
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| e.to_string())?
        .to_string())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// `POST /v1/session`.
pub async fn login(
    State(state): State<Arc<AppState>>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<axum::Json<LoginResponse>> {
    let bad = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::BAD_CREDENTIALS,
            "wrong user name or password",
        )
    };
    let credentials = state.store.credentials(req.username.trim()).await?.ok_or_else(bad)?;
    let hash = credentials.password_hash.clone();
    let password = req.password;
    let matches = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .map_err(ApiError::internal)?;
    if !matches {
        return Err(bad());
    }
    if req.device_id.trim().is_empty() || req.device_id.len() > 100 {
        return Err(ApiError::bad_request("device_id is required"));
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(ApiError::internal)?;
    let token = hex::encode(raw);
    let now = state.now_ms();
    let expires = now + state.config.token_ttl_ms;
    state
        .store
        .create_token(
            &token_hash(&token),
            &credentials.account_id,
            &req.device_id,
            expires,
            now,
        )
        .await?;
    let grids = state.store.grids_of(&credentials.account_id).await?;
    tracing::info!(account = %credentials.account_id, "signed in");
    Ok(axum::Json(LoginResponse {
        grids,
        token,
        expires_at_ms: expires,
        account_id: credentials.account_id,
        role: credentials.role,
        server_time_ms: now,
    }))
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
    pub fn writable_grids(&self) -> Vec<String> {
        self.grids.iter().chain(&self.draining).cloned().collect()
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
            .ok_or_else(unauthenticated)?;
        let now = state.now_ms();
        let session = state
            .store
            .session(&token_hash(token), now)
            .await?
            .ok_or_else(unauthenticated)?;
        if session.expires_at <= now {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                codes::AUTH_EXPIRED,
                "the session has expired: sign in again",
            ));
        }
        Ok(Caller {
            account_id: session.account_id,
            role: session.role,
            device_id: session.device_id,
            grids: session.grids,
            draining: session.draining,
        })
    }
}
