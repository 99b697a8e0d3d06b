//! Photos: which records give a hash which size, the bytes received whole
//! (`blobs`, and who sent them, `blob_senders`), and unfinished uploads:
//! each statement written once for both engines ([`super::sql`]).

use super::error::StoreResult;
use super::sql::{args, run};
use super::{BACKED, COMPLETE_SENDERS, SENT_BYTES_SQL, Store};

/// `BACKED`, or no condition.
fn backed_if(backed: bool) -> &'static str {
    if backed { BACKED } else { "1 = 1" }
}

impl Store {
    /// The sizes that photo records of these grids give a hash (with
    /// `backed`, only records whose maker sent the bytes: [`BACKED`]).
    pub async fn photo_sizes(&self, grids: Vec<String>, sha: &str, backed: bool) -> StoreResult<Vec<i64>> {
        let sha = sha.to_owned();
        run!(self, read, |c| async move {
            let of_grids = c.dialect().in_list("grid_id", 2);
            c.query(
                &format!(
                    "SELECT DISTINCT size FROM photo_refs p WHERE sha256 = $1 AND {of_grids} AND {}",
                    backed_if(backed)
                ),
                args![&sha, &grids[..]],
            )
            .await?
            .iter()
            .map(|r| r.int(0))
            .collect()
        })
    }

    /// The sizes that photo records of incidents dispatched to this
    /// department give a hash.
    pub async fn department_photo_sizes(&self, department: &str, sha: &str, backed: bool) -> StoreResult<Vec<i64>> {
        let (department, sha) = (department.to_owned(), sha.to_owned());
        run!(self, read, |c| async move {
            c.query(
                &format!(
                    "SELECT DISTINCT p.size FROM photo_refs p JOIN incidents i ON i.id = p.incident_id
                     WHERE p.sha256 = $1 AND i.department = $2 AND {}",
                    backed_if(backed)
                ),
                args![&sha, &department],
            )
            .await?
            .iter()
            .map(|r| r.int(0))
            .collect()
        })
    }

    /// Whether a photo record whose maker sent the bytes names this hash.
    pub async fn photo_referenced(&self, sha: &str) -> StoreResult<bool> {
        let sha = sha.to_owned();
        run!(self, read, |c| async move {
            c.query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM photo_refs p WHERE p.sha256 = $1 AND {BACKED})"),
                args![&sha],
            )
            .await?
            .flag(0)
        })
    }

    /// The size of a complete photo.
    pub async fn blob_size(&self, sha: &str) -> StoreResult<Option<i64>> {
        let sha = sha.to_owned();
        run!(self, read, |c| async move {
            c.query_opt("SELECT size FROM blobs WHERE sha256 = $1", args![&sha])
                .await?
                .map(|r| r.int(0))
                .transpose()
        })
    }

    /// An account's unfinished upload of a photo: (received, size).
    pub async fn upload(&self, sha: &str, account_id: &str) -> StoreResult<Option<(i64, i64)>> {
        let (sha, account_id) = (sha.to_owned(), account_id.to_owned());
        run!(self, read, |c| async move {
            c.query_opt(
                "SELECT received, size FROM uploads WHERE sha256 = $1 AND account_id = $2",
                args![&sha, &account_id],
            )
            .await?
            .map(|r| Ok((r.int(0)?, r.int(1)?)))
            .transpose()
        })
    }

    /// Whether an unfinished upload row exists.
    pub async fn upload_exists(&self, sha: &str, account_id: &str) -> StoreResult<bool> {
        Ok(self.upload(sha, account_id).await?.is_some())
    }

    /// An account's unfinished uploads: (count, bytes).
    pub async fn uploads_of(&self, account_id: &str) -> StoreResult<(i64, i64)> {
        let account_id = account_id.to_owned();
        run!(self, read, |c| async move {
            let r = c
                .query_one(
                    "SELECT count(*), CAST(coalesce(sum(size), 0) AS BIGINT) FROM uploads WHERE account_id = $1",
                    args![&account_id],
                )
                .await?;
            Ok((r.int(0)?, r.int(1)?))
        })
    }

    /// Records that an account's upload reached `received` (from
    /// `expected`); false when its offset had moved meanwhile.
    pub async fn advance_upload(
        &self,
        sha: &str,
        account_id: &str,
        size: i64,
        expected: i64,
        received: i64,
        now: i64,
    ) -> StoreResult<bool> {
        let (sha, account_id) = (sha.to_owned(), account_id.to_owned());
        run!(self, write, |c| async move {
            let n = if expected == 0 {
                c.execute(
                    "INSERT INTO uploads (sha256, account_id, size, received, updated_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (sha256, account_id) DO UPDATE SET received = $4, updated_at = $5
                     WHERE uploads.received = 0",
                    args![&sha, &account_id, size, received, now],
                )
                .await?
            } else {
                c.execute(
                    "UPDATE uploads SET received = $4, updated_at = $5
                     WHERE sha256 = $1 AND account_id = $2 AND size = $3 AND received = $6",
                    args![&sha, &account_id, size, received, now, expected],
                )
                .await?
            };
            Ok(n == 1)
        })
    }

    /// The bytes of photos an account sent whole since `since` (server ms).
    pub async fn sent_bytes_since(&self, account_id: &str, since: i64) -> StoreResult<i64> {
        let account_id = account_id.to_owned();
        run!(self, read, |c| async move {
            c.query_one(SENT_BYTES_SQL, args![&account_id, since]).await?.int(0)
        })
    }

    /// An account's unfinished upload left alone longest: (sha, updated_at).
    pub async fn oldest_upload_of(&self, account_id: &str) -> StoreResult<Option<(String, i64)>> {
        let account_id = account_id.to_owned();
        run!(self, read, |c| async move {
            c.query_opt(
                "SELECT sha256, updated_at FROM uploads WHERE account_id = $1 ORDER BY updated_at, sha256 LIMIT 1",
                args![&account_id],
            )
            .await?
            .map(|r| Ok((r.text(0)?, r.int(1)?)))
            .transpose()
        })
    }

    /// Forgets an account's upload (its bytes did not match).
    pub async fn drop_upload(&self, sha: &str, account_id: &str) -> StoreResult<()> {
        let (sha, account_id) = (sha.to_owned(), account_id.to_owned());
        run!(self, write, |c| async move {
            c.execute(
                "DELETE FROM uploads WHERE sha256 = $1 AND account_id = $2",
                args![&sha, &account_id],
            )
            .await?;
            Ok(())
        })
    }

    /// A photo arrived whole from `account_id`: recorded with its sender
    /// (and the legacy sender, for records from before senders were kept),
    /// that account's upload forgotten, the incidents it documents complete
    /// if nothing else is missing.
    pub async fn complete_blob(&self, sha: &str, size: i64, account_id: &str, now: i64) -> StoreResult<()> {
        let (sha, account_id) = (sha.to_owned(), account_id.to_owned());
        run!(self, write, |c| async move {
            c.execute(
                "INSERT INTO blobs (sha256, size, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (sha256) DO UPDATE SET size = $2",
                args![&sha, size, now],
            )
            .await?;
            c.execute(COMPLETE_SENDERS[0], args![&sha, &account_id, now]).await?;
            c.execute(COMPLETE_SENDERS[1], args![&sha]).await?;
            c.execute(
                &format!(
                    "UPDATE incidents SET complete = NOT EXISTS (
                         SELECT 1 FROM photo_refs p WHERE p.incident_id = incidents.id AND NOT {BACKED})
                     WHERE id IN (SELECT incident_id FROM photo_refs WHERE sha256 = $1)"
                ),
                args![&sha],
            )
            .await?;
            c.execute(
                "DELETE FROM uploads WHERE sha256 = $1 AND account_id = $2",
                args![&sha, &account_id],
            )
            .await?;
            Ok(())
        })
    }

    /// Unfinished uploads untouched since `before`: removed; (sha, account) of each.
    pub async fn expire_uploads(&self, before: i64) -> StoreResult<Vec<(String, String)>> {
        run!(self, write, |c| async move {
            c.query(
                "DELETE FROM uploads WHERE updated_at < $1 RETURNING sha256, account_id",
                args![before],
            )
            .await?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
            .collect()
        })
    }
}
