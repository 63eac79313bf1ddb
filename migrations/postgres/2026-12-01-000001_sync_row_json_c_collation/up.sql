-- The key of sync_row_json compared byte by byte (the "C" collation) instead of by the
-- database's default collation: ids are ASCII and are only ever looked up by equality, and a
-- page's lookup of 1,000 ids compared them through strcoll, about 40% of its time.
ALTER TABLE sync_row_json
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN tbl TYPE TEXT COLLATE "C";
