//! Photos: checked, hashed and copied into the store's own folder before the
//! transaction that records them, so a record never refers to bytes that are
//! not durably on disk. Files are named by their SHA-256: the same photo
//! attached twice is stored once.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use rusqlite::{Connection, Transaction, params};
use sha2::{Digest, Sha256};

use crate::entity::Entity;
use crate::error::{Code, Error, Result};
use crate::input::{NewPhoto, PhotoSource};
use crate::model::{Photo, PhotoOwner};
use crate::outbox::{self, Change};
use crate::store::Store;
use crate::validate::{self, Location, limits};

/// A photo whose bytes are safely in the photo folder, ready to be recorded.
#[derive(Clone)]
pub(crate) struct StagedPhoto {
    sha256: String,
    size: u64,
    mime: &'static str,
    taken_at_ms: Option<i64>,
    location: Option<Location>,
}

impl Store {
    /// Checks `photos` and copies their bytes into the photo folder. `field`
    /// names the list in errors (`photos[2]`).
    pub(crate) fn stage_photos(&self, field: &str, photos: &[NewPhoto]) -> Result<Vec<StagedPhoto>> {
        let max = limits::PHOTOS_PER_RECORD;
        if photos.len() > max {
            return Err(Error::invalid(field, Code::TooMany { max }));
        }
        self.stage(photos, |i| format!("{field}[{i}]"))
    }

    /// Checks one photo and copies its bytes; errors name `field`.
    pub(crate) fn stage_photo(&self, field: &str, photo: &NewPhoto) -> Result<StagedPhoto> {
        let mut staged = self.stage(std::slice::from_ref(photo), |_| field.to_owned())?;
        staged.pop().ok_or_else(|| Error::Internal("photo not staged".into()))
    }

    fn stage(&self, photos: &[NewPhoto], name: impl Fn(usize) -> String) -> Result<Vec<StagedPhoto>> {
        // Check them all before writing any file.
        let mut loaded = Vec::with_capacity(photos.len());
        for (i, p) in photos.iter().enumerate() {
            let f = name(i);
            if let Some(loc) = &p.location {
                loc.validate(&format!("{f}.location"))?;
            }
            if let Some(t) = p.taken_at_ms {
                validate::not_in_future(&format!("{f}.taken_at_ms"), t, self.now_ms())?;
            }
            let bytes = read_source(&f, &p.source)?;
            let mime = validate::photo_mime(&bytes).ok_or_else(|| Error::invalid(&f, Code::UnsupportedType))?;
            loaded.push((bytes, mime, p));
        }
        let mut staged = Vec::with_capacity(loaded.len());
        for (bytes, mime, p) in loaded {
            let sha256 = hex::encode(Sha256::digest(&bytes));
            if !self.photo_dir().join(&sha256).exists() {
                write_durably(self.photo_dir(), &sha256, &self.seal_photo(&bytes, &sha256)?)?;
            }
            staged.push(StagedPhoto {
                sha256,
                size: bytes.len() as u64,
                mime,
                taken_at_ms: p.taken_at_ms,
                location: p.location,
            });
        }
        Ok(staged)
    }

    /// Removes photo files that no record refers to: left behind when a
    /// capture failed after its photos were copied, or by a crash between the
    /// copy and the commit. Run at open, before any capture can race with it.
    pub(crate) fn collect_orphan_photos(&self) -> Result<usize> {
        let Ok(entries) = fs::read_dir(self.photo_dir()) else {
            return Ok(0);
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let orphan = if name.ends_with(".tmp") {
                true
            } else {
                let used: i64 = self.read(|c| {
                    Ok(c.prepare_cached("SELECT count(*) FROM photos WHERE sha256 = ?1")?
                        .query_row([&name], |r| r.get(0))?)
                })?;
                used == 0
            };
            if orphan {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "orphan photo files removed");
        }
        Ok(removed)
    }

    /// The bytes of a stored photo (decrypted when the store is keyed).
    pub fn photo_bytes(&self, photo: &Photo) -> Result<Vec<u8>> {
        self.photo_file_bytes(&photo.sha256)
    }

    /// The plain bytes of the photo file named `sha256`.
    pub(crate) fn photo_file_bytes(&self, sha256: &str) -> Result<Vec<u8>> {
        self.open_photo(fs::read(self.photo_dir().join(sha256))?, sha256)
    }
}

/// Records staged photos for `owner`; queues their operations when `queue`.
pub(crate) fn insert_photos(
    tx: &Transaction<'_>,
    owner: &PhotoOwner,
    staged: Vec<StagedPhoto>,
    queue: bool,
    now: i64,
) -> Result<Vec<Photo>> {
    let mut out = Vec::with_capacity(staged.len());
    for s in staged {
        let photo = Photo {
            id: crate::new_id(),
            owner: owner.clone(),
            sha256: s.sha256,
            size: s.size,
            mime: s.mime.to_owned(),
            taken_at_ms: s.taken_at_ms,
            location: s.location,
            uploaded: false,
        };
        tx.prepare_cached(
            "INSERT INTO photos (id, owner_kind, owner_id, sha256, size, mime, taken_at, location, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            photo.id,
            owner.kind(),
            owner.id(),
            photo.sha256,
            photo.size as i64,
            photo.mime,
            photo.taken_at_ms,
            photo.location.map(|l| serde_json::to_string(&l)).transpose()?,
            now
        ])?;
        if queue {
            queue_photo(tx, &photo, now)?;
        }
        out.push(photo);
    }
    Ok(out)
}

/// Queues the create operation of a photo's metadata.
pub(crate) fn queue_photo(tx: &Transaction<'_>, photo: &Photo, now: i64) -> Result<()> {
    outbox::enqueue(tx, Entity::Photo, &photo.id, Change::Create, now)?;
    Ok(())
}

const PHOTO_COLUMNS: &str = "id, owner_kind, owner_id, sha256, size, mime, taken_at, location, uploaded_at";

/// The photos of one owner, oldest first.
pub(crate) fn photos_of(conn: &Connection, owner: &PhotoOwner) -> Result<Vec<Photo>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PHOTO_COLUMNS} FROM photos WHERE owner_kind = ?1 AND owner_id = ?2 ORDER BY created_at, id"
    ))?;
    let mut rows = stmt.query(params![owner.kind(), owner.id()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(photo_from_row(r)?);
    }
    Ok(out)
}

/// One photo's metadata by id.
pub(crate) fn load_photo(conn: &Connection, id: &str) -> Result<Photo> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {PHOTO_COLUMNS} FROM photos WHERE id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => photo_from_row(r),
        None => Err(Error::NotFound {
            entity: "photo",
            id: id.to_owned(),
        }),
    }
}

fn photo_from_row(r: &rusqlite::Row<'_>) -> Result<Photo> {
    let owner_kind: String = r.get(1)?;
    let owner_id: String = r.get(2)?;
    let owner = match owner_kind.as_str() {
        "incident" => PhotoOwner::Incident(owner_id),
        "incident_event" => PhotoOwner::IncidentEvent(owner_id),
        "service_log" => PhotoOwner::ServiceLog(owner_id),
        "inspection" => PhotoOwner::Inspection(owner_id),
        other => return Err(Error::Internal(format!("unknown photo owner {other}"))),
    };
    let location: Option<String> = r.get(7)?;
    let size: i64 = r.get(4)?;
    Ok(Photo {
        id: r.get(0)?,
        owner,
        sha256: r.get(3)?,
        size: size.unsigned_abs(),
        mime: r.get(5)?,
        taken_at_ms: r.get(6)?,
        location: location.map(|l| serde_json::from_str(&l)).transpose()?,
        uploaded: r.get::<_, Option<i64>>(8)?.is_some(),
    })
}

fn read_source(field: &str, source: &PhotoSource) -> Result<Vec<u8>> {
    let max = limits::PHOTO_BYTES;
    let bytes = match source {
        PhotoSource::Bytes(b) => {
            if b.len() as u64 > max {
                return Err(Error::invalid(field, Code::TooLarge { max }));
            }
            b.clone()
        }
        PhotoSource::File(path) => {
            let file = fs::File::open(path).map_err(|_| Error::invalid(field, Code::Unreadable))?;
            let len = file
                .metadata()
                .map_err(|_| Error::invalid(field, Code::Unreadable))?
                .len();
            if len > max {
                return Err(Error::invalid(field, Code::TooLarge { max }));
            }
            let mut bytes = Vec::with_capacity(len as usize);
            // take(): the file may grow while we read it.
            file.take(max + 1)
                .read_to_end(&mut bytes)
                .map_err(|_| Error::invalid(field, Code::Unreadable))?;
            if bytes.len() as u64 > max {
                return Err(Error::invalid(field, Code::TooLarge { max }));
            }
            bytes
        }
    };
    if bytes.is_empty() {
        return Err(Error::invalid(field, Code::Empty));
    }
    Ok(bytes)
}

/// Writes `bytes` to `dir/name` so that it survives a power cut: a temporary
/// file, fsync, rename, fsync of the folder. An existing file of that name
/// already holds the same bytes (the name is their hash).
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let target = dir.join(name);
    if target.exists() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}.tmp", crate::new_id()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, &target)?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}
