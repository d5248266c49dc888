-- Every text column compares bytewise (COLLATE "C") on PostgreSQL, as every SQLite column does (BINARY).
-- A column of the database's default collation (whatever locale the operator created the database with: en_US,
-- zh_CN, even C.UTF-8) compares through the C library's strcoll and sorts without abbreviated keys; the store's
-- keys are opaque ids and codes, so every comparison of an index insert, a merge join and a sort paid for a
-- locale's order that nothing reads. Measured on a database of C.UTF-8 against one of C (PostgreSQL 15, 100,000
-- webhooks, five runs each): the server's CPU a delivery 85 -> 80 µs (medians), `POST /v1/alerts` 1.03 -> 0.97 s;
-- sorting 100,000 text keys 157 -> 89 ms. Both back-ends now order and compare text alike, whatever the locale;
-- LOWER() folds ASCII letters only, as SQLite's does.
-- Changing a column's collation rebuilds the indexes on it, not the table: on a large deployment this migration
-- takes about as long as a REINDEX of those tables. Tables of later migrations declare COLLATE "C" themselves
-- (tests/store/test_pg_bytewise_text.py holds every text column of a migrated schema to it).
DO $$
DECLARE
    bytewise CONSTANT oid := (SELECT oid FROM pg_collation
                               WHERE collname = 'C' AND collnamespace = 'pg_catalog'::regnamespace);
    -- A trigger fired by an UPDATE OF some columns holds them: it is set aside while they change, then made again.
    held text[] := ARRAY(SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                          WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal
                            AND cardinality(t.tgattr::int2[]) > 0 ORDER BY t.oid);
    change record;
    definition text;
BEGIN
    FOR change IN
        SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
         WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal
           AND cardinality(t.tgattr::int2[]) > 0
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %I', change.tgname, change.relname);
    END LOOP;
    FOR change IN
        SELECT c.relname,
               string_agg(format('ALTER COLUMN %I TYPE %s COLLATE "C"', a.attname,
                                 format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum) AS columns
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
           AND a.attnum > 0 AND NOT a.attisdropped AND a.attcollation NOT IN (0, bytewise)
         GROUP BY c.relname ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE %I %s', change.relname, change.columns);  -- one pass over each table
    END LOOP;
    FOREACH definition IN ARRAY held LOOP
        EXECUTE definition;
    END LOOP;
END $$;
