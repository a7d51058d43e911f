#!/usr/bin/env bash
# More hostile conditions of issue 12, each compared with the native run:
#  - exec of a statically linked program and of a setuid program from a shell under vmrt,
#    after the shell changed its own limits mid-run (ulimit -v / -f / -n): the new image
#    sees exactly the limits the shell set (vmrt's share is given back before exec) and
#    the same descriptors;
#  - 100 threads allocating and freeing while one thread forks in a loop and SIGUSR1
#    arrives every millisecond: every child and every thread sees only its own data.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need cc bash
SRC=$(cd "$(dirname "$0")" && pwd)/src
cc -O2 -static -o "$TMP/show_limits" "$SRC/show_limits.c" || fail "cannot build a static program (libc6-dev)"
cp "$TMP/show_limits" "$TMP/show_limits_suid" && chmod u+s "$TMP/show_limits_suid"
cc -O2 -pthread -o "$TMP/tfs" "$SRC/threads_fork_signals.c"

write_workflow <<SH
"$TMP/show_limits"
(ulimit -v 3000000; ulimit -f 400000; ulimit -n 200; "$TMP/show_limits"; "$TMP/show_limits_suid"; /sbin/ldconfig -p | head -1 | wc -l)
(ulimit -Sv 2500000; ulimit -Sf 300000; x=\$("$TMP/show_limits"); echo "\$x"; exec "$TMP/show_limits_suid")
(ulimit -v 3000000; python3 -c 'import os; os.execv("$TMP/show_limits", ["x"])')
"$TMP/tfs"
SH
compare_both_traps
