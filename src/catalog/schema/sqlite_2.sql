-- Version 2: secrets found in a layer (docs/secrets.md), scanned once per layer digest so
-- the next image sharing the layer needs no read. Only the masked form of a value is
-- stored (its first characters and its length, src/secrets/mask.rs): the catalog must
-- not become a collection of live credentials. Keyed by digest, not layers.id, so a
-- scan does not depend on the listing having been recorded first.

CREATE TABLE secret_scans (
    digest TEXT PRIMARY KEY,
    complete INTEGER NOT NULL,
    scanned_at INTEGER NOT NULL
);

CREATE TABLE secret_findings (
    digest TEXT NOT NULL REFERENCES secret_scans (digest) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    line INTEGER NOT NULL,
    rule TEXT NOT NULL,
    head TEXT NOT NULL,
    len INTEGER NOT NULL,
    PRIMARY KEY (digest, idx)
);
