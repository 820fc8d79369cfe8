//! The catalog's two backends, put through the same tests: SQLite in a temp file and a
//! real PostgreSQL (Debian's `postgresql`, a throwaway cluster per test: see
//! tests/real/postgres.rs). Each scenario is written once against [`Store`] and run by
//! [`both!`] for each backend.
//!
//! Needs `initdb` (`apt-get install -y postgresql`).

mod real;

use std::time::Instant;

use layerpipe::catalog::fate::Fate;
use layerpipe::catalog::postgres::PostgresStore;
use layerpipe::catalog::search::{self, NameSearch, HITS_PER_PAGE};
use layerpipe::catalog::sqlite::SqliteStore;
use layerpipe::catalog::{EntryRow, ImageLayer, ImageSeen, LayerSeen, Store};
use layerpipe::layer::entry::Kind;
use real::postgres::RealPostgres;

/// A backend under test: opens connections to one catalog.
trait Backend {
    fn open(&self) -> Result<Box<dyn Store>, String>;
    /// Sets the stored schema version, as a newer layerpipe would have.
    fn set_schema_version(&self, version: u32);
}

struct Sqlite(tempfile::TempDir);

impl Backend for Sqlite {
    fn open(&self) -> Result<Box<dyn Store>, String> {
        Ok(Box::new(SqliteStore::open(&self.0.path().join("catalog.sqlite"))?))
    }
    fn set_schema_version(&self, version: u32) {
        let conn = rusqlite::Connection::open(self.0.path().join("catalog.sqlite")).unwrap();
        conn.execute("UPDATE schema_version SET version = ?1", [version]).unwrap();
    }
}

struct Postgres(RealPostgres);

impl Backend for Postgres {
    fn open(&self) -> Result<Box<dyn Store>, String> {
        Ok(Box::new(PostgresStore::open(&self.0.url())?))
    }
    fn set_schema_version(&self, version: u32) {
        self.0.psql(&format!("UPDATE schema_version SET version = {version}"));
    }
}

/// Runs each scenario against SQLite and against PostgreSQL.
macro_rules! both {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn sqlite() {
                super::$scenario(&super::Sqlite(tempfile::tempdir().unwrap()));
            }
            #[test]
            fn postgres() {
                super::$scenario(&super::Postgres(super::RealPostgres::start()));
            }
        }
    )*};
}

both!(
    names_are_found_in_any_case_and_anchored,
    fates_and_shared_layers_across_images,
    pages_follow_each_other,
    a_second_connection_sees_the_first_and_the_schema_is_versioned,
    a_million_entries,
    secrets_are_stored_once_per_layer_and_masked,
    every_finding_is_listed_a_page_at_a_time_with_its_images,
);

fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

fn seen(n: u32, repository: &str) -> LayerSeen {
    LayerSeen {
        digest: digest(n),
        size: 1000 + u64::from(n),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        registry: "127.0.0.1:5000".into(),
        repository: repository.into(),
        image: format!("127.0.0.1:5000/{repository}:v1"),
        layer: n,
        complete: true,
    }
}

/// Records layer `n` with `entries`: `(path, kind, size)`.
fn record(store: &mut dyn Store, n: u32, repository: &str, entries: &[(&str, Kind, u64)]) -> bool {
    let mut rows = entries.iter().enumerate().map(|(i, &(path, kind, size))| EntryRow {
        index: i as u32,
        path: path.as_bytes(),
        link: b"",
        size,
        mode: if kind == Kind::Dir { 0o755 } else { 0o600 },
        kind,
    });
    store.record_layer(&seen(n, repository), &mut rows).unwrap()
}

fn image(repository: &str, tag: &str, manifest: u32, layers: &[u32]) -> ImageSeen {
    ImageSeen {
        registry: "127.0.0.1:5000".into(),
        repository: repository.into(),
        manifest_digest: digest(manifest),
        tag: Some(tag.into()),
        platform: Some("linux/amd64".into()),
        config_digest: digest(manifest + 1),
        created: Some("2024-01-01T00:00:00Z".into()),
        layers: layers
            .iter()
            .map(|&n| ImageLayer {
                digest: digest(n),
                size: 1000,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            })
            .collect(),
    }
}

fn paths(store: &mut dyn Store, q: &str) -> Vec<String> {
    let page = search::find(store, &NameSearch::parse(q).unwrap(), 0).unwrap();
    page.hits.iter().map(|h| String::from_utf8_lossy(&h.entry.path).into_owned()).collect()
}

fn names_are_found_in_any_case_and_anchored(backend: &dyn Backend) {
    let mut store = backend.open().unwrap();
    let store = store.as_mut();
    let entries = [
        ("etc", Kind::Dir, 0),
        ("etc/passwd", Kind::File, 10),
        ("home/u/.ssh/id_rsa", Kind::File, 1675),
        ("usr/etc/Passwd.bak", Kind::File, 3),
        ("srv/ÜNÏCODE/PÄSS", Kind::File, 1),
        ("srv/100%_done", Kind::File, 1),
    ];
    assert!(record(store, 1, "team/app", &entries), "the first sighting writes the entries");
    assert_eq!(paths(store, "ID_RSA"), ["home/u/.ssh/id_rsa"]);
    assert_eq!(paths(store, "passwd"), ["etc/passwd", "usr/etc/Passwd.bak"]);
    assert_eq!(paths(store, "^etc"), ["etc", "etc/passwd"]);
    assert_eq!(paths(store, "^/ETC/pass"), ["etc/passwd"]);
    assert_eq!(paths(store, "ünïcode/päss"), ["srv/ÜNÏCODE/PÄSS"]);
    assert_eq!(paths(store, "0%_"), ["srv/100%_done"], "LIKE's wildcards are plain text");
    assert!(paths(store, "0_%").is_empty());
    assert!(paths(store, "nowhere").is_empty());

    let page = search::find(store, &NameSearch::parse("id_rsa").unwrap(), 0).unwrap();
    let hit = &page.hits[0].entry;
    assert_eq!((hit.size, hit.mode, hit.kind, hit.layer.as_str()), (1675, 0o600, Kind::File, digest(1).as_str()));
    assert!(page.next.is_none());
    let totals = store.totals().unwrap();
    assert_eq!((totals.layers, totals.entries, totals.images), (1, entries.len() as u64, 0));
}

/// The layered image of tests/real/layered.rs as layers 1–3 of `team/one:v1`; `team/two:v2`
/// ships layer 1 too, then a layer of its own.
fn fates_and_shared_layers_across_images(backend: &dyn Backend) {
    let mut store = backend.open().unwrap();
    let store = store.as_mut();
    record(
        store,
        1,
        "team/one",
        &[("etc/passwd", Kind::File, 26), ("etc/secret.key", Kind::File, 27), ("opt/tool/run", Kind::File, 10)],
    );
    record(
        store,
        2,
        "team/one",
        &[("etc/.wh.secret.key", Kind::Whiteout, 0), ("etc/passwd", Kind::File, 60), ("opt/tool", Kind::File, 11)],
    );
    record(store, 3, "team/one", &[("app/main.py", Kind::File, 15)]);
    assert!(!record(store, 1, "team/two", &[]), "a layer's entries are written once");
    record(store, 4, "team/two", &[("opt/only-in-two", Kind::File, 1)]);
    store.record_image(&image("team/one", "v1", 100, &[1, 2, 3])).unwrap();
    store.record_image(&image("team/two", "v2", 200, &[1, 4])).unwrap();
    store.record_image(&image("team/two", "latest", 200, &[1, 4])).unwrap();

    let page = search::find(store, &NameSearch::parse("secret.key").unwrap(), 0).unwrap();
    let hits: Vec<_> = page.hits.iter().filter(|h| h.entry.kind == Kind::File).collect();
    assert_eq!(hits.len(), 1, "{page:?}");
    let mut fates: Vec<_> =
        hits[0].images.iter().map(|i| (i.image.repository.as_str(), i.image.tags.clone(), i.layer, i.fate)).collect();
    fates.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(
        fates,
        [
            ("team/one", vec!["v1".to_owned()], 1, Fate::DeletedBy(2)),
            ("team/two", vec!["latest".to_owned(), "v2".to_owned()], 1, Fate::Present),
        ]
    );
    let fate_in_one = |q: &str, store: &mut dyn Store| {
        let page = search::find(store, &NameSearch::parse(q).unwrap(), 0).unwrap();
        let hit = page.hits.iter().find(|h| h.entry.layer == digest(1)).unwrap().clone();
        hit.images.iter().find(|i| i.image.repository == "team/one").unwrap().fate
    };
    assert_eq!(fate_in_one("etc/passwd", store), Fate::OverwrittenBy(2));
    assert_eq!(fate_in_one("tool/run", store), Fate::DeletedBy(2));

    let usage = search::layer_usage(store, &digest(1)).unwrap();
    let mut repositories: Vec<_> = usage.images.iter().map(|i| i.repository.as_str()).collect();
    repositories.sort();
    assert_eq!(repositories, ["team/one", "team/two"]);
    assert_eq!(usage.image_count, 2);
    let layer = usage.layer.unwrap();
    let sources: Vec<_> = layer.sources.iter().map(|s| s.repository.as_str()).collect();
    assert_eq!(sources, ["team/one", "team/two"]);
    assert_eq!((layer.entries, layer.size), (3, 1001));
    let unknown = search::layer_usage(store, &digest(99)).unwrap();
    assert!(unknown.layer.is_none() && unknown.images.is_empty());
}

fn pages_follow_each_other(backend: &dyn Backend) {
    let mut store = backend.open().unwrap();
    let store = store.as_mut();
    let names: Vec<String> = (0..250).map(|i| format!("data/file-{i:03}.needle")).collect();
    let mut entries: Vec<(&str, Kind, u64)> = names.iter().map(|n| (n.as_str(), Kind::File, 1)).collect();
    // Candidates the trigram index offers but the anchored search refuses.
    let decoys: Vec<String> = (0..700).map(|i| format!("x/data/{i}.needle")).collect();
    entries.extend(decoys.iter().map(|n| (n.as_str(), Kind::File, 1)));
    record(store, 1, "team/many", &entries);
    for (q, expected) in [("needle", 950), ("^data/file", 250)] {
        let search = NameSearch::parse(q).unwrap();
        let (mut seen, mut after, mut pages) = (Vec::new(), 0, 0);
        loop {
            let page = search::find(store, &search, after).unwrap();
            pages += 1;
            assert!(page.hits.len() <= HITS_PER_PAGE);
            seen.extend(page.hits.iter().map(|h| h.entry.path.clone()));
            match page.next {
                Some(next) => after = next,
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (expected, expected), "{q}");
        assert!(pages >= expected.div_ceil(HITS_PER_PAGE), "{q}: {pages} pages");
    }
}

fn a_second_connection_sees_the_first_and_the_schema_is_versioned(backend: &dyn Backend) {
    let mut first = backend.open().unwrap();
    let mut second = backend.open().unwrap();
    record(first.as_mut(), 1, "team/app", &[("etc/seen-by-both", Kind::File, 1)]);
    assert_eq!(paths(second.as_mut(), "seen-by-both"), ["etc/seen-by-both"]);
    drop((first, second));
    // Opened again: nothing to migrate, nothing lost.
    let mut again = backend.open().unwrap();
    assert_eq!(paths(again.as_mut(), "seen-by-both"), ["etc/seen-by-both"]);
    drop(again);
    backend.set_schema_version(99);
    let e = backend.open().err().expect("a newer schema is refused");
    assert!(e.contains("cannot open the catalog") && e.contains("version 99") && e.contains("newer"), "{e}");
}

/// Prints inserts per second for a 1,000,000-entry layer (BENCHMARKS.md); asserts only
/// that every entry went in and is found.
fn a_million_entries(backend: &dyn Backend) {
    let mut store = backend.open().unwrap();
    const N: u32 = 1_000_000;
    let names: Vec<String> = (0..N).map(|i| format!("usr/share/doc/pkg-{}/file-{i:07}.txt", i % 997)).collect();
    let mut rows = names.iter().enumerate().map(|(i, n)| EntryRow {
        index: i as u32,
        path: n.as_bytes(),
        link: b"",
        size: i as u64,
        mode: 0o644,
        kind: Kind::File,
    });
    let started = Instant::now();
    assert!(store.record_layer(&seen(1, "team/big"), &mut rows).unwrap());
    let secs = started.elapsed().as_secs_f64();
    println!("catalog: {N} entries in {secs:.2} s, {:.0} entries/s", f64::from(N) / secs);
    assert_eq!(store.totals().unwrap().entries, u64::from(N));
    let started = Instant::now();
    assert_eq!(paths(store.as_mut(), "file-0123456.txt"), ["usr/share/doc/pkg-825/file-0123456.txt"]);
    println!("catalog: a rare name found among {N} in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
}

/// A layer's secrets scan is stored once per digest, masked, and read back in order.
fn secrets_are_stored_once_per_layer_and_masked(backend: &dyn Backend) {
    use layerpipe::catalog::{LayerSecrets, SecretRow};
    use layerpipe::secrets::Masked;
    let mut store = backend.open().unwrap();
    assert_eq!(store.secrets(&digest(7)).unwrap(), None, "not scanned yet");
    // Built at run time: the repository carries no token-shaped literal.
    let token = ["gh", "p_", &"FakeToken0".repeat(3), "abcdef"].concat();
    let scan = LayerSecrets {
        complete: false,
        findings: vec![
            SecretRow { path: "app/.env".into(), line: 0, rule: "dotenv".into(), value: Masked::new("") },
            SecretRow { path: "app/token".into(), line: 3, rule: "github-token".into(), value: Masked::new(&token) },
        ],
    };
    assert!(store.record_secrets(&digest(7), &scan).unwrap());
    let again = LayerSecrets { complete: true, findings: Vec::new() };
    assert!(!store.record_secrets(&digest(7), &again).unwrap(), "a digest is scanned once");
    drop(store);
    let mut other = backend.open().unwrap();
    let stored = other.secrets(&digest(7)).unwrap().expect("stored");
    assert_eq!(stored, scan);
    assert_eq!(stored.findings[1].value.to_string(), "ghp_… (40 chars)");
}

fn every_finding_is_listed_a_page_at_a_time_with_its_images(backend: &dyn Backend) {
    use layerpipe::catalog::search::{secret_findings, FINDINGS_PER_PAGE};
    use layerpipe::catalog::{FindingKey, LayerSecrets, SecretRow};
    use layerpipe::secrets::Masked;
    let mut store = backend.open().unwrap();
    assert!(secret_findings(&mut *store, None).unwrap().hits.is_empty());
    // Layer 1 keys a .env that layer 2 deletes; layer 3 has more findings than a page.
    record(&mut *store, 1, "team/app", &[("app/.env", Kind::File, 40)]);
    record(&mut *store, 2, "team/app", &[("app/.wh..env", Kind::Whiteout, 0)]);
    store.record_image(&image("team/app", "v1", 100, &[1, 2])).unwrap();
    let row = |path: &str, line: u32| SecretRow {
        path: path.into(),
        line,
        rule: "generic".into(),
        value: Masked::new("s3cr3t-value-here"),
    };
    let env = LayerSecrets { complete: true, findings: vec![row("app/.env", 1)] };
    store.record_secrets(&digest(1), &env).unwrap();
    let many =
        LayerSecrets { complete: true, findings: (0..FINDINGS_PER_PAGE as u32 + 5).map(|i| row("f", i + 1)).collect() };
    store.record_secrets(&digest(3), &many).unwrap();

    let first = secret_findings(&mut *store, None).unwrap();
    assert_eq!(first.hits.len(), FINDINGS_PER_PAGE);
    let env_hit = first.hits.iter().find(|h| h.finding.key.layer == digest(1)).expect("layer 1's finding");
    assert_eq!(env_hit.finding.row, row("app/.env", 1));
    assert_eq!(env_hit.images.len(), 1);
    assert_eq!((env_hit.images[0].layer, env_hit.images[0].fate), (1, layerpipe::catalog::fate::Fate::DeletedBy(2)));
    let next = first.next.clone().expect("a next page");
    let second = secret_findings(&mut *store, Some(&next)).unwrap();
    assert_eq!(second.hits.len(), 6, "the 106 findings end on the second page");
    assert!(second.next.is_none());
    let all: Vec<FindingKey> = first.hits.iter().chain(&second.hits).map(|h| h.finding.key.clone()).collect();
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| (&a.layer, a.idx).cmp(&(&b.layer, b.idx)));
    sorted.dedup();
    assert_eq!(all, sorted, "in order, none twice");
}
