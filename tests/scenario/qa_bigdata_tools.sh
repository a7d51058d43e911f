#!/usr/bin/env bash
# Text and compression tools under vmrun on generated data: sort -S 10M of a
# 25 MB file (forces temporary files and merges, also --parallel=2 with keys),
# perl and gawk passes over it, gzip/bzip2 round trips, xz -T4 and zstd -T4
# (4 threads each) with checksums; output must match the native run.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need python3 sort perl gawk gzip bzip2 xz zstd sha256sum head
python3 - "$TMP/big.txt" <<'PY'
import random, sys
r = random.Random(1)
with open(sys.argv[1], "w") as f:
    n = 0
    while n < 25_000_000:
        s = "%08d %s %d\n" % (r.randrange(10**8), "".join(r.choice("abcdefgh") for _ in range(r.randint(5, 30))), r.randrange(1000))
        f.write(s); n += len(s)
PY
write_workflow <<SH
set -e
mkdir tmp
sort -S 10M -T tmp "$TMP/big.txt" | sha256sum
sort -S 10M -T tmp --parallel=2 -k2,2 -k1,1n "$TMP/big.txt" | sha256sum
ls tmp | wc -l
perl -ne 'my @f = split; \$h{substr(\$f[1], 0, 3)} += \$f[2]; \$s .= \$f[1] if \$. % 3 == 0;
  END { print length(\$s), " ", scalar(keys %h), "\n"; print "\$_ \$h{\$_}\n" for (sort keys %h)[0..4] }' "$TMP/big.txt"
head -c 3000000 "$TMP/big.txt" > m.txt
gawk '{ s = s \$2; n[\$3 % 97]++ } END { print length(s); for (k = 0; k < 5; k++) print k, n[k] }' m.txt
gawk '{ w[\$2]++ } END { for (k in w) if (w[k] > 2) c++; print c, length(w) }' "$TMP/big.txt"
head -c 4000000 "$TMP/big.txt" > c.txt
gzip -6 -n -c c.txt > c.gz; gzip -d -c c.gz | cmp - c.txt
bzip2 -9 -c c.txt > c.bz2; bzip2 -d -c c.bz2 | cmp - c.txt
xz -T4 -3 -c c.txt > c.xz; xz -T4 -d -c c.xz | cmp - c.txt
zstd -q -T4 -9 -c c.txt > c.zst; zstd -q -d -c c.zst | cmp - c.txt
sha256sum c.gz c.bz2 c.xz c.zst
SH
compare_workflow
