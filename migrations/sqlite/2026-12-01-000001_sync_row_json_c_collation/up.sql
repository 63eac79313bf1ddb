-- Nothing to do on SQLite: its text keys compare byte by byte (BINARY) already. (The
-- PostgreSQL migration of this name gives sync_row_json's key the "C" collation.)
SELECT 1;
