-- Version 2: secrets found in a layer (docs/secrets.md), scanned once per layer digest so
-- the next image sharing the layer needs no read. Only the masked form of a value is
-- stored (its first characters and its length, src/secrets/mask.rs): the catalog must
-- not become a collection of live credentials. Keyed by digest, not layers.id, so a
-- scan does not depend on the listing having been recorded first.

CREATE TABLE secret_scans (
    digest TEXT PRIMARY KEY,
    complete BOOLEAN NOT NULL,
    scanned_at BIGINT NOT NULL
);

CREATE TABLE secret_findings (
    digest TEXT NOT NULL REFERENCES secret_scans (digest) ON DELETE CASCADE,
    idx BIGINT NOT NULL,
    path TEXT NOT NULL,
    line BIGINT NOT NULL,
    rule TEXT NOT NULL,
    head TEXT NOT NULL,
    len BIGINT NOT NULL,
    PRIMARY KEY (digest, idx)
);
