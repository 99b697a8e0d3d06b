//! What a push's or a centre action's transaction reads besides its
//! records: a repeated operation's receipt and the facts of the phone's
//! rules that look at other records. Written once for both engines'
//! [`super::Tx`] ([`super::sql`]).

use super::StoredReceipt;
use super::error::StoreResult;
use super::sql::{Conn, Dialect, args};

/// The receipt kept for an operation, if it was seen before.
pub(super) async fn receipt(c: &mut impl Conn, op_id: &str) -> StoreResult<Option<StoredReceipt>> {
    c.query_opt(
        "SELECT receipt, account_id, device_id FROM receipts WHERE op_id = $1",
        args![op_id],
    )
    .await?
    .map(|r| {
        Ok(StoredReceipt {
            receipt: r.json(0)?,
            account_id: r.text(1)?,
            device_id: r.text(2)?,
        })
    })
    .transpose()
}

/// The photo records a record has.
pub(super) async fn photos_of(c: &mut impl Conn, owner_id: &str) -> StoreResult<i64> {
    c.query_one("SELECT count(*) FROM photo_refs WHERE owner_id = $1", args![owner_id])
        .await?
        .int(0)
}

/// The live records a household or place holds: residents, households,
/// places within it (each found by its engine's partial index).
pub(super) async fn live_children(c: &mut impl Conn, id: &str) -> StoreResult<i64> {
    c.query_one(&live_children_sql(c.dialect()), args![id]).await?.int(0)
}

fn live_children_sql(d: Dialect) -> String {
    let live = d.live("deleted");
    let [household, unit, parent] = ["household_id", "unit_id", "parent_id"].map(|f| d.field("fields", f));
    format!(
        "SELECT (SELECT count(*) FROM records WHERE entity = 'resident' AND {live} AND {household} = $1)
              + (SELECT count(*) FROM records WHERE entity = 'household' AND {live} AND {unit} = $1)
              + (SELECT count(*) FROM records WHERE entity = 'place' AND {live} AND {parent} = $1)"
    )
}

/// Whether another live resident of `grid` has this ID number.
pub(super) async fn id_number_taken(c: &mut impl Conn, grid: &str, id_number: &str, except: &str) -> StoreResult<bool> {
    c.query_one(&id_number_sql(c.dialect()), args![grid, id_number, except])
        .await?
        .flag(0)
}

fn id_number_sql(d: Dialect) -> String {
    let (live, number) = (d.live("deleted"), d.field("fields", "id_number"));
    format!(
        "SELECT EXISTS (SELECT 1 FROM records WHERE entity = 'resident' AND {live} AND grid_id = $1
           AND {number} = $2 AND id <> $3)"
    )
}

/// Whether a department exists.
pub(super) async fn department_exists(c: &mut impl Conn, id: &str) -> StoreResult<bool> {
    Ok(c.query_opt("SELECT 1 FROM departments WHERE id = $1", args![id])
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules' lookups find their rows by the partial indexes made for
    /// them, on SQLite's real schema (its planner takes a partial index only
    /// for the very terms it was made with: `Dialect::live`).
    #[test]
    fn the_rules_lookups_use_their_partial_indexes() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::super::sqlite::migrate(&mut conn).unwrap();
        for (sql, params, indexes) in [
            (
                live_children_sql(Dialect::Sqlite),
                &["h"][..],
                &[
                    "records_resident_household",
                    "records_household_unit",
                    "records_place_parent",
                ][..],
            ),
            (
                id_number_sql(Dialect::Sqlite),
                &["g", "n", "x"][..],
                &["records_resident_id_number"][..],
            ),
        ] {
            let sql = super::super::sql::sqlite_placeholders(&sql);
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let plan = plan.join("; ");
            for index in indexes {
                assert!(plan.contains(&format!("USING INDEX {index}")), "{index}: {plan}");
            }
            assert!(!plan.contains("SCAN records"), "{plan}");
        }
    }
}
