#!/usr/bin/env bash
# sqlite3 under vmrun at scale: a 1,000,000-row table, two index builds, a bulk
# delete, VACUUM and integrity_check; output and the database file itself must be
# identical to the native run's (both trap backends).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need sqlite3 sha256sum
cat >"$TMP/q.sql" <<'SQL'
PRAGMA cache_size=-20000;
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
INSERT INTO t SELECT i, (i * 2654435761) % 1000003, printf('%08x-%d', (i * 40503) % 65536 * 65536 + i % 65536, i % 7), i / 3.0 FROM n;
CREATE INDEX t_a ON t(a);
CREATE INDEX t_b ON t(b);
SELECT count(*), sum(a), max(b), printf('%.2f', sum(c)) FROM t;
DELETE FROM t WHERE id % 3 = 0;
VACUUM;
SELECT count(*), min(a), max(a) FROM t WHERE a BETWEEN 1000 AND 500000;
SELECT b FROM t ORDER BY b LIMIT 3;
SELECT a % 10, count(*) FROM t GROUP BY 1 ORDER BY 1;
PRAGMA integrity_check;
SQL
write_workflow <<SH
set -e
sqlite3 db.sqlite < "$TMP/q.sql"
sha256sum db.sqlite
SH
compare_both_traps
