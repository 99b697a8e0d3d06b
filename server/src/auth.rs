//! Sign-in and the bearer-token check every request passes. Password
//! hashing (Argon2) runs on a blocking thread, never holding a database
//! connection.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use fieldgrid_protocol::{LoginRequest, LoginResponse, codes};
use sha2::{Digest, Sha256};

use crate::AppState;
pub use crate::caller::Caller;
use crate::caller::WipeMode;
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

/// A device id as the server keeps it: 1 to 100 of `[A-Za-z0-9._:-]`, not
/// starting with a dot. It becomes a path segment of the account pages
/// (revoke, wipe): a `/` or a dot segment there would point the form at
/// another account's device.
pub fn valid_device_id(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The client address of a request (the TCP peer; the accept loop adds it).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

/// A hash no password matches, verified when the user name is unknown so
/// that an unknown name costs the same work and time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("dummy", "no password matches this one", &Argon2::default()).unwrap_or_default())
}

/// The lockout keys of a sign-in: the account name and the client address.
fn lockout_keys(username: &str, addr: Option<ClientAddr>) -> Vec<String> {
    let mut keys = vec![format!("user:{}", username.trim().to_lowercase())];
    if let Some(ClientAddr(ip)) = addr {
        keys.push(format!("addr:{ip}"));
    }
    keys
}

/// Until when a sign-in under `keys` (the name's, then the address's) is
/// refused, from their failure counts. An account is locked by its own
/// failures only. An address's failures lock that address for the names
/// that have failures of their own (made-up names included, once tried):
/// a name without failures is still checked, so an account's right
/// password is never refused because others guessed from the same address
/// (many phones share one behind a carrier's NAT), while a run of guesses
/// from one address gets one try per name while its lock lasts. Known and
/// unknown names are treated alike (no user-name oracle).
fn locked_until(lockouts: &[crate::store::Lockout], keys: &[String], now: i64) -> i64 {
    let of = |key: Option<&String>| lockouts.iter().find(|l| Some(&l.key) == key);
    let name = of(keys.first());
    let name_until = name.map_or(0, |l| l.locked_until);
    if name_until > now {
        return name_until;
    }
    match (name, of(keys.get(1))) {
        (Some(n), Some(a)) if n.failures > 0 && a.locked_until > now => a.locked_until,
        _ => 0,
    }
}

/// `POST /v1/session`: signs in. Failed sign-ins lock the account name,
/// and the client address for names that failed too, for a growing time
/// (429 with `Retry-After`; see [`locked_until`]); an unknown name costs the
/// same as a wrong password; a disabled account or a revoked device cannot
/// sign in.
pub async fn login(
    State(state): State<Arc<AppState>>,
    addr: Option<axum::Extension<ClientAddr>>,
    signal: Option<axum::Extension<WipeSignal>>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<axum::Json<LoginResponse>> {
    let (signed, wipe) = signed_in(&state, addr.map(|a| a.0), req).await?;
    // A device to be wiped learns it from its sign-in's answer too (issue
    // 21 item 12), not only from its next call.
    if let (Some(mode), Some(axum::Extension(signal))) = (wipe, signal) {
        *signal.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(mode);
    }
    Ok(axum::Json(signed))
}

/// Signs in (the phones' `POST /v1/session` and the console's form): the
/// lockouts, the password check, the account's and device's state, then a
/// new token.
pub async fn sign_in(state: &AppState, addr: Option<ClientAddr>, req: LoginRequest) -> ApiResult<LoginResponse> {
    Ok(signed_in(state, addr, req).await?.0)
}

/// [`sign_in`], with the remote wipe asked of the signing-in device and not
/// yet confirmed, if any.
async fn signed_in(
    state: &AppState,
    addr: Option<ClientAddr>,
    req: LoginRequest,
) -> ApiResult<(LoginResponse, Option<WipeMode>)> {
    let now = state.now_ms();
    let keys = lockout_keys(&req.username, addr);
    let locked_until = locked_until(&state.store.lockouts(&keys, now).await?, &keys, now);
    if locked_until > now {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::LOCKED,
            "too many failed sign-ins: wait and try again",
        );
        e.retry_after = Some(((locked_until - now) / 1000 + 1) as u32);
        return Err(e);
    }
    let bad = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::BAD_CREDENTIALS,
            "wrong user name or password",
        )
    };
    let credentials = state.store.credentials(req.username.trim()).await?;
    let hash = credentials
        .as_ref()
        .map_or_else(|| dummy_hash().to_owned(), |c| c.password_hash.clone());
    let password = req.password;
    let matches = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .map_err(ApiError::internal)?;
    let Some(credentials) = credentials.filter(|_| matches) else {
        state.store.sign_in_failed(&keys, now).await?;
        // No name, no password: the account id when there is one, and where from.
        tracing::warn!(address = ?addr.map(|a| a.0), "failed sign-in");
        return Err(bad());
    };
    if !valid_device_id(&req.device_id) {
        return Err(ApiError::bad_request(
            "device_id: 1 to 100 letters, digits, '.', '_', ':' or '-', not starting with '.'",
        ));
    }
    if credentials.disabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::ACCOUNT_DISABLED,
            "this account is disabled: ask the grid centre",
        ));
    }
    let device = state
        .store
        .devices(&credentials.account_id)
        .await?
        .into_iter()
        .find(|d| d.device_id == req.device_id);
    if device.as_ref().is_some_and(|d| d.revoked_at_ms.is_some()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::DEVICE_REVOKED,
            "this device may no longer sign in: ask the grid centre",
        ));
    }
    // The account's own count starts again; the address's does not (a
    // sign-in to an account of one's own must not wipe out a run of
    // guesses at others').
    state.store.sign_in_succeeded(&keys[..1]).await?;
    state
        .store
        .touch_device(&credentials.account_id, &req.device_id, now)
        .await?;
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(ApiError::internal)?;
    let token = hex::encode(raw);
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
    let wipe = device.and_then(|d| d.wipe.filter(|_| d.wiped_at_ms.is_none()));
    let response = LoginResponse {
        grids,
        token,
        expires_at_ms: expires,
        account_id: credentials.account_id,
        role: credentials.role,
        department: credentials.department,
        server_time_ms: now,
    };
    Ok((response, wipe))
}

/// `DELETE /v1/session`: signs out; the token is dead at once.
pub async fn logout(State(state): State<Arc<AppState>>, parts: axum::http::HeaderMap) -> ApiResult<StatusCode> {
    let token = bearer(&parts).ok_or_else(unauthenticated)?;
    sign_out(&state, token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends the session of a token at once.
pub async fn sign_out(state: &AppState, token: &str) -> ApiResult<()> {
    Ok(state.store.sign_out(&token_hash(token)).await?)
}

/// `POST /v1/device/wiped`: the device confirms it wiped itself; its
/// sessions end.
pub async fn device_wiped(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<StatusCode> {
    state
        .store
        .confirm_wipe(&caller.account_id, &caller.device_id, state.now_ms())
        .await?;
    tracing::info!(account = %caller.account_id, "device wiped");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn unauthenticated() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHENTICATED, "sign in first")
}

/// Where the accept loop's wipe-signal middleware learns that the caller's
/// device is to be wiped (the `Caller` extractor fills it in).
#[derive(Clone, Default)]
pub struct WipeSignal(pub Arc<std::sync::Mutex<Option<WipeMode>>>);

/// The caller of a request whose bearer token the load shedder verified.
#[derive(Clone, Debug)]
pub(crate) struct Verified(pub(crate) Caller);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        // Verified already by the load shedder (one look-up a request).
        let caller = match parts.extensions.get::<Verified>() {
            Some(Verified(caller)) => caller.clone(),
            None => {
                let token = bearer(&parts.headers).ok_or_else(unauthenticated)?;
                Caller::of_token(state, token).await?
            }
        };
        if let (Some(mode), Some(signal)) = (caller.wipe, parts.extensions.get::<WipeSignal>()) {
            *signal.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(mode);
        }
        Ok(caller)
    }
}

impl Caller {
    /// The caller a session token belongs to: 401 when unknown, ended or
    /// expired.
    pub async fn of_token(state: &AppState, token: &str) -> ApiResult<Caller> {
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
        // Last contact, to the minute (not a write on every request).
        if now - session.last_seen >= 60_000 {
            state
                .store
                .touch_device(&session.account_id, &session.device_id, now)
                .await?;
        }
        Ok(Caller {
            account_id: session.account_id,
            role: session.role,
            device_id: session.device_id,
            grids: session.grids,
            draining: session.draining,
            department: session.department,
            wipe: session.wipe,
        })
    }
}
