//! The HTTP transport: reqwest on tokio, JSON bodies, gzip both ways,
//! rustls (with the *ring* provider) for HTTPS with an optional pinned
//! district CA. Plain HTTP is refused for anything but a loopback address.
//!
//! The TLS configuration is built here and handed to reqwest whole: trust
//! is either the public web PKI (webpki-roots, compiled in) or the district's
//! CA alone. reqwest's own rustls setup would use the platform verifier,
//! which needs a JNI initialisation on Android, and aws-lc-rs, a C build
//! that doubles the TLS code in the library.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use fieldgrid_protocol::{
    ChangesResponse, ErrorBody, LoginRequest, LoginResponse, PROTOCOL_HEADER, PROTOCOL_VERSION, ProblemsRequest,
    PushRequest, PushResponse, UPLOAD_LENGTH_HEADER, UPLOAD_OFFSET_HEADER, WIPE_HEADER, codes,
};
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, Response};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::transport::{Transport, TransportError, WipeRequest};
use crate::error::{Code, Error, Result};

/// Options of the HTTP transport.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Longest one request may take.
    pub timeout: Duration,
    /// The district's CA certificate (PEM). When set, only server
    /// certificates it issued are trusted; otherwise the public web PKI.
    pub pinned_ca_pem: Option<Vec<u8>>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            pinned_ca_pem: None,
        }
    }
}

/// The protocol over HTTP(S). Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct HttpTransport {
    base: String,
    client: Client,
    /// The wipe the server asked for (0: none, 1: now, 2: after sending).
    wipe: Arc<AtomicU8>,
}

/// The largest answer read (a pull page is at most a few MiB).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// The largest error answer read.
const MAX_ERROR_BODY: usize = 64 * 1024;

impl HttpTransport {
    /// A transport to the server at `base_url` (`https://…`, or `http://`
    /// to a loopback address only).
    pub fn new(base_url: &str, options: &HttpOptions) -> Result<HttpTransport> {
        let base = server_base(base_url)?;
        let tls = tls_config(options.pinned_ca_pem.as_deref())?;
        let client = Client::builder()
            .tls_backend_preconfigured(tls)
            .http1_only()
            // A redirect would send the body (personal data) and the session
            // elsewhere, perhaps over plain HTTP: answers are taken as they are.
            .redirect(reqwest::redirect::Policy::none())
            // Connections go straight to the district server: proxy
            // variables of the environment are not read.
            .no_proxy()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(15)))
            .build()
            .map_err(|e| Error::Internal(format!("http client: {}", chain(&e))))?;
        Ok(HttpTransport {
            base,
            client,
            wipe: Arc::new(AtomicU8::new(0)),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the protocol version and, when given, the session.
    fn request(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let req = self
            .client
            .request(method, self.url(path))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .header(reqwest::header::ACCEPT_ENCODING, "gzip");
        match token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Sends `req`; notes a wipe request in the answer's headers.
    async fn send(&self, req: RequestBuilder) -> std::result::Result<Response, TransportError> {
        let resp = req.send().await.map_err(offline)?;
        let asked = match resp.headers().get(WIPE_HEADER).and_then(|v| v.to_str().ok()) {
            Some("wipe") => 1,
            Some("send-then-wipe") => 2,
            _ => 0,
        };
        if asked != 0 {
            self.wipe.store(asked, Ordering::SeqCst);
        }
        Ok(resp)
    }
}

/// The client's TLS: TLS 1.2 and 1.3 with the ring provider, trusting the
/// pinned CA alone when there is one, the public web PKI otherwise.
fn tls_config(pinned_ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig> {
    let bad_pem = || Error::invalid("pinned_ca_pem", Code::BadFormat);
    let mut roots = rustls::RootCertStore::empty();
    match pinned_ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots.add(cert.map_err(|_| bad_pem())?).map_err(|_| bad_pem())?;
            }
            if roots.is_empty() {
                return Err(bad_pem());
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // reqwest sets ALPN only on configurations it builds itself.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Checks a server URL with a real URL parser and returns it without a
/// trailing slash. Plain HTTP only to a loopback host; no user name or
/// password in the URL (`http://localhost:80@evil.example` names the host
/// `evil.example`, not loopback); no query or fragment.
fn server_base(base_url: &str) -> Result<String> {
    let invalid = || Error::invalid("server_url", Code::BadFormat);
    let url = url::Url::parse(base_url.trim()).map_err(|_| invalid())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid("server_url", Code::NotAllowed));
    }
    if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
        return Err(invalid());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(invalid()),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(Error::invalid("server_url", Code::NotAllowed)),
        _ => return Err(invalid()),
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A JSON body, gzipped (answers are decompressed by [`body`]).
fn gzip_json<T: Serialize>(body: &T) -> std::result::Result<Vec<u8>, TransportError> {
    use std::io::Write;
    let json = serde_json::to_vec(body).map_err(|e| TransportError::BadResponse(format!("encode: {e}")))?;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&json)
        .map_err(|e| TransportError::BadResponse(e.to_string()))?;
    enc.finish().map_err(|e| TransportError::BadResponse(e.to_string()))
}

/// An error with its causes (the TLS reason of a refused connection is a
/// cause), without the URL.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    message
}

fn offline(e: reqwest::Error) -> TransportError {
    TransportError::Offline(chain(&e.without_url()))
}

/// An answer's body, decompressed, if it is at most `limit` bytes (before
/// and after decompression: a small gzip bomb is refused too).
///
/// gzip is decoded here with flate2, which the request side needs anyway,
/// rather than by reqwest's `gzip` feature (tower-http and
/// async-compression in the shipped library, for the same inflate).
async fn body(mut resp: Response, limit: usize) -> std::result::Result<Vec<u8>, TransportError> {
    let too_large = || TransportError::BadResponse(format!("answer larger than {limit} bytes"));
    let gzipped = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(offline)? {
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    if !gzipped {
        return Ok(bytes);
    }
    use std::io::Read;
    let mut plain = Vec::with_capacity(bytes.len().saturating_mul(4).min(limit + 1));
    // Every gzip member, as HTTP's gzip coding allows several.
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|e| TransportError::BadResponse(format!("gzip: {e}")))?;
    if plain.len() > limit {
        return Err(too_large());
    }
    Ok(plain)
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Maps an error answer to a typed error.
async fn error_of(resp: Response) -> TransportError {
    let status = resp.status().as_u16();
    let retry_after = header_u64(resp.headers(), "retry-after").map(Duration::from_secs);
    let offset = header_u64(resp.headers(), UPLOAD_OFFSET_HEADER);
    let code = body(resp, MAX_ERROR_BODY)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<ErrorBody>(&b).ok())
        .map(|b| b.code)
        .unwrap_or_default();
    match (status, code.as_str()) {
        (401, codes::BAD_CREDENTIALS) => TransportError::BadCredentials,
        (401, _) => TransportError::AuthExpired,
        (426, _) => TransportError::ProtocolTooOld,
        (403, _) => TransportError::Forbidden(code),
        (429, _) | (503, _) => TransportError::Overloaded { retry_after },
        (409, codes::OFFSET_MISMATCH) => match offset {
            Some(offset) => TransportError::OffsetMismatch { offset },
            None => TransportError::Server { status, code },
        },
        _ => TransportError::Server { status, code },
    }
}

async fn read_json<T: DeserializeOwned>(resp: Response) -> std::result::Result<T, TransportError> {
    if !resp.status().is_success() {
        return Err(error_of(resp).await);
    }
    let bytes = body(resp, MAX_RESPONSE).await?;
    serde_json::from_slice(&bytes).map_err(|e| TransportError::BadResponse(format!("decode: {e}")))
}

/// The `Upload-Offset` of a successful answer.
fn upload_offset(resp: &Response) -> std::result::Result<u64, TransportError> {
    header_u64(resp.headers(), UPLOAD_OFFSET_HEADER)
        .ok_or_else(|| TransportError::BadResponse("no upload offset".into()))
}

impl Transport for HttpTransport {
    async fn logout(&self, token: &str) -> std::result::Result<(), TransportError> {
        let resp = self
            .send(self.request(reqwest::Method::DELETE, "/v1/session", Some(token)))
            .await?;
        // An unknown or expired token is as signed out as can be.
        match resp.status().as_u16() {
            200..=299 | 401 => Ok(()),
            _ => Err(error_of(resp).await),
        }
    }

    async fn confirm_wiped(&self, token: &str) -> std::result::Result<(), TransportError> {
        let resp = self
            .send(self.request(reqwest::Method::POST, "/v1/device/wiped", Some(token)))
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(error_of(resp).await)
        }
    }

    fn wipe_requested(&self) -> Option<WipeRequest> {
        match self.wipe.load(Ordering::SeqCst) {
            1 => Some(WipeRequest::Now),
            2 => Some(WipeRequest::AfterSending),
            _ => None,
        }
    }

    async fn login(&self, req: &LoginRequest) -> std::result::Result<LoginResponse, TransportError> {
        let body = gzip_json(req)?;
        let req = self
            .request(reqwest::Method::POST, "/v1/session", None)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body);
        read_json(self.send(req).await?).await
    }

    async fn push(&self, token: &str, req: &PushRequest) -> std::result::Result<PushResponse, TransportError> {
        let body = gzip_json(req)?;
        let req = self
            .request(reqwest::Method::POST, "/v1/sync/push", Some(token))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body);
        read_json(self.send(req).await?).await
    }

    async fn report_problems(&self, token: &str, req: &ProblemsRequest) -> std::result::Result<(), TransportError> {
        let body = gzip_json(req)?;
        let req = self
            .request(reqwest::Method::POST, "/v1/sync/problems", Some(token))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body);
        let resp = self.send(req).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(error_of(resp).await)
        }
    }

    async fn changes(
        &self,
        token: &str,
        after: i64,
        limit: u32,
    ) -> std::result::Result<ChangesResponse, TransportError> {
        let path = format!("/v1/sync/changes?after={after}&limit={limit}");
        read_json(
            self.send(self.request(reqwest::Method::GET, &path, Some(token)))
                .await?,
        )
        .await
    }

    async fn photo_offset(&self, token: &str, sha256: &str) -> std::result::Result<Option<u64>, TransportError> {
        let path = format!("/v1/photos/{sha256}");
        let resp = self
            .send(self.request(reqwest::Method::HEAD, &path, Some(token)))
            .await?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(error_of(resp).await);
        }
        upload_offset(&resp).map(Some)
    }

    async fn upload_chunk(
        &self,
        token: &str,
        sha256: &str,
        offset: u64,
        total: u64,
        chunk: &[u8],
    ) -> std::result::Result<u64, TransportError> {
        let path = format!("/v1/photos/{sha256}");
        let req = self
            .request(reqwest::Method::PATCH, &path, Some(token))
            .header("content-type", "application/offset+octet-stream")
            .header(UPLOAD_OFFSET_HEADER, offset.to_string())
            .header(UPLOAD_LENGTH_HEADER, total.to_string())
            .body(chunk.to_vec());
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(error_of(resp).await);
        }
        let offset = upload_offset(&resp)?;
        // Read the (empty) body, so that the connection goes back to the pool.
        body(resp, MAX_ERROR_BODY).await?;
        Ok(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        let o = HttpOptions::default();
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
            "https://grid.example.cn",
        ] {
            assert!(HttpTransport::new(ok, &o).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.5:8080",
            "http://grid.example.cn",
            "ftp://x",
            "grid.example.cn",
            // Userinfo: the host is evil.example, whatever comes before the @.
            "http://localhost:80@evil.example",
            "http://127.0.0.1@evil.example:8080",
            "https://user:pass@grid.example.cn",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "https://grid.example.cn/?next=x",
            "mailto:x@grid.example.cn",
        ] {
            let e = HttpTransport::new(bad, &o).err().unwrap();
            assert_eq!(e.as_validation().unwrap().field, "server_url", "{bad}");
        }
    }

    fn answer(gzipped: bool, bytes: Vec<u8>) -> Response {
        let mut answer = http::Response::builder();
        if gzipped {
            answer = answer.header("content-encoding", "gzip");
        }
        Response::from(answer.body(bytes).unwrap())
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// Answers are read up to a limit, before and after decompression: a
    /// megabyte of zeros gzipped to a kilobyte is refused at 64 KiB.
    #[test]
    fn answers_are_decompressed_within_their_limit() {
        let read = |gzipped, bytes| crate::sync::block_on(body(answer(gzipped, bytes), 64 * 1024)).unwrap();
        assert_eq!(read(false, b"{}".to_vec()).unwrap(), b"{}");
        assert_eq!(read(true, gzip(b"{\"a\":1}")).unwrap(), b"{\"a\":1}");
        let bomb = gzip(&vec![0u8; 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024);
        assert!(matches!(read(true, bomb), Err(TransportError::BadResponse(_))));
        assert!(matches!(
            read(false, vec![b' '; 65 * 1024]),
            Err(TransportError::BadResponse(_))
        ));
        assert!(matches!(
            read(true, b"not gzip".to_vec()),
            Err(TransportError::BadResponse(_))
        ));
    }

    #[test]
    fn a_pinned_ca_must_hold_a_certificate() {
        let pinned = |pem: &str| HttpOptions {
            pinned_ca_pem: Some(pem.as_bytes().to_vec()),
            ..HttpOptions::default()
        };
        for bad in [
            "",
            "not a certificate",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            let e = HttpTransport::new("https://grid.example.cn", &pinned(bad))
                .err()
                .unwrap();
            assert_eq!(e.as_validation().unwrap().field, "pinned_ca_pem", "{bad:?}");
        }
    }
}
