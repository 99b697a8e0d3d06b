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
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldgrid_protocol::{Role, UPLOAD_LENGTH_HEADER, UPLOAD_OFFSET_HEADER, codes, limits};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::caller::Caller;
use crate::error::{ApiError, ApiPath, ApiResult};
use crate::store::Store;

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

/// The sizes the caller's photo records give a hash: a worker's, those of
/// its grids; a department's, those of incidents dispatched to it. Anyone
/// else uploads no photos (403).
async fn sizes_for(store: &Store, caller: &Caller, sha: &str, backed: bool) -> ApiResult<Vec<i64>> {
    match (caller.role, &caller.department) {
        (Role::Worker, _) => Ok(store.photo_sizes(caller.writable_grids(), sha, backed).await?),
        (Role::Department, Some(d)) => Ok(store.department_photo_sizes(d, sha, backed).await?),
        _ => Err(ApiError::forbidden(
            "photos are uploaded by grid workers and departments",
        )),
    }
}

/// The size of a photo's bytes, if they are here for the caller: sent by
/// the maker of a photo record of them in one of its grids (`store::BACKED`).
/// A record naming bytes another grid's worker sent does not make them the
/// caller's: to it they have not arrived.
async fn complete_for(store: &Store, caller: &Caller, sha: &str) -> ApiResult<Option<i64>> {
    if sizes_for(store, caller, sha, true).await?.is_empty() {
        return Ok(None);
    }
    Ok(store.blob_size(sha).await?)
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
    check_sha(&sha)?;
    let store = &state.store;
    let known = if sizes_for(store, &caller, &sha, false).await?.is_empty() {
        None
    } else if let Some(size) = complete_for(store, &caller, &sha).await? {
        Some((size, size))
    } else {
        store.upload(&sha, &caller.account_id).await?
    };
    match known {
        Some((received, size)) => Ok((StatusCode::OK, offset_headers(received, size)).into_response()),
        None => Ok(StatusCode::NOT_FOUND.into_response()),
    }
}

/// `GET /v1/photos/{sha256}`: the photo's bytes, to those who may see
/// them (see [`may_read`]); 404 otherwise, and until all its bytes arrived.
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(sha): ApiPath<String>,
) -> ApiResult<Response> {
    serve(&state, &caller, &sha).await
}

/// Whether the caller may see a photo: the centre any photo a record
/// names; a department those of incidents dispatched to it (and their
/// events); a worker those of its grids; each only through a record whose
/// maker sent the bytes (a record naming another grid's hash shows
/// nothing). District IT sees none (403).
pub async fn may_read(store: &Store, caller: &Caller, sha: &str) -> ApiResult<bool> {
    match (caller.role, &caller.department) {
        (Role::Operator, _) => Ok(store.photo_referenced(sha).await?),
        (Role::Department, Some(d)) => Ok(!store.department_photo_sizes(d, sha, true).await?.is_empty()),
        (Role::Worker, _) => Ok(!store.photo_sizes(caller.grids.clone(), sha, true).await?.is_empty()),
        _ => Err(ApiError::forbidden("photos are not for this account")),
    }
}

/// The bytes of a photo the caller may see, typed by what they are (an
/// upload whose bytes are not an image is offered as a download, never
/// shown), never cached.
pub async fn serve(state: &AppState, caller: &Caller, sha: &str) -> ApiResult<Response> {
    check_sha(sha)?;
    let missing = || ApiError::not_found("no such photo, or its bytes have not arrived");
    if !may_read(&state.store, caller, sha).await? || state.store.blob_size(sha).await?.is_none() {
        return Err(missing());
    }
    let path = state.photo_dir.join(sha);
    let bytes = match blocking(move || std::fs::read(path)).await {
        Ok(b) => b,
        Err(_) => return Err(missing()),
    };
    let mut headers = HeaderMap::new();
    match fieldgrid_domain::validate::photo_mime(&bytes) {
        Some(mime) => {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
        }
        None => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
        }
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    // Photos of residents: kept by no cache (a shared office PC keeps no
    // copy after sign-out, a department none after a reassignment).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((StatusCode::OK, headers, bytes).into_response())
}

/// Makes room in an account's quota for a new upload of `length` bytes:
/// its unfinished uploads left alone longest go first (issue 21 item 10),
/// so stale ones of a lost phone never block the next phone's photos; a
/// phone whose upload went resumes it from the start (HEAD says 404).
/// Refused only when the account's uploads touched in the last minute fill
/// the quota alone (a flood, not a backlog).
async fn make_room(state: &AppState, account: &str, length: i64) -> ApiResult<()> {
    let store = &state.store;
    // Finished uploads have a daily cap of their own (issue 21 item 7).
    let day_ago = state.now_ms() - 24 * 3_600_000;
    if store.sent_bytes_since(account, day_ago).await? + length > state.config.photo_bytes_per_day {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::QUOTA_EXCEEDED,
            "this account sent its photos' share for the day: try again later",
        );
        e.retry_after = Some(3600);
        return Err(e);
    }
    loop {
        let (count, bytes) = store.uploads_of(account).await?;
        if count < QUOTA_UPLOADS && bytes + length <= QUOTA_BYTES {
            return Ok(());
        }
        let oldest = store.oldest_upload_of(account).await?;
        let Some((sha, updated_at)) = oldest.filter(|(_, at)| *at < state.now_ms() - 60_000) else {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                codes::QUOTA_EXCEEDED,
                "too many unfinished photo uploads at once: finish them first",
            );
            e.retry_after = Some(60);
            return Err(e);
        };
        tracing::info!(
            updated_at,
            "an account's oldest unfinished upload made room for a new one"
        );
        store.drop_upload(&sha, account).await?;
        let _ = std::fs::remove_file(part_path(&state.photo_dir, &sha, account));
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

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> ApiResult<T> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)??)
}

/// `PATCH /v1/photos/{sha256}`: appends a chunk at `Upload-Offset`.
pub async fn patch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(sha): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    check_sha(&sha)?;
    let offset = header_i64(&headers, UPLOAD_OFFSET_HEADER)?;
    let length = header_i64(&headers, UPLOAD_LENGTH_HEADER)?;
    let store = &state.store;
    // Whether the photo exists for the caller comes first: to anyone else,
    // every PATCH of it is the same 404.
    let sizes = sizes_for(store, &caller, &sha, false).await?;
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
    let account = caller.account_id.clone();
    if let Some(size) = complete_for(store, &caller, &sha).await? {
        return Ok((StatusCode::NO_CONTENT, offset_headers(size, size)).into_response());
    }
    let received = match store.upload(&sha, &account).await? {
        Some((_, size)) if size != length => {
            return Err(ApiError::bad_request("Upload-Length differs from this upload's length"));
        }
        Some((received, _)) => received,
        None => {
            make_room(&state, &account, length).await?;
            0
        }
    };
    let moved = |received: i64| {
        ApiError::new(
            StatusCode::CONFLICT,
            codes::OFFSET_MISMATCH,
            format!("resume from offset {received}"),
        )
        .with_headers(offset_headers(received, length))
    };
    if offset != received {
        return Err(moved(received));
    }
    let part = part_path(&state.photo_dir, &sha, &account);
    let end = offset + body.len() as i64;
    {
        let part = part.clone();
        blocking(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(&part)?;
            f.set_len(offset as u64)?; // drop any bytes past the recorded offset
            f.seek(SeekFrom::Start(offset as u64))?;
            f.write_all(&body)?;
            f.sync_all()
        })
        .await?;
    }
    let now = state.now_ms();
    if end < length {
        if !store.advance_upload(&sha, &account, length, received, end, now).await? {
            // Another request of this account moved the offset meanwhile.
            let now_at = store.upload(&sha, &account).await?.map_or(0, |(r, _)| r);
            return Err(moved(now_at));
        }
        return Ok((StatusCode::NO_CONTENT, offset_headers(end, length)).into_response());
    }
    let (digest, image) = {
        let part = part.clone();
        blocking(move || {
            let bytes = std::fs::read(&part)?;
            Ok((
                hex::encode(Sha256::digest(&bytes)),
                fieldgrid_domain::validate::photo_mime(&bytes).is_some(),
            ))
        })
        .await?
    };
    if digest == sha && !image {
        // A photo is an image (issue 21 item 7): other bytes are not kept.
        let _ = std::fs::remove_file(&part);
        store.drop_upload(&sha, &account).await?;
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "a photo is a JPEG, PNG, WebP or HEIC image",
        ));
    }
    if digest != sha {
        // Only this uploader's attempt is discarded.
        let _ = std::fs::remove_file(&part);
        store.drop_upload(&sha, &account).await?;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::HASH_MISMATCH,
            "the bytes do not match the photo's hash; upload again",
        ));
    }
    let whole = state.photo_dir.join(&sha);
    blocking(move || std::fs::rename(&part, &whole)).await?;
    store.complete_blob(&sha, length, &account, now).await?;
    tracing::debug!("photo complete");
    Ok((StatusCode::NO_CONTENT, offset_headers(length, length)).into_response())
}

/// Keeps a whole photo that arrived in one piece (the console's form
/// upload; its photo record was written first): the bytes go to the photo
/// folder under their hash, then the blob is recorded complete.
pub async fn store_whole(state: &AppState, sha: &str, bytes: Vec<u8>, account_id: &str) -> ApiResult<()> {
    check_sha(sha)?;
    if hex::encode(Sha256::digest(&bytes)) != sha {
        return Err(ApiError::bad_request("the bytes do not match the photo's hash"));
    }
    let size = bytes.len() as i64;
    if state.store.blob_size(sha).await?.is_none() {
        let part = partial_dir(&state.photo_dir).join(format!("{sha}.{}.part", uuid::Uuid::now_v7()));
        let whole = state.photo_dir.join(sha);
        blocking(move || {
            std::fs::write(&part, &bytes)?;
            std::fs::File::open(&part)?.sync_all()?;
            std::fs::rename(&part, &whole)
        })
        .await?;
    }
    Ok(state.store.complete_blob(sha, size, account_id, state.now_ms()).await?)
}

/// Removes unfinished uploads not touched for [`UPLOAD_EXPIRY_MS`] (their
/// rows and files), and partial files no upload row knows (left by a crash)
/// once they are as old. Returns how many went.
pub async fn expire_uploads(store: &Store, photo_dir: &Path, now: i64) -> ApiResult<usize> {
    let expired = store.expire_uploads(now - UPLOAD_EXPIRY_MS).await?;
    for (sha, account) in &expired {
        let _ = std::fs::remove_file(part_path(photo_dir, sha, account));
    }
    let mut orphans = 0;
    let age = std::time::Duration::from_millis(UPLOAD_EXPIRY_MS as u64);
    let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(partial_dir(photo_dir))?.flatten().collect();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let known = match name.strip_suffix(".part").and_then(|stem| stem.split_once('.')) {
            Some((sha, account)) => store.upload_exists(sha, account).await?,
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
