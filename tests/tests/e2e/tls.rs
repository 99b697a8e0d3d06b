//! The transport's trust. HTTPS with the district's CA pinned: a server
//! certificate issued by that CA is trusted; one issued by another CA is
//! refused, whatever it claims. A redirect is never followed.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use fieldgrid_core::sync::{HttpOptions, HttpTransport, Transport, TransportError};
use fieldgrid_protocol::LoginRequest;

/// A CA and a `localhost` server certificate it issued: (CA PEM, server chain DER, server key DER).
fn district_ca(name: &str) -> (String, Vec<u8>, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.der().to_vec(), leaf_key.serialize_der())
}

/// A one-shot HTTPS endpoint answering a login with a fixed body.
fn tls_server(chain: Vec<u8>, key: Vec<u8>) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(chain)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(1) {
            let Ok(tcp) = stream else { continue };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            // Read the whole request (head and body) before answering: closing
            // with unread bytes would reset the connection under the client.
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            let complete = |r: &[u8]| {
                let Some(end) = r.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return false;
                };
                let head = String::from_utf8_lossy(&r[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                    .unwrap_or(0);
                r.len() >= end + 4 + length
            };
            let mut refused = false;
            while !complete(&request) {
                match tls.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                    Err(_) => {
                        refused = true; // the client refused our certificate
                        break;
                    }
                }
            }
            if refused || request.is_empty() {
                continue;
            }
            let body =
                r#"{"token":"t","expires_at_ms":1,"account_id":"a","role":"worker","grids":[],"server_time_ms":1}"#;
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    port
}

fn login(port: u16, pinned: &str) -> Result<(), TransportError> {
    let options = HttpOptions {
        pinned_ca_pem: Some(pinned.as_bytes().to_vec()),
        ..HttpOptions::default()
    };
    let transport = HttpTransport::new(&format!("https://localhost:{port}"), &options).unwrap();
    fieldgrid_core::sync::block_on(transport.login(&LoginRequest {
        username: "u".into(),
        password: "p".into(),
        device_id: "d".into(),
    }))
    .unwrap()
    .map(drop)
}

#[test]
fn a_pinned_ca_trusts_its_own_server_and_refuses_another_cas() {
    let (ca_a, chain_a, key_a) = district_ca("Dongying District CA");
    let (ca_b, _, _) = district_ca("Some other CA");
    // Issued by the pinned CA: trusted.
    login(tls_server(chain_a.clone(), key_a.clone()), &ca_a).unwrap();
    // Pinned to another CA: refused, before anything is sent.
    let err = login(tls_server(chain_a, key_a), &ca_b).unwrap_err();
    assert!(
        matches!(&err, TransportError::Offline(m) if m.to_lowercase().contains("certificate") || m.to_lowercase().contains("issuer")),
        "{err:?}"
    );
}

/// A server (or something in its place) that answers with a redirect does
/// not get the phone to send its body and session elsewhere: the answer is
/// an error, and the other address sees no connection.
#[test]
fn a_redirect_is_not_followed() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let target = format!("http://127.0.0.1:{}/v1/session", elsewhere.local_addr().unwrap().port());
    let redirector = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = redirector.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in redirector.incoming().take(1) {
            let Ok(mut tcp) = stream else { continue };
            let mut buf = [0u8; 65536];
            let _ = tcp.read(&mut buf);
            let _ = write!(
                tcp,
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    let transport = HttpTransport::new(&format!("http://127.0.0.1:{port}"), &HttpOptions::default()).unwrap();
    let err = fieldgrid_core::sync::block_on(transport.login(&LoginRequest {
        username: "u".into(),
        password: "p".into(),
        device_id: "d".into(),
    }))
    .unwrap()
    .unwrap_err();
    assert!(matches!(err, TransportError::Server { status: 307, .. }), "{err:?}");
    assert!(elsewhere.accept().is_err(), "the redirect was followed");
}
