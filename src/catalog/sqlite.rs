//! The catalog in an SQLite file: the default, beside the layer indexes.
//!
//! The file is in WAL mode, so the reader threads see every committed layer while the
//! writer adds the next one. A layer's entries go in with one prepared statement each
//! for the row and its FTS5 trigram entry, all in one transaction: a layer is in the
//! catalog whole or not at all. SQLite is the bundled build (rusqlite's `bundled`):
//! the trigram tokenizer needs 3.34 or later, which a system library may not be.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};

use super::schema::{self, VERSION_TABLE};
use super::{
    int, kind_from, kind_name, now, path_bytes, path_key, stored_path, EntryRow, FindingKey, ImageLayer, ImageRow,
    ImageSeen, LayerRow, LayerSecrets, LayerSeen, NameHit, NameQuery, PathRow, SecretRow, Source, Store, StoreError,
    StoredFinding, Totals,
};
use crate::secrets::Masked;

/// How long a statement waits for another connection's write lock (another process's
/// writer, or a migration) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection to an SQLite catalog.
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating it and its folder when missing) and migrates the catalog at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, String> {
        let fail = |e: &dyn std::fmt::Display| format!("cannot open the catalog sqlite:{}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let mut conn = Connection::open(path).map_err(|e| fail(&e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| fail(&e))?;
        // WAL: readers never wait for the writer; NORMAL: a commit is durable once the
        // WAL is synced at checkpoints, which a catalog (rebuilt by browsing) can afford.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| fail(&e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(fail(&format!("it cannot be put in WAL mode (it is in {mode} mode)")));
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| fail(&e))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| fail(&e))?;
        // 64 MiB of page cache (negative: KiB): a large layer's index pages stay in memory.
        conn.pragma_update(None, "cache_size", -65536).map_err(|e| fail(&e))?;
        migrate(&mut conn).map_err(|e| fail(&e))?;
        Ok(SqliteStore { conn })
    }
}

/// Brings the schema to the latest version, one migration per transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(VERSION_TABLE)?;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: u32 = tx.query_row("SELECT coalesce(max(version), 0) FROM schema_version", [], |r| r.get(0))?;
        let Some(next) = schema::pending(schema::SQLITE, current).map_err(StoreError)?.first() else {
            return Ok(());
        };
        tx.execute_batch(next.sql)?;
        tx.execute("DELETE FROM schema_version", [])?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [next.version])?;
        tx.commit()?;
    }
}

impl Store for SqliteStore {
    fn record_layer(
        &mut self,
        layer: &LayerSeen,
        entries: &mut dyn Iterator<Item = EntryRow<'_>>,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO layers (digest, size, media_type, entries, complete, recorded_at)
             VALUES (?1, ?2, ?3, 0, ?4, ?5) ON CONFLICT (digest) DO NOTHING",
            params![layer.digest, int(layer.size), layer.media_type, layer.complete, now()],
        )? == 1;
        let layer_id: i64 = if inserted {
            tx.last_insert_rowid()
        } else {
            tx.query_row("SELECT id FROM layers WHERE digest = ?1", [&layer.digest], |r| r.get(0))?
        };
        if inserted {
            let mut count: i64 = 0;
            {
                let mut insert_entry = tx.prepare_cached(
                    "INSERT INTO entries (layer_id, idx, path, raw_path, path_key, size, mode, kind, link)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                let mut insert_name = tx.prepare_cached("INSERT INTO entry_names (rowid, path) VALUES (?1, ?2)")?;
                for e in entries {
                    let (text, raw) = stored_path(e.path);
                    let id = insert_entry.insert(params![
                        layer_id,
                        e.index,
                        text,
                        raw,
                        path_key(e.path),
                        int(e.size),
                        e.mode,
                        kind_name(e.kind),
                        String::from_utf8_lossy(e.link),
                    ])?;
                    insert_name.execute(params![id, text])?;
                    count += 1;
                }
            }
            tx.execute("UPDATE layers SET entries = ?1 WHERE id = ?2", params![count, layer_id])?;
        }
        tx.execute(
            "INSERT INTO layer_sources (layer_id, registry, repository, image, layer_number, seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (layer_id, registry, repository)
             DO UPDATE SET image = excluded.image, layer_number = excluded.layer_number, seen_at = excluded.seen_at",
            params![layer_id, layer.registry, layer.repository, layer.image, layer.layer, now()],
        )?;
        tx.commit()?;
        Ok(inserted)
    }

    fn record_image(&mut self, image: &ImageSeen) -> Result<(), StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id: i64 = tx.query_row(
            "INSERT INTO images (registry, repository, manifest_digest, config_digest, platform, created, seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (registry, repository, manifest_digest) DO UPDATE SET
                 platform = coalesce(excluded.platform, images.platform),
                 created = coalesce(excluded.created, images.created),
                 seen_at = excluded.seen_at
             RETURNING id",
            params![
                image.registry,
                image.repository,
                image.manifest_digest,
                image.config_digest,
                image.platform,
                image.created,
                now()
            ],
            |r| r.get(0),
        )?;
        // The same manifest digest always lists the same layers: replacing them is cheap.
        tx.execute("DELETE FROM image_layers WHERE image_id = ?1", [id])?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO image_layers (image_id, position, digest, size, media_type) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (i, layer) in image.layers.iter().enumerate() {
                insert.execute(params![id, i as i64 + 1, layer.digest, int(layer.size), layer.media_type])?;
            }
        }
        if let Some(tag) = &image.tag {
            tx.execute(
                "INSERT INTO tags (registry, repository, tag, manifest_digest, seen_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (registry, repository, tag, manifest_digest) DO UPDATE SET seen_at = excluded.seen_at",
                params![image.registry, image.repository, tag, image.manifest_digest, now()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn find_names(&mut self, query: &NameQuery, after: i64, limit: usize) -> Result<Vec<NameHit>, StoreError> {
        // Inside double quotes, FTS5 takes everything literally but `"`, written twice.
        let phrase = format!("\"{}\"", query.needle.replace('"', "\"\""));
        // LIKE folds ASCII case only: a non-ASCII prefix is left to the exact check.
        let prefix = (query.anchored && query.needle.is_ascii()).then(|| format!("{}%", like_escape(&query.needle)));
        let sql = format!(
            "SELECT e.id, l.digest, l.media_type, e.path, e.raw_path, e.link, e.size, e.mode, e.kind
             FROM entry_names JOIN entries e ON e.id = entry_names.rowid JOIN layers l ON l.id = e.layer_id
             WHERE entry_names MATCH ?1 AND entry_names.rowid > ?2 {}
             ORDER BY entry_names.rowid LIMIT ?3",
            if prefix.is_some() { "AND e.path LIKE ?4 ESCAPE '\\'" } else { "" }
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        let limit = limit as i64;
        let map = |r: &rusqlite::Row<'_>| {
            Ok(NameHit {
                id: r.get(0)?,
                layer: r.get(1)?,
                media_type: r.get(2)?,
                path: path_bytes(r.get(3)?, r.get(4)?),
                link: r.get(5)?,
                size: r.get::<_, i64>(6)?.max(0) as u64,
                mode: r.get(7)?,
                kind: kind_from(&r.get::<_, String>(8)?),
            })
        };
        let rows: Result<Vec<NameHit>, _> = match &prefix {
            Some(prefix) => statement.query_map(params![phrase, after, limit, prefix], map)?.collect(),
            None => statement.query_map(params![phrase, after, limit], map)?.collect(),
        };
        Ok(rows?)
    }

    fn images_with_layer(&mut self, digest: &str, limit: usize) -> Result<(Vec<ImageRow>, u64), StoreError> {
        let total: i64 = self.conn.query_row(
            "SELECT count(DISTINCT image_id) FROM image_layers WHERE digest = ?1",
            [digest],
            |r| r.get(0),
        )?;
        let mut statement = self.conn.prepare_cached(
            "SELECT i.id, i.registry, i.repository, i.manifest_digest, i.config_digest, i.platform, i.created
             FROM images i WHERE i.id IN (SELECT image_id FROM image_layers WHERE digest = ?1)
             ORDER BY i.seen_at DESC, i.id DESC LIMIT ?2",
        )?;
        let found = statement
            .query_map(params![digest, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    ImageRow {
                        registry: r.get(1)?,
                        repository: r.get(2)?,
                        manifest_digest: r.get(3)?,
                        config_digest: r.get(4)?,
                        platform: r.get(5)?,
                        created: r.get(6)?,
                        tags: Vec::new(),
                        layers: Vec::new(),
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        drop(statement);
        let mut images = Vec::with_capacity(found.len());
        for (id, mut image) in found {
            let mut layers = self.conn.prepare_cached(
                "SELECT digest, size, media_type FROM image_layers WHERE image_id = ?1 ORDER BY position",
            )?;
            image.layers = layers
                .query_map([id], |r| {
                    Ok(ImageLayer { digest: r.get(0)?, size: r.get::<_, i64>(1)?.max(0) as u64, media_type: r.get(2)? })
                })?
                .collect::<Result<_, _>>()?;
            let mut tags = self.conn.prepare_cached(
                "SELECT tag FROM tags WHERE registry = ?1 AND repository = ?2 AND manifest_digest = ?3 ORDER BY tag",
            )?;
            image.tags = tags
                .query_map(params![image.registry, image.repository, image.manifest_digest], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            images.push(image);
        }
        Ok((images, total.max(0) as u64))
    }

    fn entries_at(&mut self, layers: &[String], keys: &[i64]) -> Result<Vec<PathRow>, StoreError> {
        if layers.is_empty() || keys.is_empty() {
            return Ok(Vec::new());
        }
        let list = |n: usize| vec!["?"; n].join(",");
        let sql = format!(
            "SELECT l.digest, e.path, e.raw_path, e.kind FROM layers l JOIN entries e ON e.layer_id = l.id
             WHERE l.digest IN ({}) AND e.path_key IN ({})",
            list(layers.len()),
            list(keys.len())
        );
        let values = layers
            .iter()
            .map(|l| rusqlite::types::Value::Text(l.clone()))
            .chain(keys.iter().map(|&k| rusqlite::types::Value::Integer(k)));
        let mut statement = self.conn.prepare(&sql)?;
        let rows = statement
            .query_map(params_from_iter(values), |r| {
                Ok(PathRow {
                    layer: r.get(0)?,
                    path: path_bytes(r.get(1)?, r.get(2)?),
                    kind: kind_from(&r.get::<_, String>(3)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn layer(&mut self, digest: &str) -> Result<Option<LayerRow>, StoreError> {
        let found = self
            .conn
            .query_row(
                "SELECT id, digest, size, media_type, entries, complete FROM layers WHERE digest = ?1",
                [digest],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        LayerRow {
                            digest: r.get(1)?,
                            size: r.get::<_, i64>(2)?.max(0) as u64,
                            media_type: r.get(3)?,
                            entries: r.get::<_, i64>(4)?.max(0) as u64,
                            complete: r.get(5)?,
                            sources: Vec::new(),
                        },
                    ))
                },
            )
            .optional()?;
        let Some((id, mut layer)) = found else { return Ok(None) };
        let mut statement = self.conn.prepare_cached(
            "SELECT registry, repository, image, layer_number FROM layer_sources
             WHERE layer_id = ?1 ORDER BY registry, repository",
        )?;
        layer.sources = statement
            .query_map([id], |r| {
                Ok(Source { registry: r.get(0)?, repository: r.get(1)?, image: r.get(2)?, layer: r.get(3)? })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(layer))
    }

    fn record_secrets(&mut self, digest: &str, secrets: &LayerSecrets) -> Result<bool, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO secret_scans (digest, complete, scanned_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (digest) DO NOTHING",
            params![digest, secrets.complete, now()],
        )? == 1;
        if inserted {
            let mut insert = tx.prepare_cached(
                "INSERT INTO secret_findings (digest, idx, path, line, rule, head, len)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (idx, f) in secrets.findings.iter().enumerate() {
                insert.execute(params![
                    digest,
                    int(idx as u64),
                    f.path,
                    f.line,
                    f.rule,
                    f.value.head(),
                    int(f.value.len() as u64)
                ])?;
            }
        }
        tx.commit()?;
        Ok(inserted)
    }

    fn secrets(&mut self, digest: &str) -> Result<Option<LayerSecrets>, StoreError> {
        let complete: Option<bool> = self
            .conn
            .query_row("SELECT complete FROM secret_scans WHERE digest = ?1", [digest], |r| r.get(0))
            .optional()?;
        let Some(complete) = complete else { return Ok(None) };
        let mut statement = self
            .conn
            .prepare_cached("SELECT path, line, rule, head, len FROM secret_findings WHERE digest = ?1 ORDER BY idx")?;
        let findings = statement
            .query_map([digest], |r| {
                Ok(SecretRow {
                    path: r.get(0)?,
                    line: r.get(1)?,
                    rule: r.get(2)?,
                    value: Masked::from_parts(&r.get::<_, String>(3)?, r.get::<_, i64>(4)?.max(0) as usize),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(LayerSecrets { complete, findings }))
    }

    fn secret_findings(&mut self, after: Option<&FindingKey>, limit: usize) -> Result<Vec<StoredFinding>, StoreError> {
        let (layer, idx) = after.map_or(("", -1), |k| (k.layer.as_str(), k.idx));
        let mut statement = self.conn.prepare_cached(
            "SELECT digest, idx, path, line, rule, head, len FROM secret_findings
             WHERE (digest, idx) > (?1, ?2) ORDER BY digest, idx LIMIT ?3",
        )?;
        let rows = statement
            .query_map(params![layer, idx, int(limit as u64)], |r| {
                Ok(StoredFinding {
                    key: FindingKey { layer: r.get(0)?, idx: r.get(1)? },
                    row: SecretRow {
                        path: r.get(2)?,
                        line: r.get(3)?,
                        rule: r.get(4)?,
                        value: Masked::from_parts(&r.get::<_, String>(5)?, r.get::<_, i64>(6)?.max(0) as usize),
                    },
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn totals(&mut self) -> Result<Totals, StoreError> {
        let (layers, entries): (i64, i64) =
            self.conn.query_row("SELECT count(*), coalesce(sum(entries), 0) FROM layers", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let images: i64 = self.conn.query_row("SELECT count(*) FROM images", [], |r| r.get(0))?;
        Ok(Totals { layers: layers as u64, entries: entries as u64, images: images as u64 })
    }
}

/// `text` with LIKE's wildcards (and the escape itself) escaped by `\`.
pub(super) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
