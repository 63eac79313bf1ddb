-- Each synced row as devices receive it (its JSON), written by the sync write path in the
-- transaction that wrote the row and stamped with the row's version: an initial sync reads
-- (id, version, json) instead of decoding and serialising every column. A row whose entry is
-- missing or has another version is rendered from its columns (rows written before this
-- table existed, until they are next written). The key leads with the id, so that a lookup
-- of many ids of one table is an index probe per id whatever the planner knows.
CREATE TABLE sync_row_json (
    tbl TEXT NOT NULL,
    id TEXT NOT NULL,
    version BIGINT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (id, tbl)
);
