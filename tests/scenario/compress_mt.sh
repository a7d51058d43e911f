#!/usr/bin/env bash
# Multithreaded compressors under vmrun: pigz -p 2, zstd -T2 and xz -T2 on a few
# MB of generated data; decompress and compare checksums with the original.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need pigz zstd xz sha256sum python3

python3 - "$TMP/data.bin" <<'PY'
import random, sys
rng = random.Random(7)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
out = bytearray()
while len(out) < 6_000_000:
    out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    if rng.random() < 0.05:
        out += rng.randbytes(200)
open(sys.argv[1], "wb").write(out)
PY
write_workflow <<SH
set -e
cp "$TMP/data.bin" data.bin
sha256sum data.bin
pigz -p 2 -6 -n -m -c < data.bin > data.bin.gz   # no name or mtime in the header
pigz -d -c data.bin.gz | sha256sum
zstd -q -T2 -5 data.bin -o data.zst
zstd -q -d -c data.zst | sha256sum
xz -T2 -k -3 data.bin
xz -d -c data.bin.xz | sha256sum
# compressed output is deterministic for a given level/thread count
sha256sum data.bin.gz data.zst data.bin.xz
SH
compare_workflow
