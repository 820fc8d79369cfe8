//! The catalog at size, and what lazy per-file digests save a first listing
//! (BENCHMARKS.md, "The catalog at size"; issue 24).
//!
//! `cargo bench --bench catalog` runs the issue's sizes: 10 layers of 1,000,000 entries
//! into SQLite and into PostgreSQL (a throwaway cluster of Debian's `postgresql` on
//! 127.0.0.1, as tests/catalog.rs starts one), then the searches, then the listing
//! part. A smoke run takes seconds:
//!
//! ```sh
//! CATALOG_BENCH_ENTRIES=20000 CATALOG_BENCH_LAYERS=3 CATALOG_BENCH_LISTING_MIB=8 \
//!     cargo bench --bench catalog
//! ```
//!
//! Environment (defaults are the issue's sizes):
//! - `CATALOG_BENCH_ENTRIES` entries per layer (1,000,000), `CATALOG_BENCH_LAYERS`
//!   layers (10), `CATALOG_BENCH_BACKENDS` (`sqlite,postgres`), `CATALOG_BENCH_REPEATS`
//!   runs of each search (21), `CATALOG_BENCH_PARTS` (`catalog,listing`),
//!   `CATALOG_BENCH_LISTING_MIB` the listed layer's gzip size (100) and
//!   `CATALOG_BENCH_LISTING_ROUNDS` (9); `CATALOG_BENCH_SQLITE_DIR` keeps the SQLite
//!   catalog in that folder instead of a temporary one.
//!
//! 1. Inserts: each layer through [`Store::record_layer`], the call the catalog's writer
//!    thread makes (src/catalog/service.rs), its paths made before the clock starts.
//!    Entries look like a distribution's: python, node, shared libraries, docs, locales,
//!    headers, man pages, `etc`, with directories and symlinks, from a 4,096-word
//!    vocabulary shared by every layer (so layers overlap in names, as images do).
//! 2. Searches, once every layer is in, through `search::find` (what `/search?q=`
//!    runs: candidates, the exact check, images and fates, one page of 100 hits) and
//!    `search::layer_usage` (`/search?layer=`): a rare substring (one entry in the
//!    whole catalog), a common one, an anchored prefix whose trigrams also match many
//!    paths elsewhere, and the base layer every image ships. Median, p95 and max of the
//!    repeats, and the first run alone; then the first batch of candidates alone
//!    (`Store::find_names`, the database's part of a page). The plans are printed after.
//! 3. A first listing's CPU: a gzip layer of mixed files listed as a first listing does
//!    (`Decompressor::recording` at the index's spacing into the tar reader and the
//!    listing builder, one thread, blob in memory), against the same with a SHA-256 of
//!    every regular file's bytes (layerpipe's own `digest::Hasher`), as eager per-file
//!    digests would cost. CPU time of the thread, interleaved rounds, best and median.

#[allow(dead_code)]
#[path = "../tests/real/postgres.rs"]
mod real_postgres;
#[path = "common/rng.rs"]
mod rng;

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use layerpipe::catalog::postgres::PostgresStore;
use layerpipe::catalog::search::{self, NameSearch};
use layerpipe::catalog::sqlite::SqliteStore;
use layerpipe::catalog::{EntryRow, ImageLayer, ImageSeen, LayerSeen, NameQuery, Store};
use layerpipe::digest::{Algorithm, Hasher};
use layerpipe::index::DEFAULT_SPACING;
use layerpipe::layer::decompress::Decompressor;
use layerpipe::layer::entry::Kind;
use layerpipe::layer::listing::{ListingBuilder, Summary};
use layerpipe::layer::tar::{Header, Scanner, TypeFlag, Visitor, Want};
use real_postgres::RealPostgres;
use rng::Rng;

/// The one path of the catalog the rare search finds (planted in the middle layer).
const RARE_PATH: &str = "home/deploy/.ssh/id_ed25519_release";
/// The searches, as typed into `/search?q=`.
const RARE: &str = "id_ed25519";
const COMMON: &str = "python3";
/// Anchored, and its trigrams are in every `usr/lib/x86_64-linux-gnu/` path too.
const ANCHORED: &str = "^lib/x86_64";
/// Candidates one `find_names` asks for (src/catalog/search.rs, `CANDIDATE_BATCH`):
/// the plans are of the query a page's first batch makes.
const CANDIDATE_BATCH: i64 = 500;
/// Compressed bytes per decompressor write: layerpipe's `scan::STEP`.
const WRITE: usize = 32 * 1024;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().map_or(default, |v| v.replace('_', "").parse().unwrap_or_else(|_| panic!("{name}: {v}")))
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name).unwrap_or_else(|_| default.to_owned()).split(',').map(|s| s.trim().to_owned()).collect()
}

fn main() {
    let parts = env_list("CATALOG_BENCH_PARTS", "catalog,listing");
    if parts.iter().any(|p| p == "catalog") {
        let sizes = Sizes {
            entries: env("CATALOG_BENCH_ENTRIES", 1_000_000).max(1),
            layers: env("CATALOG_BENCH_LAYERS", 10).max(1),
            repeats: env("CATALOG_BENCH_REPEATS", 21).max(1),
        };
        for backend in env_list("CATALOG_BENCH_BACKENDS", "sqlite,postgres") {
            match backend.as_str() {
                "sqlite" => {
                    let dir = tempfile::Builder::new().prefix("layerpipe-catalog-bench-").tempdir().expect("temp dir");
                    // `CATALOG_BENCH_SQLITE_DIR=DIR` keeps the catalog there, to look into
                    // afterwards (it must not hold one already).
                    let kept = std::env::var_os("CATALOG_BENCH_SQLITE_DIR").map(std::path::PathBuf::from);
                    let path = kept.as_deref().unwrap_or(dir.path()).join("catalog.sqlite");
                    assert!(!path.exists(), "{} exists already", path.display());
                    catalog_part("SQLite", &Sqlite { path }, &sizes);
                }
                "postgres" => {
                    let pg = RealPostgres::start();
                    let version = pg.psql("SHOW server_version");
                    catalog_part(&format!("PostgreSQL {version}"), &Postgres { pg }, &sizes);
                }
                other => panic!("CATALOG_BENCH_BACKENDS: unknown backend {other}"),
            }
        }
    }
    if parts.iter().any(|p| p == "listing") {
        listing_part(env("CATALOG_BENCH_LISTING_MIB", 100), env("CATALOG_BENCH_LISTING_ROUNDS", 9).max(1));
    }
}

// ---- 1 and 2: the catalog ----------------------------------------------------------------

struct Sizes {
    entries: usize,
    layers: usize,
    repeats: usize,
}

/// A catalog under test: its connections, and what only its own client can tell.
trait Backend {
    fn open(&self) -> Box<dyn Store>;
    /// Brings the database to the state it settles in between bursts of writes.
    fn settle(&self);
    /// Bytes on disk.
    fn disk_bytes(&self) -> u64;
    /// The plan of each statement a search runs, with the search's own values.
    fn plans(&self, layer_digest: &str);
}

struct Sqlite {
    path: std::path::PathBuf,
}

impl Backend for Sqlite {
    fn open(&self) -> Box<dyn Store> {
        Box::new(SqliteStore::open(&self.path).expect("open SQLite"))
    }

    /// Nothing runs between writes in SQLite (no ANALYZE, no FTS5 optimize): layerpipe
    /// does neither, so the searches see the catalog as written.
    fn settle(&self) {}

    fn disk_bytes(&self) -> u64 {
        let conn = rusqlite::Connection::open(&self.path).expect("open SQLite");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        size(&self.path) + size(&self.path.with_extension("sqlite-wal"))
    }

    fn plans(&self, layer_digest: &str) {
        let conn = rusqlite::Connection::open(&self.path).expect("open SQLite");
        // The statements of src/catalog/sqlite.rs, copied: `find_names` with and without
        // its prefix condition, and the image lookup of `images_with_layer`.
        let names = "SELECT e.id, l.digest, l.media_type, e.path, e.raw_path, e.link, e.size, e.mode, e.kind
             FROM entry_names JOIN entries e ON e.id = entry_names.rowid JOIN layers l ON l.id = e.layer_id
             WHERE entry_names MATCH ?1 AND entry_names.rowid > 0 %PREFIX% ORDER BY entry_names.rowid LIMIT 500";
        let statements = [
            names.replace("%PREFIX%", ""),
            names.replace("%PREFIX%", "AND e.path LIKE 'lib/x86_64%' ESCAPE '\\'"),
            "SELECT i.id FROM images i WHERE i.id IN (SELECT image_id FROM image_layers WHERE digest = ?1)
             ORDER BY i.seen_at DESC, i.id DESC LIMIT 1000"
                .to_owned(),
        ];
        for sql in statements {
            println!("\nEXPLAIN QUERY PLAN {}", one_line(&sql));
            let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explain");
            let value = if sql.contains("MATCH") { "\"python3\"" } else { layer_digest };
            let rows = plan
                .query_map([value], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(3)?)))
                .expect("plan");
            for row in rows {
                let (id, parent, detail) = row.expect("a plan row");
                println!("  {id:>3} {parent:>3} {detail}");
            }
        }
    }
}

struct Postgres {
    pg: RealPostgres,
}

impl Postgres {
    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.pg.url(), postgres::NoTls).expect("connect")
    }
}

impl Backend for Postgres {
    fn open(&self) -> Box<dyn Store> {
        Box::new(PostgresStore::open(&self.pg.url()).expect("open PostgreSQL"))
    }

    /// What autovacuum does to an insert-only table once enough rows came in (since
    /// PostgreSQL 13): a vacuum, which also moves the GIN index's pending list into the
    /// index, and an analyze. Run here at once, so the searches do not race it.
    fn settle(&self) {
        let mut client = self.client();
        let stats = client
            .query_one(
                "SELECT coalesce(last_autovacuum::text, 'never'), coalesce(last_autoanalyze::text, 'never')
                 FROM pg_stat_user_tables WHERE relname = 'entries'",
                &[],
            )
            .expect("stats");
        println!(
            "  autovacuum had run on entries: vacuum {}, analyze {}",
            stats.get::<_, String>(0),
            stats.get::<_, String>(1)
        );
        let started = Instant::now();
        client.batch_execute("VACUUM ANALYZE").expect("vacuum");
        println!("  VACUUM ANALYZE (what autovacuum does): {:.1} s", started.elapsed().as_secs_f64());
    }

    fn disk_bytes(&self) -> u64 {
        let mut client = self.client();
        for row in client
            .query(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY 2 DESC LIMIT 4",
                &[],
            )
            .expect("sizes")
        {
            println!("  {:<24} {:>8.0} MiB", row.get::<_, String>(0), row.get::<_, i64>(1) as f64 / 1048576.0);
        }
        client.query_one("SELECT pg_database_size(current_database())", &[]).expect("size").get::<_, i64>(0) as u64
    }

    fn plans(&self, layer_digest: &str) {
        let mut client = self.client();
        // The statements of src/catalog/postgres.rs, copied, with each search's pattern.
        let names = "SELECT e.id, l.digest, l.media_type, e.path, e.raw_path, e.link, e.size, e.mode, e.kind
             FROM entries e JOIN layers l ON l.id = e.layer_id
             WHERE e.path ILIKE $1 AND e.id > $2 ORDER BY e.id LIMIT $3";
        for pattern in [format!("%{RARE}%"), format!("%{COMMON}%"), "lib/x86\\_64%".to_owned()] {
            println!("\nEXPLAIN (ANALYZE, BUFFERS) find_names, pattern {pattern:?}, after 0, limit {CANDIDATE_BATCH}");
            let explain = format!("EXPLAIN (ANALYZE, BUFFERS) {names}");
            for row in client.query(&explain, &[&pattern, &0i64, &CANDIDATE_BATCH]).expect("explain") {
                println!("  {}", row.get::<_, String>(0));
            }
        }
        println!("\nEXPLAIN (ANALYZE, BUFFERS) images_with_layer, the base layer");
        let images = "EXPLAIN (ANALYZE, BUFFERS) SELECT i.id, i.registry, i.repository, i.manifest_digest,
             i.config_digest, i.platform, i.created
             FROM images i WHERE i.id IN (SELECT image_id FROM image_layers WHERE digest = $1)
             ORDER BY i.seen_at DESC, i.id DESC LIMIT $2";
        for row in client.query(images, &[&layer_digest, &1000i64]).expect("explain") {
            println!("  {}", row.get::<_, String>(0));
        }
    }
}

fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Loads the layers and images, times the searches, prints the tables.
fn catalog_part(name: &str, backend: &dyn Backend, sizes: &Sizes) {
    let total = sizes.entries * sizes.layers;
    println!(
        "\n## {name}: {} layers of {} entries ({} in all); load average {}\n",
        sizes.layers,
        sizes.entries,
        total,
        load()
    );
    let mut store = backend.open();
    let words = vocabulary();
    let rare_layer = sizes.layers / 2;
    let mut rates = Vec::new();
    let (mut path_bytes, started_all) = (0usize, Instant::now());
    let mut load_time = Duration::ZERO;
    for layer in 0..sizes.layers {
        let entries = layer_entries(layer, sizes.entries, &words, layer == rare_layer);
        path_bytes += entries.iter().map(|e| e.path.len()).sum::<usize>();
        let mut rows = entries.iter().enumerate().map(|(i, e)| EntryRow {
            index: i as u32,
            path: e.path.as_bytes(),
            link: e.link.as_bytes(),
            size: e.size,
            mode: e.mode,
            kind: e.kind,
        });
        let started = Instant::now();
        assert!(store.record_layer(&seen(layer), &mut rows).expect("record a layer"), "a new layer");
        let took = started.elapsed();
        load_time += took;
        let rate = entries.len() as f64 / took.as_secs_f64();
        println!(
            "  layer {:>3}/{}: {} entries in {:>6.1} s, {rate:>7.0} entries/s (catalog now {})",
            layer + 1,
            sizes.layers,
            entries.len(),
            took.as_secs_f64(),
            (layer + 1) * sizes.entries
        );
        rates.push((took, rate));
    }
    // Image k ships the base layer and layer k: every image shares layer 0.
    for k in 0..sizes.layers {
        let layers: Vec<usize> = if k == 0 { vec![0] } else { vec![0, k] };
        store.record_image(&image(k, &layers)).expect("record an image");
    }
    let totals = store.totals().expect("totals");
    assert_eq!((totals.entries, totals.layers), (total as u64, sizes.layers as u64));
    println!(
        "  loaded in {:.1} s ({:.1} s of it inserting; paths average {:.1} bytes)",
        started_all.elapsed().as_secs_f64(),
        load_time.as_secs_f64(),
        path_bytes as f64 / total as f64
    );
    backend.settle();
    let disk = backend.disk_bytes();
    println!("  on disk: {:.0} MiB, {:.0} bytes per entry", disk as f64 / 1048576.0, disk as f64 / total as f64);

    // A fresh connection, as a reader thread has.
    drop(store);
    let mut reader = backend.open();
    let base = digest(0);
    let searches: [(&str, &str); 4] = [
        ("rare substring", RARE),
        ("common substring", COMMON),
        ("anchored prefix", ANCHORED),
        ("`/search?layer=` (base layer)", ""),
    ];
    let mut rows = Vec::new();
    for (label, q) in searches {
        let mut times = Vec::with_capacity(sizes.repeats);
        let mut outcome = String::new();
        for _ in 0..sizes.repeats {
            let started = Instant::now();
            if q.is_empty() {
                let usage = search::layer_usage(reader.as_mut(), &base).expect("layer usage");
                times.push(started.elapsed());
                assert_eq!(usage.image_count, sizes.layers as u64);
                outcome =
                    format!("{} images, layer of {} entries", usage.images.len(), usage.layer.map_or(0, |l| l.entries));
            } else {
                let page = search::find(reader.as_mut(), &NameSearch::parse(q).expect("a search"), 0).expect("find");
                times.push(started.elapsed());
                if q == RARE {
                    let paths: Vec<_> = page.hits.iter().map(|h| String::from_utf8_lossy(&h.entry.path)).collect();
                    assert_eq!(paths, [RARE_PATH], "the rare path, once");
                }
                let n = page.hits.len();
                outcome = format!(
                    "{n} hit{}{}",
                    if n == 1 { "" } else { "s" },
                    if page.next.is_some() { ", more" } else { "" }
                );
            }
        }
        // The database's share of a page: the first batch of candidates alone, the
        // statement `search::find` starts with.
        let candidates = (!q.is_empty()).then(|| {
            let query = NameQuery { needle: q.trim_start_matches('^').to_lowercase(), anchored: q.starts_with('^') };
            let mut alone: Vec<Duration> = (0..sizes.repeats)
                .map(|_| {
                    let started = Instant::now();
                    reader.find_names(&query, 0, CANDIDATE_BATCH as usize).expect("find_names");
                    started.elapsed()
                })
                .collect();
            alone.sort();
            alone[alone.len() / 2]
        });
        let first = times[0];
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
        rows.push((
            label,
            if q.is_empty() { "layer=sha256:…0001".to_owned() } else { format!("`{q}`") },
            outcome,
            [first, at(0.5), at(0.95), times[times.len() - 1]],
            candidates,
        ));
    }

    let (first, last) = (rates[0], rates[rates.len() - 1]);
    println!("\n### {name}: inserts\n");
    println!("| layer | entries | time | entries/s |");
    println!("|---|---:|---:|---:|");
    println!("| first (empty catalog) | {} | {:.1} s | {:.0} |", sizes.entries, first.0.as_secs_f64(), first.1);
    if rates.len() > 1 {
        println!(
            "| last (catalog at {}) | {} | {:.1} s | {:.0} |",
            total - sizes.entries,
            sizes.entries,
            last.0.as_secs_f64(),
            last.1
        );
        println!(
            "| all {} | {} | {:.1} s | {:.0} |",
            sizes.layers,
            total,
            load_time.as_secs_f64(),
            total as f64 / load_time.as_secs_f64()
        );
    }
    println!("\n### {name}: searches among {total} entries, first page, {} runs each\n", sizes.repeats);
    println!("| search | query | page | first run | median | p95 | max | its candidates alone, median |");
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for (label, q, outcome, [first, median, p95, max], candidates) in rows {
        let candidates = candidates.map_or("".to_owned(), ms);
        println!(
            "| {label} | {q} | {outcome} | {} | {} | {} | {} | {candidates} |",
            ms(first),
            ms(median),
            ms(p95),
            ms(max)
        );
    }
    println!("\nload average {}", load());
    println!("\n### {name}: plans");
    backend.plans(&base);
}

/// The machine's load averages, from `/proc/loadavg`: the machine is shared.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "?".to_owned(), |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

fn digest(layer: usize) -> String {
    format!("sha256:{:064x}", layer + 1)
}

fn seen(layer: usize) -> LayerSeen {
    LayerSeen {
        digest: digest(layer),
        size: 50 << 20,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        registry: "127.0.0.1:5000".into(),
        repository: format!("team/app{layer}"),
        image: format!("127.0.0.1:5000/team/app{layer}:v1"),
        layer: if layer == 0 { 1 } else { 2 },
        complete: true,
    }
}

fn image(k: usize, layers: &[usize]) -> ImageSeen {
    ImageSeen {
        registry: "127.0.0.1:5000".into(),
        repository: format!("team/app{k}"),
        manifest_digest: format!("sha256:{:064x}", 1_000_000 + k),
        tag: Some("v1".into()),
        platform: Some("linux/amd64".into()),
        config_digest: format!("sha256:{:064x}", 2_000_000 + k),
        created: Some("2026-12-01T00:00:00Z".into()),
        layers: layers
            .iter()
            .map(|&l| ImageLayer {
                digest: digest(l),
                size: 50 << 20,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            })
            .collect(),
    }
}

/// 4,096 pronounceable lowercase words of two to four syllables.
fn vocabulary() -> Vec<String> {
    const ONSETS: [&str; 16] = ["b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "st"];
    const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "y"];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..4096)
        .map(|_| {
            (0..2 + rng.below(3))
                .map(|_| {
                    [ONSETS[rng.below(16) as usize], VOWELS[rng.below(6) as usize]].concat()
                        + if rng.below(3) == 0 { "n" } else { "" }
                })
                .collect()
        })
        .collect()
}

/// Makes one file of a package: its name under the package's folder, its kind, and a
/// link's target.
type FileMaker<'a> = Box<dyn Fn(&mut Rng) -> (String, Kind, String) + 'a>;

struct Entry {
    path: String,
    link: String,
    size: u64,
    mode: u32,
    kind: Kind,
}

/// `n` entries of layer `layer`: packages of one to a few hundred files, each under one
/// of the trees a distribution's packages fill (see the module docs).
fn layer_entries(layer: usize, n: usize, words: &[String], rare: bool) -> Vec<Entry> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((layer as u64 + 1) * 0x1000_0000_01b3));
    let mut out = Vec::with_capacity(n + 512);
    let word = |rng: &mut Rng| words[rng.below(words.len() as u64) as usize].as_str();
    const LANGS: [&str; 8] = ["de", "fr", "es", "it", "ja", "pt_BR", "ru", "zh_CN"];
    // Every path once, each folder before what it holds, as a tar lists them (a folder
    // repeated in every package would make each hit's fate read hundreds of rows).
    let mut seen = std::collections::HashSet::new();
    let mut add = |out: &mut Vec<Entry>, entry: Entry| {
        for (i, _) in entry.path.match_indices('/') {
            if !seen.contains(&entry.path[..i]) {
                seen.insert(entry.path[..i].to_owned());
                let dir = Entry {
                    path: entry.path[..i].to_owned(),
                    link: String::new(),
                    size: 0,
                    mode: 0o755,
                    kind: Kind::Dir,
                };
                out.push(dir);
            }
        }
        if seen.insert(entry.path.clone()) {
            out.push(entry);
        }
    };
    let mut planted = !rare;
    while out.len() < n {
        if !planted && out.len() >= n / 2 {
            add(
                &mut out,
                Entry { path: RARE_PATH.into(), link: String::new(), size: 411, mode: 0o600, kind: Kind::File },
            );
            planted = true;
        }
        let package = format!("{}{}", word(&mut rng), if rng.below(3) == 0 { "-utils" } else { "" });
        let files = rng.log_uniform(1, 400) as usize;
        let tree = rng.below(100);
        let (dir, file): (String, FileMaker<'_>) = match tree {
            0..=29 => (
                format!("usr/lib/python3/dist-packages/{package}"),
                Box::new(|rng: &mut Rng| {
                    let module = word(rng);
                    match rng.below(4) {
                        0 => (format!("__pycache__/{module}.cpython-311.pyc"), Kind::File, String::new()),
                        1 => (format!("{}/{module}.py", word(rng)), Kind::File, String::new()),
                        _ => (format!("{module}.py"), Kind::File, String::new()),
                    }
                }),
            ),
            30..=44 => (
                "usr/lib/x86_64-linux-gnu".to_owned(),
                Box::new(|rng: &mut Rng| {
                    let lib = word(rng);
                    let major = rng.below(9);
                    if rng.below(3) == 0 {
                        (
                            format!("lib{lib}.so.{major}"),
                            Kind::Symlink,
                            format!("lib{lib}.so.{major}.0.{}", rng.below(30)),
                        )
                    } else {
                        (format!("lib{lib}.so.{major}.0.{}", rng.below(30)), Kind::File, String::new())
                    }
                }),
            ),
            45..=59 => (
                format!("usr/share/doc/{package}"),
                Box::new(|rng: &mut Rng| match rng.below(5) {
                    0 => ("copyright".to_owned(), Kind::File, String::new()),
                    1 => ("changelog.Debian.gz".to_owned(), Kind::File, String::new()),
                    2 => (format!("examples/{}.txt", word(rng)), Kind::File, String::new()),
                    _ => (format!("{}.md", word(rng)), Kind::File, String::new()),
                }),
            ),
            60..=69 => (
                format!("usr/share/locale/{}/LC_MESSAGES", LANGS[rng.below(8) as usize]),
                Box::new(|rng: &mut Rng| (format!("{}.mo", word(rng)), Kind::File, String::new())),
            ),
            70..=79 => (
                format!("usr/lib/node_modules/{package}"),
                Box::new(|rng: &mut Rng| match rng.below(6) {
                    0 => ("package.json".to_owned(), Kind::File, String::new()),
                    1 => (format!("dist/{}.min.js", word(rng)), Kind::File, String::new()),
                    _ => (format!("lib/{}.js", word(rng)), Kind::File, String::new()),
                }),
            ),
            80..=87 => (
                format!("usr/include/{package}"),
                Box::new(|rng: &mut Rng| (format!("{}.h", word(rng)), Kind::File, String::new())),
            ),
            88..=92 => {
                let section = 1 + rng.below(8);
                (
                    format!("usr/share/man/man{section}"),
                    Box::new(move |rng: &mut Rng| (format!("{}.{section}.gz", word(rng)), Kind::File, String::new())),
                )
            }
            93..=96 => (
                format!("etc/{package}"),
                Box::new(|rng: &mut Rng| (format!("{}.conf", word(rng)), Kind::File, String::new())),
            ),
            _ => (
                "lib/x86_64-linux-gnu".to_owned(),
                Box::new(|rng: &mut Rng| (format!("lib{}.so.{}", word(rng), rng.below(9)), Kind::File, String::new())),
            ),
        };
        for _ in 0..files {
            let (name, kind, link) = file(&mut rng);
            let size = if kind == Kind::File { rng.log_uniform(64, 1 << 20) } else { 0 };
            let mode = match kind {
                Kind::Symlink => 0o777,
                _ if (30..45).contains(&tree) => 0o755,
                _ => 0o644,
            };
            add(&mut out, Entry { path: format!("{dir}/{name}"), link, size, mode, kind });
        }
    }
    out.truncate(n);
    if rare && !out.iter().any(|e| e.path == RARE_PATH) {
        // Planted after the cut (a layer of one or two entries): put it in.
        out[n / 2] = Entry { path: RARE_PATH.into(), link: String::new(), size: 411, mode: 0o600, kind: Kind::File };
    }
    out
}

// ---- 3: a first listing, with and without per-file digests -------------------------------

/// The listing builder, and (when `eager`) a SHA-256 of every regular file's bytes as
/// they pass: what a listing that kept per-file digests would do.
struct Listing {
    builder: ListingBuilder,
    eager: bool,
    hashing: Option<Hasher>,
    hashed_files: usize,
    hashed_bytes: u64,
}

impl Visitor for Listing {
    fn entry(&mut self, header: Header) -> Want {
        let file = header.kind == TypeFlag::File;
        match self.builder.entry(header) {
            Want::Skip if self.eager && file => {
                self.hashing = Some(Hasher::new(Algorithm::Sha256));
                Want::Data
            }
            want => want,
        }
    }

    fn data(&mut self, bytes: &[u8], end: bool) -> ControlFlow<()> {
        let hasher = self.hashing.as_mut().expect("a file's hasher");
        hasher.update(bytes);
        self.hashed_bytes += bytes.len() as u64;
        if end {
            std::hint::black_box(self.hashing.take().expect("a file's hasher").finish());
            self.hashed_files += 1;
        }
        ControlFlow::Continue(())
    }
}

/// CPU time this thread has used: the first field of `/proc/thread-self/schedstat`, in
/// nanoseconds (as benches/index.rs reads it).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("/proc/thread-self/schedstat");
    Duration::from_nanos(stat.split_whitespace().next().and_then(|n| n.parse().ok()).expect("run time"))
}

/// A first listing of `blob` on this thread: (wall, CPU, entries, files hashed, bytes hashed).
fn first_listing(blob: &[u8], eager: bool) -> (Duration, Duration, usize, usize, u64) {
    let (t, cpu) = (Instant::now(), thread_cpu());
    let visitor =
        Listing { builder: ListingBuilder::default(), eager, hashing: None, hashed_files: 0, hashed_bytes: 0 };
    let mut scanner = Scanner::new(visitor);
    let mut d = Decompressor::recording(&mut scanner, DEFAULT_SPACING);
    for step in blob.chunks(WRITE) {
        d.write(step).expect("decompress");
    }
    d.finish().expect("finish");
    std::hint::black_box(d.recorded());
    drop(d);
    let (visitor, _) = scanner.finish();
    let (files, bytes) = (visitor.hashed_files, visitor.hashed_bytes);
    let entries = visitor.builder.finish(Summary::default()).len();
    (t.elapsed(), thread_cpu() - cpu, entries, files, bytes)
}

fn listing_part(mib: usize, rounds: usize) {
    let started = Instant::now();
    let (blob, tar_bytes, files, text_files) = make_layer(mib << 20);
    println!(
        "\n## A first listing, with and without per-file SHA-256\n\nlayer: {files} files ({text_files} text, {} \
         incompressible), {:.1} MiB of tar, {:.1} MiB gzip -6; made in {:.1?}",
        files - text_files,
        tar_bytes as f64 / 1048576.0,
        blob.len() as f64 / 1048576.0,
        started.elapsed()
    );
    let (mut lazy, mut eager) = (Vec::new(), Vec::new());
    let mut hashed = (0, 0);
    for round in 0..rounds {
        // Alternate which goes first, so neither always meets a warmer cache.
        for first in [round % 2 == 0, round % 2 != 0] {
            let (wall, cpu, entries, n, bytes) = first_listing(&blob, first);
            assert_eq!(entries, files, "every file listed");
            if first {
                assert_eq!(n, files, "every file hashed");
                hashed = (n, bytes);
                eager.push((cpu, wall));
            } else {
                lazy.push((cpu, wall));
            }
        }
    }
    let ratios: Vec<f64> = {
        let mut r: Vec<f64> =
            lazy.iter().zip(&eager).map(|(l, e)| 1.0 - l.0.as_secs_f64() / e.0.as_secs_f64()).collect();
        r.sort_by(f64::total_cmp);
        r
    };
    let best = |v: &[(Duration, Duration)]| *v.iter().min().expect("a round");
    let (lazy_best, eager_best) = (best(&lazy), best(&eager));
    let saved = 1.0 - lazy_best.0.as_secs_f64() / eager_best.0.as_secs_f64();
    println!("\n| first listing | CPU s (best of {rounds}) | wall s | share of the eager listing's CPU |");
    println!("|---|---:|---:|---:|");
    println!(
        "| as layerpipe does it: recording the index, no file digests | {:.3} | {:.3} | {:.1}% |",
        lazy_best.0.as_secs_f64(),
        lazy_best.1.as_secs_f64(),
        100.0 * (1.0 - saved)
    );
    println!(
        "| with a SHA-256 of every regular file ({} files, {:.1} MiB) | {:.3} | {:.3} | 100% |",
        hashed.0,
        hashed.1 as f64 / 1048576.0,
        eager_best.0.as_secs_f64(),
        eager_best.1.as_secs_f64()
    );
    println!("load average {}", load());
    println!(
        "\nCPU avoided by hashing lazily: {:.1}% of the eager listing's (best against best); median of the \
         rounds' own figures {:.1}% (range {:.1}–{:.1}%)",
        saved * 100.0,
        ratios[ratios.len() / 2] * 100.0,
        ratios[0] * 100.0,
        ratios[ratios.len() - 1] * 100.0
    );
}

/// A tar+gzip layer of mixed files until its gzip (level 6) reaches `target` bytes, as
/// benches/index.rs makes its layer: most files small, some up to 1 MiB, 60% text from
/// a 4,096-word vocabulary and 40% pseudo-random bytes. (blob, tar bytes, files, text files)
fn make_layer(target: usize) -> (Vec<u8>, u64, usize, usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let words: Vec<Vec<u8>> =
        (0..4096).map(|_| (0..2 + rng.below(9)).map(|_| b'a' + rng.below(26) as u8).collect()).collect();
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let mut tar = tar::Builder::new(Counting { inner: gzip, bytes: 0 });
    let (mut files, mut text_files, mut contents) = (0usize, 0usize, Vec::new());
    while tar.get_ref().inner.get_ref().len() < target {
        let text = rng.below(10) < 6;
        let size = if rng.below(100) < 85 { rng.log_uniform(64, 16 << 10) } else { rng.log_uniform(16 << 10, 1 << 20) };
        contents.clear();
        if text {
            while (contents.len() as u64) < size {
                contents.extend_from_slice(&words[rng.below(words.len() as u64) as usize]);
                contents.push(if rng.below(12) == 0 { b'\n' } else { b' ' });
            }
            text_files += 1;
        } else {
            while (contents.len() as u64) < size {
                contents.extend_from_slice(&rng.next().to_le_bytes());
            }
        }
        contents.truncate(size as usize);
        let path = if text {
            format!("usr/share/doc/pkg{:03}/file-{files:05}.txt", files % 300)
        } else {
            format!("usr/lib/pkg{:03}/lib-{files:05}.so", files % 300)
        };
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        tar.append_data(&mut header, &path, &contents[..]).expect("append a file");
        files += 1;
    }
    let counting = tar.into_inner().expect("finish the tar");
    let blob = counting.inner.finish().expect("finish the gzip");
    (blob, counting.bytes, files, text_files)
}

/// Counts the tar bytes on their way to the compressor.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(bytes)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
