//! API errors: an HTTP status and an [`ErrorBody`]. Messages never carry
//! personal data nor repeat the request (they are built from codes and field
//! names only): the extractors here replace axum's own, whose rejections
//! quote the body, and [`json_errors`] gives every other error answer (the
//! framework's 404, 405, 408, 413, 415) the same JSON shape.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fieldgrid_protocol::{ErrorBody, codes};
use serde::de::DeserializeOwned;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine code.
    pub code: &'static str,
    /// Explanation.
    pub message: String,
    /// Seconds for `Retry-After` (429, 503).
    pub retry_after: Option<u32>,
    /// Further headers of the answer (boxed: errors travel in every `Result`).
    pub headers: Option<Box<HeaderMap>>,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            headers: None,
        }
    }

    /// The same error with these headers in its answer.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers.get_or_insert_default().extend(headers);
        self
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, message)
    }

    /// 500, logged.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, "internal error")
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::internal(format!("json: {:?}", e.classify()))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if let Some(headers) = self.headers {
            response.headers_mut().extend(*headers);
        }
        response
    }
}

/// Largest JSON body of a request other than a push.
pub const SMALL_BODY: usize = 64 * 1024;

/// A place in a request body, fit to repeat in an error: struct fields and
/// indices only (a map key may be anything a client sent).
fn safe_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if key.len() <= 40 && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Map { .. } | Segment::Enum { .. } | Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// A JSON body of at most `LIMIT` bytes (after gzip is undone), read as `T`.
/// Refusals say where the body is wrong, never what it held.
pub struct ApiJson<T, const LIMIT: usize = SMALL_BODY>(pub T);

impl<S, T, const LIMIT: usize> FromRequest<S> for ApiJson<T, LIMIT>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m.eq_ignore_ascii_case("application/json") || m.ends_with("+json")
            });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = axum::body::to_bytes(req.into_body(), LIMIT)
            .await
            .map_err(|e| body_error(e, LIMIT))?;
        let mut value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| ApiError::bad_request("the body is not valid JSON"))?;
        integral_numbers(&mut value);
        let value = serde_path_to_error::deserialize(value).map_err(|e| {
            let at = safe_path(e.path());
            let message = if at.is_empty() {
                "the body does not match the request's schema".to_owned()
            } else {
                format!("the body does not match the request's schema at {at}")
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, codes::BAD_REQUEST, message)
        })?;
        Ok(ApiJson(value))
    }
}

/// Why a body could not be read: too long (here, or on the wire), or not
/// readable as sent (a body that says gzip and is not).
pub(crate) fn body_error(e: axum::Error, limit: usize) -> ApiError {
    let inner = e.into_inner();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::TOO_LARGE,
                format!("the body is larger than {limit} bytes"),
            );
        }
        cause = c.source();
    }
    ApiError::bad_request("the body cannot be read as sent (is its Content-Encoding right?)")
}

/// JSON has one kind of number: `107.0` is the integer 107 (JSON Schema
/// agrees), so whole numbers written with a fraction (within the range a
/// double holds exactly) become integers before the body is read into typed
/// fields.
fn integral_numbers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() <= MAX_SAFE_INTEGER as f64
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(fields) => fields.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// Whether a number a client gave for a time, version or cursor is within
/// ±[`MAX_SAFE_INTEGER`].
pub fn safe_integer(n: i64) -> bool {
    n.unsigned_abs() <= MAX_SAFE_INTEGER as u64
}

/// The largest magnitude of a time, version or cursor in a request: the
/// integers a double holds exactly (I-JSON, RFC 7493).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Query parameters read as `T`, refused without repeating them.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        // Each parameter once: a repeat would be decided by whichever the
        // parser kept, so it is refused, named when it is a plain name.
        let mut seen = std::collections::HashSet::new();
        for (key, _) in form_urlencoded::parse(query.as_bytes()) {
            if !seen.insert(key.clone()) {
                let plain = key.len() <= 40 && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                return Err(ApiError::bad_request(if plain && !key.is_empty() {
                    format!("the query parameter {key} is given more than once")
                } else {
                    "a query parameter is given more than once".to_owned()
                }));
            }
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| ApiError::bad_request(format!("the query parameter {} is not valid", safe_path(e.path()))))
    }
}

/// A path parameter read as `T`, refused without repeating it.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| ApiError::bad_request("a path parameter is not valid"))
    }
}

/// The code of an error answer the framework made itself.
fn code_for(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => (codes::NOT_FOUND, "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (codes::METHOD_NOT_ALLOWED, "this method is not allowed here"),
        StatusCode::REQUEST_TIMEOUT => (codes::TIMEOUT, "the request took too long and was stopped"),
        StatusCode::PAYLOAD_TOO_LARGE => (codes::TOO_LARGE, "the body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (codes::UNSUPPORTED_MEDIA_TYPE, "this body encoding is not supported"),
        StatusCode::TOO_MANY_REQUESTS => (codes::OVERLOADED, "the server is busy: retry shortly"),
        s if s.is_server_error() => (codes::INTERNAL, "internal error"),
        _ => (codes::BAD_REQUEST, "the request is not valid"),
    }
}

/// Every error answer is `{code, message}` JSON: those made by the handlers
/// already are; any other (axum's 404 and 405, tower-http's 408 and 413, a
/// body that cannot be decompressed) has its body replaced, so nothing a
/// client sent is ever repeated back.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let (code, message) = code_for(status);
    let body = serde_json::to_vec(&ErrorBody {
        code: code.to_owned(),
        message: message.to_owned(),
    })
    .unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    Response::from_parts(parts, Body::from(body))
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
