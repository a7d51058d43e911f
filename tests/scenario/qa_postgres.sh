#!/usr/bin/env bash
# PostgreSQL under vmrun: a server that forks a backend per connection, whose backends share
# the buffer pool through a MAP_SHARED|MAP_ANONYMOUS mapping and parallel workers through
# POSIX shared memory (shm_open + mmap).  initdb, the postmaster and every backend, psql and
# pgbench all run under vmrt: a deterministic SQL workload (a 300k-row table, an index, a
# hash join, window functions, a forced parallel aggregate, amcheck's index verification)
# and a pgbench run of fixed size whose TPC-B balances must agree across the four tables
# (each transaction updates three of them from a concurrent backend).  Output must equal the
# native run's, with the default backend, with sigsegv, and with the heap paged at 64M.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] ||
  fail "PostgreSQL's server is not installed (run scripts/setup.sh: postgresql)"
need psql pgbench setpriv
# The server refuses to run as root: as root, the workflow runs as the package's user.
AS=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || fail "running as root and there is no postgres user (postgresql's package makes it)"
  AS=(setpriv --reuid postgres --regid postgres --init-groups --)
  chmod 755 "$TMP"
fi
# A port of its own, per run (two CI trees may run the scenario at once).
PORT=$((20000 + $$ % 20000))
write_workflow <<SH
set -euo pipefail
export PGHOST=\$PWD/pg PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
mkdir -p pg
run() { ${AS[*]:-} "\$@"; }
[ ${#AS[@]} -eq 0 ] || chown postgres pg
run "$PGBIN/initdb" -D pg/data -A trust -U postgres --no-sync >/dev/null
run "$PGBIN/pg_ctl" -D pg/data -l pg/server.log -w \
  -o "-p $PORT -k \$PWD/pg -c listen_addresses= -c fsync=off -c shared_buffers=32MB -c max_parallel_workers_per_gather=2" \
  start >/dev/null
stop() { run "$PGBIN/pg_ctl" -D pg/data -m fast -w stop >/dev/null; }
trap stop EXIT
# The postmaster (every backend is its fork) must be vmrt's, or this compares nothing.
if [ -n "\${LD_PRELOAD:-}" ]; then
  pm=\$(head -1 pg/data/postmaster.pid)
  grep -q libvmrt_malloc "/proc/\$pm/maps" || echo "postmaster \$pm does not run under vmrt" >&2
fi
psql -qAt -v ON_ERROR_STOP=1 <<'SQL'
CREATE TABLE t(id int PRIMARY KEY, g int, s text);
INSERT INTO t SELECT i, (i::bigint * 7919) % 1000, md5(i::text) FROM generate_series(1, 300000) i;
CREATE INDEX t_s ON t(s);
CREATE TABLE u AS SELECT g, count(*) AS n, max(s) AS top FROM t GROUP BY g;
ANALYZE;
SELECT count(*), sum(g), min(s), max(s) FROM t;
SELECT u.g, u.n, left(u.top, 8) FROM u JOIN t ON t.id = u.g ORDER BY u.g LIMIT 5;
SELECT g, s, rank() OVER (PARTITION BY g ORDER BY s) FROM t WHERE g < 2 ORDER BY g, s LIMIT 4;
SELECT count(DISTINCT left(s, 3)) FROM t;
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SELECT g % 10, count(*), sum(length(s)) FROM t GROUP BY 1 ORDER BY 1;
CREATE EXTENSION amcheck;
SELECT bool_and(bt_index_check(c.oid, true) IS NOT NULL) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' AND c.relpersistence <> 't';
SQL
pgbench -q -i -s 2 >/dev/null 2>&1
pgbench -n -c 4 -j 2 -t 150 >/dev/null
psql -qAt <<'SQL'
SELECT count(*) FROM pgbench_history;
SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history),
       (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(delta) FROM pgbench_history),
       (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(delta) FROM pgbench_history);
SQL
stop
trap - EXIT
grep -E 'PANIC|terminated by signal|server process .* exited with exit code [^0]' pg/server.log >&2 || true
SH
compare_both_traps
compare_workflow --physmem 64M
