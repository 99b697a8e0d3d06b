//! Routes the core's `tracing` output to the app's logger (Logcat, os_log).
//!
//! The core logs counts, ids, codes and timings, never residents' data (a test
//! scans its most verbose output for names, ID numbers and phones), so the
//! lines can go to the platform log as they are.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// How much to log.
#[derive(uniffi::Enum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Failures.
    Error,
    /// Something went wrong and was handled (a retry, a refused record).
    Warn,
    /// One line per sync step, open, import.
    Info,
    /// Details of each step.
    Debug,
    /// Everything.
    Trace,
}

impl From<&Level> for LogLevel {
    fn from(l: &Level) -> Self {
        match *l {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// One log line.
#[derive(uniffi::Record, Clone, Debug)]
pub struct LogRecord {
    /// Its level.
    pub level: LogLevel,
    /// Where it comes from (`fieldgrid_core::sync`), usable as a log tag.
    pub target: String,
    /// The message followed by its fields (`pushed batch operations=200`).
    pub message: String,
}

/// The app's logger. Called on the thread that logged: keep it quick and
/// never throw from it.
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    /// Receives one line.
    fn log(&self, record: LogRecord);
}

/// No sink: nothing is formatted at all.
const OFF: u8 = 0;

static SINK: RwLock<Option<Arc<dyn LogSink>>> = RwLock::new(None);
/// 0 = off, else `LogLevel as u8 + 1`.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(OFF);

/// Sends FieldGrid's log lines at `level` and above to `sink` (replacing any
/// sink set before); `None` stops logging.
#[uniffi::export]
pub fn set_log_sink(sink: Option<Arc<dyn LogSink>>, level: LogLevel) {
    install();
    let max = if sink.is_some() { level as u8 + 1 } else { OFF };
    *SINK.write().unwrap_or_else(PoisonError::into_inner) = sink;
    MAX_LEVEL.store(max, Ordering::Release);
    tracing::callsite::rebuild_interest_cache();
}

/// Installs the forwarding subscriber once for the process. If the host has
/// already installed a global subscriber (a Rust host), it is left in place.
fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Forward);
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

struct Forward;

fn enabled(level: &Level) -> bool {
    let max = MAX_LEVEL.load(Ordering::Acquire);
    max != OFF && (LogLevel::from(level) as u8) < max
}

impl<S: Subscriber> Layer<S> for Forward {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        enabled(metadata.level())
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !enabled(meta.level()) {
            return;
        }
        let Some(sink) = SINK.read().unwrap_or_else(PoisonError::into_inner).clone() else {
            return;
        };
        let mut line = Line::default();
        event.record(&mut line);
        sink.log(LogRecord {
            level: meta.level().into(),
            target: meta.target().to_owned(),
            message: line.finish(),
        });
    }
}

#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Line {
    fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
            return;
        }
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        let _ = write!(self.fields, "{}={value:?}", field.name());
    }
}
