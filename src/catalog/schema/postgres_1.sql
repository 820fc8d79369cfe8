-- The catalog, version 1 (PostgreSQL). Paths are stored as text (invalid UTF-8 replaced by
-- U+FFFD, the bytes themselves in raw_path); path_key is a 64-bit FNV-1a of the path's
-- bytes, so that "this path in these layers" (a file's fate) is an index lookup without
-- a second index on the long text. entries_by_name indexes paths by trigram (pg_trgm) for
-- substring search, ILIKE included. pg_trgm is a trusted extension: the database's owner
-- may create it.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE layers (
    id BIGSERIAL PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    size BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    entries BIGINT NOT NULL,
    complete BOOLEAN NOT NULL,
    recorded_at BIGINT NOT NULL
);

CREATE TABLE layer_sources (
    layer_id BIGINT NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    image TEXT NOT NULL,
    layer_number BIGINT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (layer_id, registry, repository)
);

CREATE TABLE entries (
    id BIGSERIAL PRIMARY KEY,
    layer_id BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    path TEXT NOT NULL,
    raw_path BYTEA,
    path_key BIGINT NOT NULL,
    size BIGINT NOT NULL,
    mode BIGINT NOT NULL,
    kind TEXT NOT NULL,
    link TEXT NOT NULL
);

CREATE INDEX entries_by_path_key ON entries (layer_id, path_key);

CREATE INDEX entries_by_name ON entries USING gin (path gin_trgm_ops);

CREATE TABLE images (
    id BIGSERIAL PRIMARY KEY,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    platform TEXT,
    created TEXT,
    seen_at BIGINT NOT NULL,
    UNIQUE (registry, repository, manifest_digest)
);

CREATE TABLE image_layers (
    image_id BIGINT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
);

CREATE INDEX image_layers_by_digest ON image_layers (digest);

CREATE TABLE tags (
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    manifest_digest TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (registry, repository, tag, manifest_digest)
);

CREATE INDEX tags_by_manifest ON tags (registry, repository, manifest_digest);
