#!/usr/bin/env bash
# The built-in example: wordfreq on the corpus natively and under vmrun (both trap
# backends, and with --stats: the report goes to stderr, stdout stays identical).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
WORDFREQ=$BUILD/bin/wordfreq
CORPUS=$(cd "$(dirname "$0")/../.." && pwd)/examples/data/corpus.txt
[ -x "$WORDFREQ" ] || fail "wordfreq not built: $WORDFREQ"
[ -r "$CORPUS" ] || fail "corpus missing: $CORPUS"

write_workflow <<SH
"$WORDFREQ" "$CORPUS"
"$WORDFREQ" < "$CORPUS" | tail -1
head -c 1000 "$CORPUS" | "$WORDFREQ" | tail -1
SH
compare_both_traps
grep -q '^total words: ' "$TMP/native.out" || fail "wordfreq printed no totals"

"$WORDFREQ" "$CORPUS" >"$TMP/a.out"
"$VMRUN" --stats -- "$WORDFREQ" "$CORPUS" >"$TMP/b.out" 2>"$TMP/b.err"
cmp -s "$TMP/a.out" "$TMP/b.out" || { diff -u "$TMP/a.out" "$TMP/b.out" | head -40 >&2; fail "vmrun --stats changed stdout"; }
grep -q 'vmrt statistics: pid' "$TMP/b.err" || fail "vmrun --stats printed no report"
note "ok: --stats report $(wc -l <"$TMP/b.err") lines on stderr, stdout identical"
