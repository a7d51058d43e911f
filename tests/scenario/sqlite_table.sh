#!/usr/bin/env bash
# sqlite3 under vmrun: build a 100k-row table (recursive CTE), index it, and run
# deterministic queries (counts, sums, group by, an index lookup, a join).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need sqlite3

cat >"$TMP/q.sql" <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, pad BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO t SELECT i, (i * 7919) % 97, printf('name-%06d-%s', (i * 104729) % 100000, substr('abcdefghijklmnop', 1 + i % 16)),
                     (i % 1000) / 7.0, zeroblob(i % 200) FROM n;
CREATE TABLE g(grp INTEGER PRIMARY KEY, label TEXT);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 96)
INSERT INTO g SELECT i, 'group-' || i FROM n;
CREATE INDEX t_name ON t(name);
CREATE INDEX t_grp_val ON t(grp, val);
SELECT count(*), sum(grp), printf('%.3f', sum(val)), sum(length(pad)) FROM t;
SELECT grp, count(*), printf('%.3f', avg(val)), max(name) FROM t GROUP BY grp ORDER BY count(*) DESC, grp LIMIT 8;
SELECT id, name FROM t WHERE name BETWEEN 'name-050000' AND 'name-050010' ORDER BY name;
SELECT g.label, count(*), printf('%.2f', sum(t.val)) FROM t JOIN g ON g.grp = t.grp
  WHERE t.val > 100 GROUP BY g.label ORDER BY g.label LIMIT 10;
UPDATE t SET val = val * 2 WHERE id % 10 = 0;
DELETE FROM t WHERE id % 7 = 0;
SELECT count(*), printf('%.3f', sum(val)) FROM t;
SELECT count(DISTINCT substr(name, -3)) FROM t;
EXPLAIN QUERY PLAN SELECT * FROM t WHERE grp = 5 AND val > 3;
PRAGMA integrity_check;
SQL
write_workflow <<SH
sqlite3 db.sqlite < "$TMP/q.sql"
sqlite3 db.sqlite 'VACUUM; SELECT count(*) FROM t;'
SH
compare_both_traps
