-- The catalog, version 1 (SQLite). Paths are stored as text (invalid UTF-8 replaced by
-- U+FFFD, the bytes themselves in raw_path); path_key is a 64-bit FNV-1a of the path's
-- bytes, so that "this path in these layers" (a file's fate) is an index lookup without
-- a second index on the long text. entry_names indexes paths by trigram for substring
-- search; it is external content (the text lives in entries), filled with entries.

CREATE TABLE layers (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    entries INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL
);

CREATE TABLE layer_sources (
    layer_id INTEGER NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    image TEXT NOT NULL,
    layer_number INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (layer_id, registry, repository)
);

CREATE TABLE entries (
    id INTEGER PRIMARY KEY,
    layer_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    raw_path BLOB,
    path_key INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    kind TEXT NOT NULL,
    link TEXT NOT NULL
);

CREATE INDEX entries_by_path_key ON entries (layer_id, path_key);

CREATE VIRTUAL TABLE entry_names USING fts5 (path, content = 'entries', content_rowid = 'id', tokenize = 'trigram');

CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    platform TEXT,
    created TEXT,
    seen_at INTEGER NOT NULL,
    UNIQUE (registry, repository, manifest_digest)
);

CREATE TABLE image_layers (
    image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
);

CREATE INDEX image_layers_by_digest ON image_layers (digest);

CREATE TABLE tags (
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (registry, repository, tag, manifest_digest)
);

CREATE INDEX tags_by_manifest ON tags (registry, repository, manifest_digest);
