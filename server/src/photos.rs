//! Photo blobs: content-addressed by SHA-256, uploaded in chunks with a
//! resumable offset (HEAD tells the offset, PATCH appends at it), verified
//! against their address when the last byte arrives.
//!
//! Photos belong to records: a worker may upload, or ask about, only a hash
//! that a photo record of one of its grids names, at the size that record
//! gives; to anyone else the photo does not exist (404). Each uploader has
//! its own partial upload, so one account's bad bytes never reset another's;
//! an empty chunk reserves nothing; unfinished uploads count against a
//! per-account quota and expire when left alone.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fieldgrid_protocol::{Role, UPLOAD_LENGTH_HEADER, UPLOAD_OFFSET_HEADER, codes, limits};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::{ApiError, ApiPath, ApiResult};
use crate::{AppState, db_call};

/// Unfinished uploads one account may have at once.
pub const QUOTA_UPLOADS: i64 = 20;
/// Bytes of unfinished uploads one account may have at once.
pub const QUOTA_BYTES: i64 = 100 * 1024 * 1024;
/// An unfinished upload not touched for this long is removed.
pub const UPLOAD_EXPIRY_MS: i64 = 7 * 24 * 3_600_000;

fn check_sha(sha: &str) -> ApiResult<()> {
    if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(ApiError::bad_request("a photo is addressed by its lower-case SHA-256"))
    }
}

fn offset_headers(received: i64, size: i64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(UPLOAD_OFFSET_HEADER, HeaderValue::from(received));
    h.insert(UPLOAD_LENGTH_HEADER, HeaderValue::from(size));
    h
}

/// Uploading is a grid worker's business (the phone that took the photo).
fn require_worker(caller: &Caller) -> ApiResult<()> {
    match caller.role {
        Role::Worker => Ok(()),
        Role::Operator => Err(ApiError::forbidden("photos are uploaded by grid workers")),
    }
}

/// The sizes that photo records of the caller's (writable) grids give this
/// hash; empty when none names it.
fn sizes_for(conn: &Connection, caller: &Caller, sha: &str) -> ApiResult<Vec<i64>> {
    let grids = serde_json::to_string(&caller.writable_grids())?;
    let sizes = conn
        .prepare_cached(
            "SELECT DISTINCT size FROM photo_refs
             WHERE sha256 = ?1 AND grid_id IN (SELECT value FROM json_each(?2))",
        )?
        .query_map(params![sha, grids], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(sizes)
}

fn complete_size(conn: &Connection, sha: &str) -> ApiResult<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT size FROM blobs WHERE sha256 = ?1 AND complete = 1")?
        .query_row([sha], |r| r.get(0))
        .optional()?)
}

fn no_such_photo() -> ApiError {
    ApiError::not_found("no photo record of this account's grids has this hash")
}

/// Where an uploader's unfinished bytes of a photo wait: a folder of their
/// own, so the maintenance sweep never lists the finished photos.
pub fn partial_dir(photo_dir: &Path) -> PathBuf {
    photo_dir.join("partial")
}

fn part_path(photo_dir: &Path, sha: &str, account_id: &str) -> PathBuf {
    partial_dir(photo_dir).join(format!("{sha}.{account_id}.part"))
}

/// `HEAD /v1/photos/{sha256}`: how many bytes of this photo the server has
/// from the caller (all of them once any uploader completed it); 404 when
/// none, or when no photo record of the caller's grids names the hash.
pub async fn head(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(sha): ApiPath<String>,
) -> ApiResult<Response> {
    require_worker(&caller)?;
    check_sha(&sha)?;
    let row = db_call(&state, move |conn| {
        if sizes_for(conn, &caller, &sha)?.is_empty() {
            return Ok(None);
        }
        if let Some(size) = complete_size(conn, &sha)? {
            return Ok(Some((size, size)));
        }
        Ok(conn
            .prepare_cached("SELECT received, size FROM uploads WHERE sha256 = ?1 AND account_id = ?2")?
            .query_row([&sha, &caller.account_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()?)
    })
    .await?;
    match row {
        Some((received, size)) => Ok((StatusCode::OK, offset_headers(received, size)).into_response()),
        None => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}

fn header_i64(headers: &HeaderMap, name: &str) -> ApiResult<i64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .filter(|v: &i64| *v >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("the {name} header is required (a whole number)")))
}

/// `PATCH /v1/photos/{sha256}`: appends a chunk at `Upload-Offset`.
pub async fn patch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(sha): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    require_worker(&caller)?;
    check_sha(&sha)?;
    let offset = header_i64(&headers, UPLOAD_OFFSET_HEADER)?;
    let length = header_i64(&headers, UPLOAD_LENGTH_HEADER)?;
    let dir = state.photo_dir.clone();
    let now = state.now_ms();
    let account = caller.account_id.clone();
    let (response, finished) = db_call(&state, move |conn| {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Whether the photo exists for the caller comes first: to anyone
        // else, every PATCH of it is the same 404.
        let sizes = sizes_for(&tx, &caller, &sha)?;
        if sizes.is_empty() {
            return Err(no_such_photo());
        }
        if length == 0 || length as u64 > limits::PHOTO_MAX_BYTES || body.len() > limits::PHOTO_MAX_CHUNK {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::TOO_LARGE,
                "photo or chunk too large",
            ));
        }
        if body.is_empty() {
            return Err(ApiError::bad_request("a chunk carries at least one byte"));
        }
        if offset.saturating_add(body.len() as i64) > length {
            return Err(ApiError::bad_request("the chunk runs past the photo's length"));
        }
        if !sizes.contains(&length) {
            return Err(ApiError::bad_request(
                "Upload-Length differs from the photo's recorded size",
            ));
        }
        if let Some(size) = complete_size(&tx, &sha)? {
            return Ok((
                (StatusCode::NO_CONTENT, offset_headers(size, size)).into_response(),
                false,
            ));
        }
        let mine: Option<(i64, i64)> = tx
            .prepare_cached("SELECT received, size FROM uploads WHERE sha256 = ?1 AND account_id = ?2")?
            .query_row([&sha, &account], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let received = match mine {
            Some((_, size)) if size != length => {
                return Err(ApiError::bad_request("Upload-Length differs from this upload's length"));
            }
            Some((received, _)) => received,
            None => {
                let (count, bytes): (i64, i64) = tx
                    .prepare_cached("SELECT count(*), coalesce(sum(size), 0) FROM uploads WHERE account_id = ?1")?
                    .query_row([&account], |r| Ok((r.get(0)?, r.get(1)?)))?;
                if count >= QUOTA_UPLOADS || bytes + length > QUOTA_BYTES {
                    let mut e = ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        codes::QUOTA_EXCEEDED,
                        "too many unfinished photo uploads: finish them first",
                    );
                    e.retry_after = Some(60);
                    return Err(e);
                }
                0
            }
        };
        if offset != received {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                codes::OFFSET_MISMATCH,
                format!("resume from offset {received}"),
            )
            .with_headers(offset_headers(received, length)));
        }
        let part = part_path(&dir, &sha, &account);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&part)?;
        f.set_len(offset as u64)?; // drop any bytes past the recorded offset
        f.seek(SeekFrom::Start(offset as u64))?;
        f.write_all(&body)?;
        f.sync_all()?;
        drop(f);
        let received = offset + body.len() as i64;
        if received < length {
            tx.prepare_cached(
                "INSERT INTO uploads (sha256, account_id, size, received, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (sha256, account_id) DO UPDATE SET received = ?4, updated_at = ?5",
            )?
            .execute(params![sha, account, length, received, now])?;
            tx.commit()?;
            return Ok((
                (StatusCode::NO_CONTENT, offset_headers(received, length)).into_response(),
                false,
            ));
        }
        let digest = hex::encode(Sha256::digest(std::fs::read(&part)?));
        if digest != sha {
            // Only this uploader's attempt is discarded.
            std::fs::remove_file(&part)?;
            tx.execute(
                "DELETE FROM uploads WHERE sha256 = ?1 AND account_id = ?2",
                [&sha, &account],
            )?;
            tx.commit()?;
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::HASH_MISMATCH,
                "the bytes do not match the photo's hash; upload again",
            ));
        }
        std::fs::rename(&part, dir.join(&sha))?;
        tx.execute(
            "INSERT INTO blobs (sha256, size, received, complete, created_at) VALUES (?1, ?2, ?2, 1, ?3)
             ON CONFLICT (sha256) DO UPDATE SET size = ?2, received = ?2, complete = 1",
            params![sha, length, now],
        )?;
        // Other uploaders of the same photo have nothing left to send.
        let others: Vec<String> = tx
            .prepare_cached("DELETE FROM uploads WHERE sha256 = ?1 RETURNING account_id")?
            .query_map([&sha], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        tx.commit()?;
        for other in others {
            let _ = std::fs::remove_file(part_path(&dir, &sha, &other));
        }
        Ok((
            (StatusCode::NO_CONTENT, offset_headers(length, length)).into_response(),
            true,
        ))
    })
    .await?;
    if finished {
        tracing::debug!("photo complete");
    }
    Ok(response)
}

/// Removes unfinished uploads not touched for [`UPLOAD_EXPIRY_MS`] (their
/// rows and files), and partial files no upload row knows (left by a crash)
/// once they are as old. Returns how many went.
pub fn expire_uploads(conn: &Connection, photo_dir: &Path, now: i64) -> ApiResult<usize> {
    let cutoff = now - UPLOAD_EXPIRY_MS;
    let expired: Vec<(String, String)> = conn
        .prepare_cached("DELETE FROM uploads WHERE updated_at < ?1 RETURNING sha256, account_id")?
        .query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (sha, account) in &expired {
        let _ = std::fs::remove_file(part_path(photo_dir, sha, account));
    }
    let mut orphans = 0;
    let age = std::time::Duration::from_millis(UPLOAD_EXPIRY_MS as u64);
    for entry in std::fs::read_dir(partial_dir(photo_dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let known = match name.strip_suffix(".part").and_then(|stem| stem.split_once('.')) {
            Some((sha, account)) => conn
                .prepare_cached("SELECT 1 FROM uploads WHERE sha256 = ?1 AND account_id = ?2")?
                .query_row([sha, account], |_| Ok(()))
                .optional()?
                .is_some(),
            None => false,
        };
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|e| e >= age);
        if !known && old && std::fs::remove_file(entry.path()).is_ok() {
            orphans += 1;
        }
    }
    if !expired.is_empty() || orphans > 0 {
        tracing::info!(expired = expired.len(), orphans, "unfinished photo uploads removed");
    }
    Ok(expired.len() + orphans)
}
