//! The HTTP transport: JSON bodies, gzip both ways, rustls for HTTPS with an
//! optional pinned district CA. Plain HTTP is refused for anything but a
//! loopback address.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use fieldgrid_protocol::{
    ChangesResponse, ErrorBody, LoginRequest, LoginResponse, PROTOCOL_HEADER, PROTOCOL_VERSION, PushRequest,
    PushResponse, UPLOAD_LENGTH_HEADER, UPLOAD_OFFSET_HEADER, WIPE_HEADER, codes,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::Agent;
use ureq::http::Response;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

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

/// The protocol over HTTP(S).
pub struct HttpTransport {
    base: String,
    agent: Agent,
    /// The wipe the server asked for (0: none, 1: now, 2: after sending).
    wipe: AtomicU8,
}

const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

impl HttpTransport {
    /// A transport to the server at `base_url` (`https://…`, or `http://`
    /// to a loopback address only).
    pub fn new(base_url: &str, options: &HttpOptions) -> Result<HttpTransport> {
        let base = server_base(base_url)?;
        let mut tls = TlsConfig::builder();
        if let Some(pem) = &options.pinned_ca_pem {
            let cert = Certificate::from_pem(pem).map_err(|_| Error::invalid("pinned_ca_pem", Code::BadFormat))?;
            tls = tls.root_certs(RootCerts::Specific(Arc::new(vec![cert.to_owned()])));
        }
        let agent: Agent = Agent::config_builder()
            .timeout_global(Some(options.timeout))
            .http_status_as_error(false)
            .tls_config(tls.build())
            .build()
            .into();
        Ok(HttpTransport {
            base,
            agent,
            wipe: AtomicU8::new(0),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Notes a wipe request in an answer's headers; passes the answer on.
    fn noted(&self, resp: Response<ureq::Body>) -> Response<ureq::Body> {
        let asked = match resp.headers().get(WIPE_HEADER).and_then(|v| v.to_str().ok()) {
            Some("wipe") => 1,
            Some("send-then-wipe") => 2,
            _ => 0,
        };
        if asked != 0 {
            self.wipe.store(asked, Ordering::SeqCst);
        }
        resp
    }
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

fn gzip_json<T: Serialize>(body: &T) -> std::result::Result<Vec<u8>, TransportError> {
    let json = serde_json::to_vec(body).map_err(|e| TransportError::BadResponse(format!("encode: {e}")))?;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&json)
        .map_err(|e| TransportError::BadResponse(e.to_string()))?;
    enc.finish().map_err(|e| TransportError::BadResponse(e.to_string()))
}

fn offline(e: ureq::Error) -> TransportError {
    TransportError::Offline(e.to_string())
}

/// Maps an error answer to a typed error.
fn error_of(resp: &mut Response<ureq::Body>) -> TransportError {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let offset = resp
        .headers()
        .get(UPLOAD_OFFSET_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body: Option<ErrorBody> = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let code = body.map(|b| b.code).unwrap_or_default();
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

fn read_json<T: DeserializeOwned>(mut resp: Response<ureq::Body>) -> std::result::Result<T, TransportError> {
    if !resp.status().is_success() {
        return Err(error_of(&mut resp));
    }
    let bytes = resp
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE)
        .read_to_vec()
        .map_err(|e| TransportError::Offline(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| TransportError::BadResponse(format!("decode: {e}")))
}

impl Transport for HttpTransport {
    fn logout(&self, token: &str) -> std::result::Result<(), TransportError> {
        let mut resp = self
            .agent
            .delete(self.url("/v1/session"))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .header("authorization", format!("Bearer {token}"))
            .call()
            .map_err(offline)?;
        // An unknown or expired token is as signed out as can be.
        match resp.status().as_u16() {
            200..=299 | 401 => Ok(()),
            _ => Err(error_of(&mut resp)),
        }
    }

    fn confirm_wiped(&self, token: &str) -> std::result::Result<(), TransportError> {
        let mut resp = self
            .agent
            .post(self.url("/v1/device/wiped"))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .header("authorization", format!("Bearer {token}"))
            .send_empty()
            .map_err(offline)?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(error_of(&mut resp))
        }
    }

    fn wipe_requested(&self) -> Option<WipeRequest> {
        match self.wipe.load(Ordering::SeqCst) {
            1 => Some(WipeRequest::Now),
            2 => Some(WipeRequest::AfterSending),
            _ => None,
        }
    }

    fn login(&self, req: &LoginRequest) -> std::result::Result<LoginResponse, TransportError> {
        let resp = self
            .agent
            .post(self.url("/v1/session"))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .send(&gzip_json(req)?[..])
            .map_err(offline)?;
        read_json(resp)
    }

    fn push(&self, token: &str, req: &PushRequest) -> std::result::Result<PushResponse, TransportError> {
        let resp = self
            .agent
            .post(self.url("/v1/sync/push"))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .send(&gzip_json(req)?[..])
            .map_err(offline)?;
        read_json(self.noted(resp))
    }

    fn changes(&self, token: &str, after: i64, limit: u32) -> std::result::Result<ChangesResponse, TransportError> {
        let resp = self
            .agent
            .get(self.url(&format!("/v1/sync/changes?after={after}&limit={limit}")))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .header("authorization", format!("Bearer {token}"))
            .call()
            .map_err(offline)?;
        read_json(self.noted(resp))
    }

    fn photo_offset(&self, token: &str, sha256: &str) -> std::result::Result<Option<u64>, TransportError> {
        let mut resp = self.noted(
            self.agent
                .head(self.url(&format!("/v1/photos/{sha256}")))
                .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
                .header("authorization", format!("Bearer {token}"))
                .call()
                .map_err(offline)?,
        );
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(error_of(&mut resp));
        }
        resp.headers()
            .get(UPLOAD_OFFSET_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| TransportError::BadResponse("no upload offset".into()))
    }

    fn upload_chunk(
        &self,
        token: &str,
        sha256: &str,
        offset: u64,
        total: u64,
        chunk: &[u8],
    ) -> std::result::Result<u64, TransportError> {
        let mut resp = self
            .agent
            .patch(self.url(&format!("/v1/photos/{sha256}")))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/offset+octet-stream")
            .header(UPLOAD_OFFSET_HEADER, offset.to_string())
            .header(UPLOAD_LENGTH_HEADER, total.to_string())
            .send(chunk)
            .map_err(offline)
            .map(|r| self.noted(r))?;
        if !resp.status().is_success() {
            return Err(error_of(&mut resp));
        }
        let mut sink = Vec::new();
        let _ = resp.body_mut().as_reader().read_to_end(&mut sink);
        resp.headers()
            .get(UPLOAD_OFFSET_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| TransportError::BadResponse("no upload offset".into()))
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
}
