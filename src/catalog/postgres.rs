//! The catalog in PostgreSQL: for several layerpipe replicas sharing one catalog.
//!
//! The synchronous `postgres` client, on the catalog's own threads (one writer, a few
//! readers): the same blocking [`Store`] the SQLite backend is, and no database I/O on
//! the threads that serve requests. A layer's entries go in with one `COPY` in the
//! transaction that adds the layer; two replicas recording one layer at once meet at
//! its unique digest, and the second adds only where it saw it. Names are found
//! through a pg_trgm GIN index with `ILIKE`.
//!
//! Known gap: no TLS to the database (a URL asking for `sslmode=require` is refused at
//! start-up rather than sent in the clear); keep it on loopback or a private network.

use std::io::Write as _;
use std::time::Duration;

use ::postgres::config::SslMode;
use ::postgres::{Client, Config, NoTls, Row};

use super::schema::{self, VERSION_TABLE};
use super::sqlite::like_escape;
use super::{
    int, kind_from, kind_name, now, path_bytes, path_key, stored_path, EntryRow, FindingKey, ImageLayer, ImageRow,
    ImageSeen, LayerRow, LayerSecrets, LayerSeen, NameHit, NameQuery, PathRow, SecretRow, Source, Store, StoreError,
    StoredFinding, Totals,
};
use crate::secrets::Masked;

/// How long connecting may take, unless the URL says `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The advisory lock that serialises migrations between replicas starting together.
const MIGRATION_LOCK: i64 = 0x6c61_7965_7270_6970; // "layerpip"
/// Bytes of `COPY` data gathered before they are sent.
const COPY_CHUNK: usize = 1 << 20;

/// One connection to a PostgreSQL catalog.
pub struct PostgresStore {
    client: Client,
}

impl PostgresStore {
    /// Connects to `url` and migrates the catalog's schema. The error never holds the
    /// URL's password.
    pub fn open(url: &str) -> Result<PostgresStore, String> {
        let shown = crate::config::redact_password(url);
        let fail = |e: &dyn std::fmt::Display| format!("cannot open the catalog {shown}: {e}");
        let mut config: Config = url.parse().map_err(|e| fail(&e))?;
        if config.get_ssl_mode() == SslMode::Require {
            return Err(fail(&"sslmode=require asks for TLS, which the catalog's PostgreSQL client does not speak"));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let mut client = config.connect(NoTls).map_err(|e| fail(&e))?;
        migrate(&mut client).map_err(|e| fail(&e))?;
        Ok(PostgresStore { client })
    }
}

/// Brings the schema to the latest version, one migration per transaction, under an
/// advisory lock so that replicas starting at once migrate once.
fn migrate(client: &mut Client) -> Result<(), StoreError> {
    loop {
        let mut tx = client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(VERSION_TABLE)?;
        let current: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])?.get(0);
        let Some(next) = schema::pending(schema::POSTGRES, current.max(0) as u32).map_err(StoreError)?.first() else {
            return Ok(());
        };
        tx.batch_execute(next.sql)?;
        tx.execute("DELETE FROM schema_version", &[])?;
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&(next.version as i32)])?;
        tx.commit()?;
    }
}

/// Appends `text` as a `COPY` text-format field.
fn copy_text(out: &mut Vec<u8>, text: &str) {
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b => out.push(b),
        }
    }
}

/// Appends `bytes` as a `COPY` text-format `bytea` field (`\x…`, its `\` escaped).
fn copy_bytea(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\\\x");
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

fn hit(r: &Row) -> NameHit {
    NameHit {
        id: r.get(0),
        layer: r.get(1),
        media_type: r.get(2),
        path: path_bytes(r.get(3), r.get(4)),
        link: r.get(5),
        size: r.get::<_, i64>(6).max(0) as u64,
        mode: r.get::<_, i64>(7) as u32,
        kind: kind_from(r.get(8)),
    }
}

impl Store for PostgresStore {
    fn record_layer(
        &mut self,
        layer: &LayerSeen,
        entries: &mut dyn Iterator<Item = EntryRow<'_>>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.client.transaction()?;
        let inserted = tx.query_opt(
            "INSERT INTO layers (digest, size, media_type, entries, complete, recorded_at)
             VALUES ($1, $2, $3, 0, $4, $5) ON CONFLICT (digest) DO NOTHING RETURNING id",
            &[&layer.digest, &int(layer.size), &layer.media_type, &layer.complete, &now()],
        )?;
        let layer_id: i64 = match &inserted {
            Some(row) => row.get(0),
            None => tx.query_one("SELECT id FROM layers WHERE digest = $1", &[&layer.digest])?.get(0),
        };
        if inserted.is_some() {
            // New names wait in the GIN index's pending list and are merged into it when
            // the list is full: a larger list merges a large layer a few times, not hundreds.
            tx.batch_execute("SET LOCAL gin_pending_list_limit = '256MB'")?;
            let mut count: i64 = 0;
            let mut copy = tx
                .copy_in("COPY entries (layer_id, idx, path, raw_path, path_key, size, mode, kind, link) FROM STDIN")?;
            let mut chunk = Vec::with_capacity(COPY_CHUNK + 64 * 1024);
            let io = |e: std::io::Error| StoreError(format!("PostgreSQL: COPY of a layer's entries failed: {e}"));
            for e in entries {
                let (text, raw) = stored_path(e.path);
                let _ = write!(chunk, "{layer_id}\t{}\t", e.index);
                copy_text(&mut chunk, &text);
                chunk.push(b'\t');
                match raw {
                    Some(raw) => copy_bytea(&mut chunk, raw),
                    None => chunk.extend_from_slice(b"\\N"),
                }
                let _ = write!(chunk, "\t{}\t{}\t{}\t{}\t", path_key(e.path), int(e.size), e.mode, kind_name(e.kind));
                copy_text(&mut chunk, &String::from_utf8_lossy(e.link));
                chunk.push(b'\n');
                count += 1;
                if chunk.len() >= COPY_CHUNK {
                    copy.write_all(&chunk).map_err(io)?;
                    chunk.clear();
                }
            }
            copy.write_all(&chunk).map_err(io)?;
            copy.finish()?;
            tx.execute("UPDATE layers SET entries = $1 WHERE id = $2", &[&count, &layer_id])?;
        }
        tx.execute(
            "INSERT INTO layer_sources (layer_id, registry, repository, image, layer_number, seen_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (layer_id, registry, repository)
             DO UPDATE SET image = excluded.image, layer_number = excluded.layer_number, seen_at = excluded.seen_at",
            &[&layer_id, &layer.registry, &layer.repository, &layer.image, &i64::from(layer.layer), &now()],
        )?;
        tx.commit()?;
        Ok(inserted.is_some())
    }

    fn record_image(&mut self, image: &ImageSeen) -> Result<(), StoreError> {
        let mut tx = self.client.transaction()?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO images (registry, repository, manifest_digest, config_digest, platform, created, seen_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (registry, repository, manifest_digest) DO UPDATE SET
                     platform = coalesce(excluded.platform, images.platform),
                     created = coalesce(excluded.created, images.created),
                     seen_at = excluded.seen_at
                 RETURNING id",
                &[
                    &image.registry,
                    &image.repository,
                    &image.manifest_digest,
                    &image.config_digest,
                    &image.platform,
                    &image.created,
                    &now(),
                ],
            )?
            .get(0);
        tx.execute("DELETE FROM image_layers WHERE image_id = $1", &[&id])?;
        let insert = tx.prepare(
            "INSERT INTO image_layers (image_id, position, digest, size, media_type) VALUES ($1, $2, $3, $4, $5)",
        )?;
        for (i, layer) in image.layers.iter().enumerate() {
            tx.execute(&insert, &[&id, &(i as i64 + 1), &layer.digest, &int(layer.size), &layer.media_type])?;
        }
        if let Some(tag) = &image.tag {
            tx.execute(
                "INSERT INTO tags (registry, repository, tag, manifest_digest, seen_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (registry, repository, tag, manifest_digest) DO UPDATE SET seen_at = excluded.seen_at",
                &[&image.registry, &image.repository, tag, &image.manifest_digest, &now()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn find_names(&mut self, query: &NameQuery, after: i64, limit: usize) -> Result<Vec<NameHit>, StoreError> {
        let escaped = like_escape(&query.needle);
        let pattern = if query.anchored { format!("{escaped}%") } else { format!("%{escaped}%") };
        let rows = self.client.query(
            "SELECT e.id, l.digest, l.media_type, e.path, e.raw_path, e.link, e.size, e.mode, e.kind
             FROM entries e JOIN layers l ON l.id = e.layer_id
             WHERE e.path ILIKE $1 AND e.id > $2 ORDER BY e.id LIMIT $3",
            &[&pattern, &after, &(limit as i64)],
        )?;
        Ok(rows.iter().map(hit).collect())
    }

    fn images_with_layer(&mut self, digest: &str, limit: usize) -> Result<(Vec<ImageRow>, u64), StoreError> {
        let total: i64 = self
            .client
            .query_one("SELECT count(DISTINCT image_id) FROM image_layers WHERE digest = $1", &[&digest])?
            .get(0);
        let rows = self.client.query(
            "SELECT i.id, i.registry, i.repository, i.manifest_digest, i.config_digest, i.platform, i.created
             FROM images i WHERE i.id IN (SELECT image_id FROM image_layers WHERE digest = $1)
             ORDER BY i.seen_at DESC, i.id DESC LIMIT $2",
            &[&digest, &(limit as i64)],
        )?;
        let mut images = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.get(0);
            let mut image = ImageRow {
                registry: r.get(1),
                repository: r.get(2),
                manifest_digest: r.get(3),
                config_digest: r.get(4),
                platform: r.get(5),
                created: r.get(6),
                tags: Vec::new(),
                layers: Vec::new(),
            };
            image.layers = self
                .client
                .query(
                    "SELECT digest, size, media_type FROM image_layers WHERE image_id = $1 ORDER BY position",
                    &[&id],
                )?
                .iter()
                .map(|r| ImageLayer { digest: r.get(0), size: r.get::<_, i64>(1).max(0) as u64, media_type: r.get(2) })
                .collect();
            image.tags = self
                .client
                .query(
                    "SELECT tag FROM tags WHERE registry = $1 AND repository = $2 AND manifest_digest = $3 ORDER BY tag",
                    &[&image.registry, &image.repository, &image.manifest_digest],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            images.push(image);
        }
        Ok((images, total.max(0) as u64))
    }

    fn entries_at(&mut self, layers: &[String], keys: &[i64]) -> Result<Vec<PathRow>, StoreError> {
        if layers.is_empty() || keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.client.query(
            "SELECT l.digest, e.path, e.raw_path, e.kind FROM layers l JOIN entries e ON e.layer_id = l.id
             WHERE l.digest = ANY($1) AND e.path_key = ANY($2)",
            &[&layers, &keys],
        )?;
        Ok(rows
            .iter()
            .map(|r| PathRow { layer: r.get(0), path: path_bytes(r.get(1), r.get(2)), kind: kind_from(r.get(3)) })
            .collect())
    }

    fn layer(&mut self, digest: &str) -> Result<Option<LayerRow>, StoreError> {
        let Some(r) = self.client.query_opt(
            "SELECT id, digest, size, media_type, entries, complete FROM layers WHERE digest = $1",
            &[&digest],
        )?
        else {
            return Ok(None);
        };
        let id: i64 = r.get(0);
        let sources = self
            .client
            .query(
                "SELECT registry, repository, image, layer_number FROM layer_sources
                 WHERE layer_id = $1 ORDER BY registry, repository",
                &[&id],
            )?
            .iter()
            .map(|r| Source {
                registry: r.get(0),
                repository: r.get(1),
                image: r.get(2),
                layer: r.get::<_, i64>(3).clamp(0, i64::from(u32::MAX)) as u32,
            })
            .collect();
        Ok(Some(LayerRow {
            digest: r.get(1),
            size: r.get::<_, i64>(2).max(0) as u64,
            media_type: r.get(3),
            entries: r.get::<_, i64>(4).max(0) as u64,
            complete: r.get(5),
            sources,
        }))
    }

    fn record_secrets(&mut self, digest: &str, secrets: &LayerSecrets) -> Result<bool, StoreError> {
        let mut tx = self.client.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO secret_scans (digest, complete, scanned_at) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO NOTHING",
            &[&digest, &secrets.complete, &now()],
        )? == 1;
        if inserted {
            let insert = tx.prepare(
                "INSERT INTO secret_findings (digest, idx, path, line, rule, head, len)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )?;
            for (idx, f) in secrets.findings.iter().enumerate() {
                tx.execute(
                    &insert,
                    &[
                        &digest,
                        &int(idx as u64),
                        &f.path,
                        &i64::from(f.line),
                        &f.rule,
                        &f.value.head(),
                        &int(f.value.len() as u64),
                    ],
                )?;
            }
        }
        tx.commit()?;
        Ok(inserted)
    }

    fn secrets(&mut self, digest: &str) -> Result<Option<LayerSecrets>, StoreError> {
        let Some(scan) = self.client.query_opt("SELECT complete FROM secret_scans WHERE digest = $1", &[&digest])?
        else {
            return Ok(None);
        };
        let findings = self
            .client
            .query(
                "SELECT path, line, rule, head, len FROM secret_findings WHERE digest = $1 ORDER BY idx",
                &[&digest],
            )?
            .iter()
            .map(|r| SecretRow {
                path: r.get(0),
                line: r.get::<_, i64>(1).clamp(0, i64::from(u32::MAX)) as u32,
                rule: r.get(2),
                value: Masked::from_parts(r.get(3), r.get::<_, i64>(4).max(0) as usize),
            })
            .collect();
        Ok(Some(LayerSecrets { complete: scan.get(0), findings }))
    }

    fn secret_findings(&mut self, after: Option<&FindingKey>, limit: usize) -> Result<Vec<StoredFinding>, StoreError> {
        let (layer, idx) = after.map_or(("", -1), |k| (k.layer.as_str(), k.idx));
        let rows = self.client.query(
            "SELECT digest, idx, path, line, rule, head, len FROM secret_findings
             WHERE (digest, idx) > ($1, $2) ORDER BY digest, idx LIMIT $3",
            &[&layer, &idx, &int(limit as u64)],
        )?;
        Ok(rows
            .iter()
            .map(|r| StoredFinding {
                key: FindingKey { layer: r.get(0), idx: r.get(1) },
                row: SecretRow {
                    path: r.get(2),
                    line: r.get::<_, i64>(3).clamp(0, i64::from(u32::MAX)) as u32,
                    rule: r.get(4),
                    value: Masked::from_parts(r.get(5), r.get::<_, i64>(6).max(0) as usize),
                },
            })
            .collect())
    }

    fn totals(&mut self) -> Result<Totals, StoreError> {
        let r = self.client.query_one(
            "SELECT count(*), coalesce(sum(entries), 0)::bigint, (SELECT count(*) FROM images) FROM layers",
            &[],
        )?;
        Ok(Totals {
            layers: r.get::<_, i64>(0) as u64,
            entries: r.get::<_, i64>(1) as u64,
            images: r.get::<_, i64>(2) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_fields_escape_what_copy_reads_specially() {
        let mut out = Vec::new();
        copy_text(&mut out, "a\tb\nc\\d\re");
        assert_eq!(out, b"a\\tb\\nc\\\\d\\re");
        out.clear();
        copy_bytea(&mut out, b"\xff\x00");
        assert_eq!(out, b"\\\\xff00");
    }
}
