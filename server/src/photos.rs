//! Photo blobs: content-addressed by SHA-256, uploaded in chunks with a
//! resumable offset (HEAD tells the offset, PATCH appends at it), verified
//! against their address when the last byte arrives.

use std::io::{Seek, SeekFrom, Write};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fieldgrid_protocol::{UPLOAD_LENGTH_HEADER, UPLOAD_OFFSET_HEADER, codes, limits};
use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, db_call};

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

/// `HEAD /v1/photos/{sha256}`: how many bytes the server has (404: none).
pub async fn head(State(state): State<Arc<AppState>>, _caller: Caller, Path(sha): Path<String>) -> ApiResult<Response> {
    check_sha(&sha)?;
    let row = db_call(&state, move |conn| {
        Ok(conn
            .query_row("SELECT received, size FROM blobs WHERE sha256 = ?1", [&sha], |r| {
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
        .ok_or_else(|| ApiError::bad_request(format!("the {name} header is required")))
}

/// `PATCH /v1/photos/{sha256}`: appends a chunk at `Upload-Offset`.
pub async fn patch(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    Path(sha): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    check_sha(&sha)?;
    let offset = header_i64(&headers, UPLOAD_OFFSET_HEADER)?;
    let length = header_i64(&headers, UPLOAD_LENGTH_HEADER)?;
    if length == 0 || length as u64 > limits::PHOTO_MAX_BYTES || body.len() > limits::PHOTO_MAX_CHUNK {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::TOO_LARGE,
            "photo or chunk too large",
        ));
    }
    if offset + body.len() as i64 > length {
        return Err(ApiError::bad_request("the chunk runs past the photo's length"));
    }
    let dir = state.photo_dir.clone();
    let now = state.now_ms();
    db_call(&state, move |conn| {
        let tx = conn.transaction()?;
        let row: Option<(i64, i64, bool)> = tx
            .query_row(
                "SELECT received, size, complete FROM blobs WHERE sha256 = ?1",
                [&sha],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)),
            )
            .optional()?;
        let (received, size, complete) = row.unwrap_or((0, length, false));
        if size != length {
            return Err(ApiError::bad_request(
                "Upload-Length differs from the photo's recorded size",
            ));
        }
        if complete {
            return Ok((StatusCode::NO_CONTENT, offset_headers(size, size)).into_response());
        }
        if offset != received {
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                codes::OFFSET_MISMATCH,
                "resume from the server's offset",
            );
            e.message = format!("resume from offset {received}");
            return Err(e);
        }
        let part = dir.join(format!("{sha}.part"));
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
        let mut done = false;
        if received == size {
            let digest = hex::encode(Sha256::digest(std::fs::read(&part)?));
            if digest != sha {
                std::fs::remove_file(&part)?;
                tx.execute("UPDATE blobs SET received = 0 WHERE sha256 = ?1", [&sha])?;
                tx.commit()?;
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    codes::HASH_MISMATCH,
                    "the bytes do not match the photo's hash; upload again",
                ));
            }
            std::fs::rename(&part, dir.join(&sha))?;
            done = true;
        }
        tx.execute(
            "INSERT INTO blobs (sha256, size, received, complete, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (sha256) DO UPDATE SET received = ?3, complete = ?4",
            rusqlite::params![sha, size, received, done as i64, now],
        )?;
        tx.commit()?;
        if done {
            tracing::debug!("photo complete");
        }
        Ok((StatusCode::NO_CONTENT, offset_headers(received, size)).into_response())
    })
    .await
}
