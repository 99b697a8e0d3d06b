//! The seam between the storage's statements and its two engines.
//!
//! A statement shared by both engines is written once, with PostgreSQL's
//! `$1` placeholders, and run through [`Conn`]: [`Lite`] (SQLite, on the
//! blocking thread that holds the connection: its futures are ready at once,
//! see [`super::run_ready`]) or [`Pg`]. Arguments are [`Arg`]s and rows come
//! back as owned [`Row`]s whose reads are typed errors, never panics.
//!
//! What really differs between the engines is named in [`Dialect`], one
//! method per difference, so a reader sees every one in one place:
//! - aggregating into a JSON array ([`Dialect::json_array`]);
//! - a column among a list of strings ([`Dialect::in_list`], bound as
//!   [`Arg::List`]: a `text[]` in PostgreSQL, a JSON array in SQLite);
//! - a field of a JSON column ([`Dialect::field`]), and a flag that is
//!   false ([`Dialect::live`]), each as the partial indexes write them;
//! - the larger of two values ([`Dialect::greatest`]);
//! - an order or condition the planner is not to take from an index
//!   ([`Dialect::unindexed`]), or an index it is to take
//!   ([`Dialect::indexed_by`]).
//!
//! Everything else used in shared statements is the same in both: `ON
//! CONFLICT ... DO UPDATE` / `DO NOTHING`, `RETURNING`, `coalesce`,
//! `CAST(... AS BIGINT)`, `NOT` on a flag (SQLite's 0/1, PostgreSQL's
//! boolean).

use std::future::Future;

use serde::de::DeserializeOwned;

use super::error::{StoreError, StoreResult};

/// Which engine a statement is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (3.44 or later: ordered aggregates).
    Sqlite,
    /// PostgreSQL (15).
    Postgres,
}

impl Dialect {
    /// A JSON array (as text, `[]` for no rows) of `expr` over the rows
    /// aggregated, in `order`.
    pub fn json_array(self, expr: &str, order: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_group_array({expr} ORDER BY {order})"),
            Dialect::Postgres => format!("coalesce(json_agg({expr} ORDER BY {order})::text, '[]')"),
        }
    }

    /// `column` is one of the strings of list parameter `$n`.
    pub fn in_list(self, column: &str, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("{column} IN (SELECT value FROM json_each(${n}))"),
            Dialect::Postgres => format!("{column} = ANY(${n})"),
        }
    }

    /// Field `name` of the JSON text in `column`, as text: written exactly
    /// as the engine's expression indexes are, so they serve it.
    pub fn field(self, column: &str, name: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_extract({column}, '$.{name}')"),
            Dialect::Postgres => format!("({column}::jsonb ->> '{name}')"),
        }
    }

    /// `column` in an ORDER BY that the planner is not to serve from an
    /// index on it (SQLite's `+`: it would walk the whole index in order
    /// rather than sort the few rows a filter leaves; PostgreSQL's planner
    /// weighs both by itself).
    pub fn unindexed(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("+{column}"),
            Dialect::Postgres => column.to_owned(),
        }
    }

    /// An index the planner is to use for a table (SQLite's `INDEXED BY`,
    /// where its planner misjudges; PostgreSQL has no such clause).
    pub fn indexed_by(self, index: &str) -> String {
        match self {
            Dialect::Sqlite => format!("INDEXED BY {index}"),
            Dialect::Postgres => String::new(),
        }
    }

    /// A flag column is false, written as the engine's partial indexes
    /// write it (SQLite uses such an index only for the same terms).
    pub fn live(self, flag: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{flag} = 0"),
            Dialect::Postgres => format!("NOT {flag}"),
        }
    }

    /// The larger of `a` and `b`.
    pub fn greatest(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Sqlite => format!("max({a}, {b})"),
            Dialect::Postgres => format!("greatest({a}, {b})"),
        }
    }
}

/// A value bound to a statement.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    /// An integer, or NULL.
    Int(Option<i64>),
    /// A string, or NULL.
    Text(Option<&'a str>),
    /// A flag: 0/1 in SQLite, a boolean in PostgreSQL.
    Flag(bool),
    /// A list of strings, for [`Dialect::in_list`].
    List(&'a [String]),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Flag(v)
    }
}
impl<'a> From<&'a [String]> for Arg<'a> {
    fn from(v: &'a [String]) -> Self {
        Arg::List(v)
    }
}

/// Runs `$body`, written once with `$c` as its [`Conn`], on the store's
/// engine: `read` on a reader's snapshot (SQLite) or a pooled client
/// (PostgreSQL), `snapshot` in one consistent snapshot on either (several
/// statements that must see one state), `write` in one transaction on
/// either. A read abandoned by
/// its request stops its work on both (SQLite is interrupted, PostgreSQL's
/// statement cancelled). What `$body` borrows
/// must be owned by the caller (SQLite runs it on a blocking thread).
macro_rules! run {
    ($store:expr, read, |$c:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite(s) => {
                s.read(move |conn| {
                    use $crate::store::sql::Conn as _;
                    let $c = &mut $crate::store::sql::Lite(conn);
                    $crate::store::run_ready($crate::store::sql::typed($body))?
                })
                .await
            }
            $crate::store::Store::Postgres(p) => {
                use $crate::store::sql::Conn as _;
                let client = p.client().await?;
                // An abandoned request cancels its statement.
                let guard = p.guard(&client);
                let $c = &mut $crate::store::sql::Pg::Client(&client);
                let v = $crate::store::sql::typed($body).await;
                guard.done();
                v
            }
        }
    };
    ($store:expr, snapshot, |$c:ident| $body:expr) => {
        match $store {
            // A reader's transaction is a snapshot already.
            $crate::store::Store::Sqlite(_) => $crate::store::sql::run!($store, read, |$c| $body),
            $crate::store::Store::Postgres(p) => {
                use $crate::store::sql::Conn as _;
                let mut client = p.client().await?;
                let guard = p.guard(&client);
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err($crate::store::sql::pg_error)?;
                let v = {
                    let $c = &mut $crate::store::sql::Pg::Tx(&tx);
                    $crate::store::sql::typed($body).await
                };
                // Finished, well or not: nothing is left to cancel (a late
                // cancel would reach whatever the pooled connection runs next).
                guard.done();
                let v = v?;
                tx.commit().await.map_err($crate::store::sql::pg_error)?;
                Ok(v)
            }
        }
    };
    ($store:expr, write, |$c:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite(s) => {
                s.write(move |conn| {
                    use $crate::store::sql::Conn as _;
                    let $c = &mut $crate::store::sql::Lite(conn);
                    $crate::store::run_ready($crate::store::sql::typed($body))?
                })
                .await
            }
            $crate::store::Store::Postgres(p) => {
                use $crate::store::sql::Conn as _;
                let mut client = p.client().await?;
                let tx = client.transaction().await.map_err($crate::store::sql::pg_error)?;
                let v = {
                    let $c = &mut $crate::store::sql::Pg::Tx(&tx);
                    $crate::store::sql::typed($body).await?
                };
                tx.commit().await.map_err($crate::store::sql::pg_error)?;
                Ok(v)
            }
        }
    };
}
pub(crate) use run;

/// `f`, known to end in an [`StoreResult`] (an `async` block's `?` alone
/// does not say which error type it returns).
pub fn typed<T, F: Future<Output = StoreResult<T>>>(f: F) -> F {
    f
}

/// Arguments of a statement: `args![a, b, c]`.
macro_rules! args {
    ($($a:expr),* $(,)?) => { &[$($crate::store::sql::Arg::from($a)),*] };
}
pub(crate) use args;

/// One value of a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// An integer (PostgreSQL's booleans too, as 0 or 1).
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
        }
    }
}

/// A row read, its columns in the statement's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Row(pub Vec<Value>);

/// A column that is not what the code reads it as: a storage bug, reported
/// without the value (it may be personal).
fn mismatch(i: usize, want: &str, v: &Value) -> StoreError {
    StoreError::internal(format!("column {i}: expected {want}, found {}", v.kind()))
}

impl Row {
    fn value(&self, i: usize) -> StoreResult<&Value> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::internal(format!("column {i}: the row has {} columns", self.0.len())))
    }

    /// An integer column, NULL allowed.
    pub fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        match self.value(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            v => Err(mismatch(i, "an integer", v)),
        }
    }

    /// An integer column.
    pub fn int(&self, i: usize) -> StoreResult<i64> {
        self.opt_int(i)?.ok_or_else(|| mismatch(i, "an integer", &Value::Null))
    }

    /// A flag column (0/1 or a boolean).
    pub fn flag(&self, i: usize) -> StoreResult<bool> {
        Ok(self.int(i)? != 0)
    }

    /// A text column, NULL allowed.
    pub fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        match self.value(i)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            v => Err(mismatch(i, "text", v)),
        }
    }

    /// A text column.
    pub fn text(&self, i: usize) -> StoreResult<String> {
        self.opt_text(i)?.ok_or_else(|| mismatch(i, "text", &Value::Null))
    }

    /// A text column holding JSON, read as `T`.
    pub fn json<T: DeserializeOwned>(&self, i: usize) -> StoreResult<T> {
        serde_json::from_str(&self.text(i)?).map_err(|e| {
            StoreError::internal(format!(
                "column {i}: not the JSON expected (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }
}

/// A connection or transaction that runs shared statements.
pub trait Conn: Send {
    /// The engine's dialect.
    fn dialect(&self) -> Dialect;
    /// The rows of a query.
    fn query(&mut self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = StoreResult<Vec<Row>>> + Send;
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = StoreResult<u64>> + Send;

    /// The first row of a query, if any.
    fn query_opt(&mut self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = StoreResult<Option<Row>>> + Send {
        async move { Ok(self.query(sql, args).await?.into_iter().next()) }
    }

    /// The one row of a query that always has one.
    fn query_one(&mut self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = StoreResult<Row>> + Send {
        async move {
            self.query_opt(sql, args)
                .await?
                .ok_or_else(|| StoreError::internal("a statement returned no row"))
        }
    }
}

/// `$1`-style placeholders as SQLite's `?1`, outside quoted text.
pub fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quoted {
            Some(q) if c == q => quoted = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quoted = Some(c),
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('?');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

/// SQLite, on the connection (or transaction) of a blocking call.
pub struct Lite<'c>(pub &'c mut rusqlite::Connection);

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as V, ValueRef};
        Ok(match *self {
            Arg::Int(Some(v)) => ToSqlOutput::Owned(V::Integer(v)),
            Arg::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Arg::Int(None) | Arg::Text(None) => ToSqlOutput::Owned(V::Null),
            Arg::Flag(v) => ToSqlOutput::Owned(V::Integer(i64::from(v))),
            Arg::List(v) => ToSqlOutput::Owned(V::Text(
                serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
            )),
        })
    }
}

impl Lite<'_> {
    fn prepare(&self, sql: &str) -> StoreResult<rusqlite::CachedStatement<'_>> {
        Ok(self.0.prepare_cached(&sqlite_placeholders(sql))?)
    }
}

impl Conn for Lite<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query(&mut self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = StoreResult<Vec<Row>>> + Send {
        let rows = (|| {
            let mut stmt = self.prepare(sql)?;
            let columns = stmt.column_count();
            let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let mut row = Vec::with_capacity(columns);
                for i in 0..columns {
                    use rusqlite::types::ValueRef;
                    row.push(match r.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(v) => Value::Int(v),
                        ValueRef::Real(v) => Value::Real(v),
                        ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
                        ValueRef::Blob(v) => Value::Bytes(v.to_vec()),
                    });
                }
                out.push(Row(row));
            }
            Ok(out)
        })();
        std::future::ready(rows)
    }

    fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = StoreResult<u64>> + Send {
        let n = (|| {
            let n = self.prepare(sql)?.execute(rusqlite::params_from_iter(args))?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })();
        std::future::ready(n)
    }
}

/// PostgreSQL: a pooled client (each statement its own transaction) or a
/// transaction on one. Statements are prepared once per connection (the
/// pool's statement cache) and planned for each call's arguments
/// (`plan_cache_mode = force_custom_plan`, set by the engine: the centre's
/// lists are skewed enough that one generic plan would not serve them all).
pub enum Pg<'a> {
    /// A client.
    Client(&'a deadpool_postgres::ClientWrapper),
    /// A transaction.
    Tx(&'a deadpool_postgres::Transaction<'a>),
}

impl tokio_postgres::types::ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::Type;
        match *self {
            Arg::Int(Some(v)) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Arg::Int(v) => v.to_sql(ty, out),
            Arg::Text(v) => v.to_sql(ty, out),
            Arg::Flag(v) => v.to_sql(ty, out),
            Arg::List(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        // Checked per value in `to_sql` (each variant's own type accepts or
        // refuses the column's).
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A PostgreSQL error as a storage error (a cancelled statement's work was
/// stopped).
pub fn pg_error(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
        return StoreError::Stopped;
    }
    StoreError::internal(format!("postgres: {e}"))
}

/// One PostgreSQL row as owned values, by column type; a type the store
/// never reads is an error.
pub(super) fn pg_row(r: &tokio_postgres::Row) -> StoreResult<Row> {
    use tokio_postgres::types::Type;
    let mut row = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let ty = column.type_();
        let v = if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int))
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i).map(|v| v.map(|v| Value::Int(v.into())))
        } else if *ty == Type::INT2 {
            r.try_get::<_, Option<i16>>(i).map(|v| v.map(|v| Value::Int(v.into())))
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i).map(|v| v.map(|v| Value::Int(v.into())))
        } else if *ty == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::Real))
        } else if *ty == Type::FLOAT4 {
            r.try_get::<_, Option<f32>>(i).map(|v| v.map(|v| Value::Real(v.into())))
        } else if *ty == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i).map(|v| v.map(Value::Bytes))
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) {
            r.try_get::<_, Option<String>>(i).map(|v| v.map(Value::Text))
        } else {
            return Err(StoreError::internal(format!(
                "column {i}: type {ty} is not read by the store"
            )));
        };
        row.push(v.map_err(pg_error)?.unwrap_or(Value::Null));
    }
    Ok(Row(row))
}

impl Conn for Pg<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&mut self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = StoreResult<Vec<Row>>> + Send {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args
            .iter()
            .map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        async move {
            let rows = match self {
                Pg::Client(c) => c.query(&c.prepare_cached(sql).await.map_err(pg_error)?, &params).await,
                Pg::Tx(t) => t.query(&t.prepare_cached(sql).await.map_err(pg_error)?, &params).await,
            }
            .map_err(pg_error)?;
            rows.iter().map(pg_row).collect()
        }
    }

    fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = StoreResult<u64>> + Send {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args
            .iter()
            .map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        async move {
            match self {
                Pg::Client(c) => {
                    c.execute(&c.prepare_cached(sql).await.map_err(pg_error)?, &params)
                        .await
                }
                Pg::Tx(t) => {
                    t.execute(&t.prepare_cached(sql).await.map_err(pg_error)?, &params)
                        .await
                }
            }
            .map_err(pg_error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_sqlites_outside_quoted_text() {
        assert_eq!(
            sqlite_placeholders("SELECT '$1', \"$2\" FROM t WHERE a = $1 AND b IN ($2, $10) AND c = '$'"),
            "SELECT '$1', \"$2\" FROM t WHERE a = ?1 AND b IN (?2, ?10) AND c = '$'"
        );
    }

    #[test]
    fn rows_read_as_typed_values_and_a_wrong_type_is_an_error_not_a_panic() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        let mut lite = Lite(&mut c);
        let grids = ["g1".to_owned(), "g2".to_owned()];
        let sql = format!(
            "SELECT $1, $2, NULL, $3, $4, (SELECT {} FROM json_each($5)), $6",
            Dialect::Sqlite.json_array("value", "value DESC")
        );
        let rows = super::super::run_ready(lite.query(
            &sql,
            args![7_i64, "七", Option::<i64>::None, true, &grids[..], Option::<&str>::None],
        ))
        .unwrap()
        .unwrap();
        let r = &rows[0];
        assert_eq!(r.int(0).unwrap(), 7);
        assert_eq!(r.text(1).unwrap(), "七");
        assert_eq!(r.opt_int(2).unwrap(), None);
        assert_eq!(r.opt_int(3).unwrap(), None);
        assert!(r.flag(4).unwrap());
        assert_eq!(r.json::<Vec<String>>(5).unwrap(), ["g2", "g1"]);
        assert_eq!(r.opt_text(6).unwrap(), None);
        // Wrong types and missing columns are errors that name the column
        // and the kind only (the value may be personal).
        let StoreError::Internal(e) = r.int(1).unwrap_err() else {
            panic!("an internal error");
        };
        assert!(e.contains("column 1") && !e.contains('七'), "{e}");
        assert!(r.text(9).is_err());
        assert!(r.json::<Vec<i64>>(1).is_err());
    }
}
