//! JSON bodies for the answers hyper writes by itself.
//!
//! hyper answers a request it cannot parse (400: a bare CR, an obs-fold, two
//! or a negative `Content-Length`, no method), a URI over 64 KiB (414) and
//! headers over its limits (431: more than 100, or over about 400 KiB) before
//! any handler runs, with an empty body, and then closes the connection
//! (`Server::on_error` in hyper's proto/h1/role.rs). Every other error of the
//! API is `{code, message}` JSON (error.rs), and hyper has no hook for these
//! answers, so each connection's writing half is wrapped here: [`JsonErrors`]
//! recognises the head hyper writes for them and writes a JSON answer in its
//! place.
//!
//! The recognition rests on one fact: no handler writes a 400, 414 or 431
//! without a body ([`crate::error::json_errors`] gives every error answer of
//! the router a JSON body and content type). hyper's automatic head is exactly a status line with one
//! of those three statuses, `connection: close`, `content-length: 0` and a
//! `date` of the current minute; it comes after every byte of the answers before it (it is written
//! only between answers) and nothing comes after it.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use fieldgrid_protocol::{ErrorBody, codes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose automatic error answers are JSON.
#[derive(Debug)]
pub struct JsonErrors<T> {
    inner: T,
    /// The JSON answer written in place of hyper's, and how much of it is
    /// written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> JsonErrors<T> {
    /// Wraps a connection.
    pub fn new(inner: T) -> Self {
        JsonErrors { inner, pending: None }
    }
}

/// Where hyper's automatic answer starts in `buf`, and its status, if `buf`
/// ends with one.
fn automatic_answer(buf: &[u8]) -> Option<(usize, StatusCode)> {
    const START: &[u8] = b"HTTP/1.1 ";
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let start = buf.windows(START.len()).rposition(|w| w == START)?;
    let head = std::str::from_utf8(&buf[start..]).ok()?;
    let mut lines = head.strip_suffix("\r\n\r\n")?.split("\r\n");
    let status = match lines.next()? {
        "HTTP/1.1 400 Bad Request" => StatusCode::BAD_REQUEST,
        "HTTP/1.1 414 URI Too Long" => StatusCode::URI_TOO_LONG,
        "HTTP/1.1 431 Request Header Fields Too Large" => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    let (mut length, mut date, mut close) = (false, false, false);
    for line in lines {
        match line.split_once(": ")? {
            ("content-length", "0") if !length => length = true,
            ("connection", "close") if !close => close = true,
            ("date", value) if !date => {
                let at = httpdate::parse_http_date(value).ok()?;
                let now = SystemTime::now();
                let near =
                    |a: SystemTime, b: SystemTime| a.duration_since(b).unwrap_or_default() < Duration::from_secs(60);
                if !(near(at, now) && near(now, at)) {
                    return None;
                }
                date = true;
            }
            _ => return None,
        }
    }
    (length && date).then_some((start, status))
}

/// The JSON answer for an automatic one.
fn json_answer(status: StatusCode) -> Vec<u8> {
    let (code, message) = match status {
        StatusCode::URI_TOO_LONG => (codes::TOO_LARGE, "the URI is longer than 64 KiB"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            codes::TOO_LARGE,
            "the request has more than 100 headers or more than 400 KiB of them",
        ),
        _ => (codes::BAD_REQUEST, "the request is not well-formed HTTP/1.1"),
    };
    let body = ErrorBody {
        code: code.to_owned(),
        message: message.to_owned(),
    };
    // Serialising two strings cannot fail; an empty body is hyper's own answer.
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

impl<T: AsyncWrite + Unpin> JsonErrors<T> {
    /// Writes what is left of the JSON answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, written)) = &mut self.pending {
            if *written == answer.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes hyper's `len` bytes of automatic answer, writing JSON instead.
    fn replace(&mut self, cx: &mut Context<'_>, status: StatusCode, len: usize) -> Poll<io::Result<usize>> {
        self.pending = Some((json_answer(status), 0));
        // Written now if the socket takes it, else on the flush that follows.
        if let Poll::Ready(Err(e)) = self.drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(len))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrors<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrors<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        match automatic_answer(buf) {
            None => Pin::new(&mut self.inner).poll_write(cx, buf),
            Some((0, status)) => self.replace(cx, status, buf.len()),
            // The answers before it first.
            Some((start, _)) => Pin::new(&mut self.inner).poll_write(cx, &buf[..start]),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        // The automatic answer has no body: it ends the last slice.
        let Some(last) = bufs.iter().rposition(|b| !b.is_empty()) else {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        };
        match automatic_answer(&bufs[last]) {
            None => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
            Some((0, status)) if last == 0 => self.replace(cx, status, bufs[0].len()),
            Some((start, _)) => {
                let mut before: Vec<IoSlice<'_>> = bufs[..last].to_vec();
                before.push(IoSlice::new(&bufs[last][..start]));
                Pin::new(&mut self.inner).poll_write_vectored(cx, &before)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: 0\r\ndate: {}\r\n\r\n",
            httpdate::fmt_http_date(SystemTime::now())
        )
    }

    #[test]
    fn hypers_automatic_heads_are_recognised_and_nothing_else() {
        let bad = head("400 Bad Request");
        assert_eq!(automatic_answer(bad.as_bytes()), Some((0, StatusCode::BAD_REQUEST)));
        let after = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{{}}{bad}");
        assert_eq!(
            automatic_answer(after.as_bytes()).map(|a| a.0),
            Some(after.len() - bad.len())
        );
        for status in ["414 URI Too Long", "431 Request Header Fields Too Large"] {
            assert!(automatic_answer(head(status).as_bytes()).is_some(), "{status}");
        }
        // Not hyper's: another status, a body, a content type, a stale date.
        assert_eq!(automatic_answer(head("404 Not Found").as_bytes()), None);
        assert_eq!(automatic_answer(format!("{bad}{{}}").as_bytes()), None);
        let typed = bad.replace(
            "content-length: 0",
            "content-type: application/json\r\ncontent-length: 0",
        );
        assert_eq!(automatic_answer(typed.as_bytes()), None);
        let stale = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: {}\r\n\r\n",
            httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(3600))
        );
        assert_eq!(automatic_answer(stale.as_bytes()), None);
    }

    #[test]
    fn the_json_answer_is_a_whole_http_answer() {
        let answer = String::from_utf8(json_answer(StatusCode::URI_TOO_LONG)).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: ErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(body.code, codes::TOO_LARGE);
    }
}
