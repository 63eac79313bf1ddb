ALTER TABLE sync_row_json
    ALTER COLUMN id TYPE TEXT COLLATE "default",
    ALTER COLUMN tbl TYPE TEXT COLLATE "default";
