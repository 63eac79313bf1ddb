DROP TABLE sync_row_json;
