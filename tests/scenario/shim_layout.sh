#!/usr/bin/env bash
# The shim's image as the linker scripts lay it out (libc_shim/hot_text.ld, hot_data.ld,
# fork_data.ld): on these guests every page a process touches costs its first access, a
# fork child's included, so what every process reads is kept to few pages.  Read from the
# built library with readelf and nm (counts and addresses, never times).  Each check failed
# on the layout before it (2026-12-04): the PLT alone on a page before the hot text, kmem's
# tables on three pages of .rodata, the fini array and the GOT two pages apart, 131 PLT
# calls from the shim's own code.
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
need readelf nm objdump
SO=$BUILD/lib/libvmrt_malloc.so
SECTIONS=$(readelf -SW "$SO")
PHDRS=$(readelf -lW "$SO")
SYMS=$(nm -S "$SO")
page() { echo $(($1 >> 12)); }
sec() {  # sec NAME [FIELD]: the section's address (FIELD 2) or size (FIELD 4), hex without 0x
  awk -v n="$1" -v f="${2:-2}" '!done {for (i = 1; i <= NF; i++) if ($i == n) {print $(i + f); done = 1}}' <<<"$SECTIONS"
}
sym() {  # sym NAME: "address end" of the symbol (its last byte), in decimal, or nothing
  awk -v s="$1" '$4 == s {print $1, $2}' <<<"$SYMS" | head -1 | { read -r a z && [ -n "$z" ] && echo $((0x$a)) $((0x$a + 0x$z - 1)); }
}

hot=$(sec .text.vmrt_hot)
plt=$(sec .plt)
[ -n "$hot" ] || { note "skipped: built with -DVMRT_HOT_TEXT=OFF (no .text.vmrt_hot)"; exit 0; }
[ -n "$plt" ] || fail "no .plt in $SO"
[ "$(page 0x$plt)" = "$(page 0x$hot)" ] ||
  fail "the PLT (0x$plt) and the hot text (0x$hot) are on different pages: one more page in every process"

# kmem's fast paths' tables on one page, the slow paths' on the next.
read -r fast1 _ <<<"$(sym _ZN4vmrt4kmem6detail10kSizeIndexE)"
read -r _ codes_end <<<"$(sym _ZN4vmrt4kmem6detail6kCodesE)"
read -r slow1 _ <<<"$(sym _ZN4vmrt4kmem6detail9kFirstRunE)"
read -r _ masks_end <<<"$(sym _ZN4vmrt4kmem6detail9kFreeMaskE)"
[ -n "$fast1" ] && [ -n "$codes_end" ] && [ -n "$slow1" ] && [ -n "$masks_end" ] || fail "kmem's tables not found in $SO"
[ "$(page $fast1)" = "$(page $codes_end)" ] ||
  fail "kSizeIndex ($(printf %x $fast1)) and the end of kCodes ($(printf %x $codes_end)) are on different pages"
[ "$(page $slow1)" = "$(page $masks_end)" ] && [ "$(page $slow1)" -le $(($(page $fast1) + 1)) ] ||
  fail "kFirstRun ($(printf %x $slow1)) and the end of kFreeMask ($(printf %x $masks_end)) are not on the page after the fast paths' tables"

# Every exit reads the fini array and .dynamic, every call into libc the GOT: one page.
fini=$(sec .fini_array)
got=$(sec .got)
gsize=$(sec .got 4)
[ -n "$fini" ] && [ -n "$got" ] && [ -n "$gsize" ] || fail "no .fini_array or .got in $SO"
[ "$(page 0x$fini)" = "$(page $((0x$got + 0x$gsize - 1)))" ] ||
  fail "the fini array (0x$fini) and the end of the GOT are on different pages"
[[ $PHDRS == *GNU_RELRO* ]] || fail "no GNU_RELRO segment: the data layout broke the relocation-read-only segment"

# -fno-plt: the shim's own code calls libc through the GOT.  What is left calls through the
# PLT from objects not compiled with the project's flags (crtbeginS.o, libgcc's unwinder).
nplt=$(objdump -d --no-show-raw-insn "$SO" | awk '/call.*@plt>/ {n++} END {print n + 0}')
[ "$nplt" -le 60 ] || fail "$nplt calls through the PLT (at most 60: crtbeginS.o's and libgcc's)"

# The shim's static TLS, kmem's thread cache most of it: every process writes its static
# TLS block (glibc's 2304-byte thread descriptor, libc's block, the program's and the
# shim's), and every fork copies the pages of it on both sides (a shell's $(...) child and
# its parent write theirs at once; the fork handlers populate them).  The cache's bucket
# counters had a row for each of the 8 malloc types (5080 bytes of TLS, 3 pages populated
# per fork for bash); the shim's two types have rows, the VM's own share one (3160 bytes,
# 2 pages: kmem/kmem_internal.h, tcache).
tls=$(awk '$1 == "TLS" {print $6}' <<<"$PHDRS")
[ -n "$tls" ] || fail "no PT_TLS segment in $SO"
[ $((tls)) -le 3584 ] || fail "the shim's static TLS is $((tls)) bytes (at most 3584: a page more of every process's TLS block, copied by every fork)"
# Every process's loader looks up each symbol the shim's relocations name, through every
# loaded object.  The shim's calls to functions it exports itself (malloc, free, read, mmap,
# sigaction, ...) are bound at link time (-Bsymbolic-functions): none of its relocations
# names a function it defines (38 did before, 140 relocations by name in all).
own=$(nm -D --defined-only "$SO" | awk '$2 ~ /^[TtWi]$/ {sub(/@.*/, "", $3); print $3}' | sort -u)
byname=$(readelf -rW "$SO" | awk '$3 ~ /GLOB_DAT|JUMP_SLOT|R_X86_64_64/')
named=$(awk 'NF >= 5 {sub(/@.*/, "", $5); print $5}' <<<"$byname" | sort -u)
[ -n "$own" ] && [ -n "$named" ] || fail "no dynamic symbols or no relocations by name read from $SO"
self=$(comm -12 <(echo "$own") <(echo "$named") | tr '\n' ' ')
[ -z "$self" ] || fail "relocations the loader resolves to the shim's own functions: $self"
nnamed=$(grep -c . <<<"$byname")
[ "$nnamed" -le 110 ] || fail "$nnamed relocations by name (at most 110: a symbol lookup each in every process)"
note "ok: PLT on the hot text's first page, kmem's tables on two pages, fini array with the GOT, $nplt PLT calls, $((tls)) bytes of TLS, $nnamed relocations by name, none to the shim's own functions"
