-- sqlite3 in mmap mode on a database larger than 64 MB (scenario mmap_programs, bench/file_map_bench.sh):
-- reads go through sqlite's MAP_SHARED mapping of the database, writes through write(2).
PRAGMA page_size=4096;
PRAGMA mmap_size=268435456;
PRAGMA journal_mode=WAL;
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, pad TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 75000)
INSERT INTO t SELECT i, (i * 7919) % 101, printf('%0900d', (i * 104729) % 1000003) FROM n;
CREATE INDEX t_grp ON t(grp);
SELECT 'db larger than 64 MB:', (SELECT page_count * page_size FROM pragma_page_count, pragma_page_size) > 67108864;
SELECT count(*), sum(grp), sum(length(pad)) FROM t;
SELECT grp, count(*), substr(min(pad), 890) FROM t GROUP BY grp ORDER BY grp LIMIT 5;
UPDATE t SET pad = printf('%0900d', id) WHERE id % 13 = 0;
DELETE FROM t WHERE id % 11 = 0;
SELECT count(*), sum(CAST(substr(pad, 880) AS INTEGER) % 1000) FROM t;
PRAGMA wal_checkpoint(TRUNCATE);
SELECT count(*) FROM t WHERE grp = 7;
PRAGMA integrity_check;
