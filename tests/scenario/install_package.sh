#!/usr/bin/env bash
# vmrt as its users get it: `cmake --install` into a temporary prefix, then only the
# installed files are used.
#   - the installed vmrun runs real programs (python3, sort) with the installed shim and
#     matches the native runs; it still does when the whole tree is moved elsewhere;
#   - vmrun --version and the --stats report name the project() version and a revision;
#   - an example (examples/cow_demo.c) and a C++ program over vmrt.hpp build against the
#     installed CMake package (find_package(vmrt), vmrt::vmrt) and run; cow_demo also
#     builds with `pkg-config --cflags --libs vmrt`; both behave as the build tree's;
#   - the man pages render with `man --warnings` without a single warning;
#   - the Debian package (cpack, as `./run.sh package` builds it) unpacked with dpkg -x:
#     its control fields, its vmrun running a real program, its vmrt.pc (relocatable).
source "$(dirname "$0")/lib/scenario_lib.bash" "$1"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
need cmake cc c++ pkg-config man python3 sort
VERSION=$(sed -n 's/^project(vmrt VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[ -n "$VERSION" ] || fail "no VERSION in project() of $SRC/CMakeLists.txt"

# ---- install -------------------------------------------------------------------------
P=$TMP/prefix
cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log" >&2; fail "cmake --install failed"; }
LIBDIR=$(dirname "$(find "$P" -name libvmrt_malloc.so | head -1)")
[ -n "$LIBDIR" ] && [ "$LIBDIR" != . ] || fail "libvmrt_malloc.so not installed"
for f in bin/vmrun include/vmrt/vmrt.h include/vmrt/vmrt.hpp share/man/man1/vmrun.1 share/man/man3/vmrt.3 \
  share/man/man7/vmrt.7; do
  [ -e "$P/$f" ] || fail "not installed: $f"
done
for f in libvmrt.so "libvmrt.so.$VERSION" pkgconfig/vmrt.pc cmake/vmrt/vmrtConfig.cmake cmake/vmrt/vmrtConfigVersion.cmake; do
  [ -e "$LIBDIR/$f" ] || fail "not installed: ${LIBDIR#$P/}/$f"
done
soname=$(readelf -d "$LIBDIR/libvmrt.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libvmrt.so.${VERSION%.*}" ] || fail "libvmrt.so SONAME '$soname', want libvmrt.so.${VERSION%.*}"
[ -e "$LIBDIR/$soname" ] || fail "no $soname link installed"
extra=$(ls "$P/bin" | grep -vx vmrun || true)
[ -z "$extra" ] || fail "programs that are not user-facing installed in bin/: $extra"
note "ok: installed $(find "$P" -type f | wc -l) files, libvmrt.so SONAME $soname"

# ---- the installed vmrun ---------------------------------------------------------------
VMRUN=$P/bin/vmrun  # compare_workflow runs this one
preload=$("$VMRUN" -- sh -c 'echo "$LD_PRELOAD"')
[ "$preload" = "$(realpath "$LIBDIR/libvmrt_malloc.so")" ] || fail "installed vmrun preloads '$preload', not the installed shim"
write_workflow <<'SH'
seq 1 20000 | sed 's/$/ vmrt/' | sort -r | head -3
python3 -c 'import json, hashlib; d = {str(i): [i] * (i % 7) for i in range(30000)}; print(hashlib.sha256(json.dumps(d).encode()).hexdigest())'
SH
compare_workflow
ver=$("$VMRUN" --version)
echo "$ver" | grep -Eq "^vmrun \(vmrt\) $VERSION \(git [^ )]+\)$" || fail "vmrun --version says '$ver' (want 'vmrun (vmrt) $VERSION (git REV)')"
"$VMRUN" --stats -- true 2>"$TMP/stats.err"
grep -Eq "^ *$VERSION vmrt version \(git [^ )]+\)$" "$TMP/stats.err" || fail "the --stats report names no version"
note "ok: $ver"

# The installed tree is relocatable: moved elsewhere, vmrun finds the shim next to it.
mv "$P" "$TMP/moved"
preload=$("$TMP/moved/bin/vmrun" -- sh -c 'echo "$LD_PRELOAD"')
case $preload in "$TMP/moved/"*libvmrt_malloc.so) ;; *) fail "moved vmrun preloads '$preload'" ;; esac
[ "$(echo b a | tr ' ' '\n' | "$TMP/moved/bin/vmrun" -- sort | tr '\n' ' ')" = "a b " ] || fail "moved vmrun: sort failed"
mv "$TMP/moved" "$P"

# ---- examples against the installed package --------------------------------------------
"$BUILD/bin/cow_demo" >"$TMP/cow.ref" || fail "the build tree's cow_demo failed"
cow_lines() { grep -E '^(after writes|copy-on-write faults|trap caught: (write|read)|page still|consistency)' "$1" | sed 's/0x[0-9a-f]*/ADDR/g'; }
cow_lines "$TMP/cow.ref" >"$TMP/cow.ref.lines"
[ "$(wc -l <"$TMP/cow.ref.lines")" -ge 5 ] || fail "cow_demo's output changed: update this scenario"
check_cow() {  # check_cow LABEL BINARY: runs like the build tree's cow_demo
  "$2" >"$TMP/cow.$1" 2>&1 || { cat "$TMP/cow.$1" >&2; fail "cow_demo built with $1 failed"; }
  cow_lines "$TMP/cow.$1" | diff -u "$TMP/cow.ref.lines" - >&2 || fail "cow_demo built with $1 differs from the build tree's"
}
mkdir -p "$TMP/cm"
cat >"$TMP/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(uses_vmrt C CXX)
find_package(vmrt $VERSION REQUIRED CONFIG)
add_executable(cow_demo "$SRC/examples/cow_demo.c")
target_link_libraries(cow_demo PRIVATE vmrt::vmrt)
add_executable(space space.cpp)
target_link_libraries(space PRIVATE vmrt::vmrt)
file(WRITE "\${CMAKE_BINARY_DIR}/found.txt" "\${VMRT_VMRUN}\n")
file(GENERATE OUTPUT "\${CMAKE_BINARY_DIR}/shim.txt" CONTENT "\$<TARGET_FILE:vmrt::malloc>\n")
CM
cat >"$TMP/cm/space.cpp" <<'CPP'
#include <vmrt/vmrt.hpp>
#include <sys/mman.h>
#include <cstdio>
#include <cstring>
int main() {
  vmrt::space s(64 << 20);
  char* p = static_cast<char*>(s.mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS));
  if (p == VMRT_MAP_FAILED) return 1;
  std::strcpy(p, "parent");
  vmrt::space child = s.fork();
  char* q = s.translate(child, p);
  std::strcpy(q, "child");
  std::printf("%s %s %lld\n", p, q, vmrt_counter("copy-on-write faults"));
  return vmrt_check(s.get(), 2) == 0 && vmrt_check(child.get(), 2) == 0 ? 0 : 1;
}
CPP
(cmake -S "$TMP/cm" -B "$TMP/cm/b" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$P" && cmake --build "$TMP/cm/b") \
  >"$TMP/cm.log" 2>&1 || { tail -30 "$TMP/cm.log" >&2; fail "building against find_package(vmrt) failed"; }
[ "$(head -1 "$TMP/cm/b/found.txt")" = "$P/bin/vmrun" ] || fail "VMRT_VMRUN is '$(head -1 "$TMP/cm/b/found.txt")'"
[ "$(cat "$TMP/cm/b/shim.txt")" = "$LIBDIR/libvmrt_malloc.so" ] || fail "vmrt::malloc is '$(cat "$TMP/cm/b/shim.txt")'"
ldd "$TMP/cm/b/cow_demo" >"$TMP/ldd.out" 2>&1 || true
grep -qF "$soname => $LIBDIR/" "$TMP/ldd.out" || fail "cow_demo is not linked with the installed $soname: $(tr '\n' ';' <"$TMP/ldd.out")"
check_cow cmake "$TMP/cm/b/cow_demo"
out=$("$TMP/cm/b/space") || fail "the vmrt.hpp program failed"
echo "$out" | grep -Eq '^parent child [1-9][0-9]*$' || fail "the vmrt.hpp program printed '$out'"

export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
[ "$(pkg-config --modversion vmrt)" = "$VERSION" ] || fail "pkg-config --modversion vmrt: $(pkg-config --modversion vmrt)"
cc -O1 -o "$TMP/cow_pc" "$SRC/examples/cow_demo.c" $(pkg-config --cflags --libs vmrt) 2>"$TMP/pc.err" ||
  { cat "$TMP/pc.err" >&2; fail "building with pkg-config failed"; }
LD_LIBRARY_PATH=$LIBDIR check_cow pkg-config "$TMP/cow_pc"
[ -x "$(pkg-config --variable=vmrun vmrt)" ] || fail "pkg-config --variable=vmrun vmrt is not the installed vmrun"
unset PKG_CONFIG_PATH
note "ok: cow_demo and a vmrt.hpp program built with find_package(vmrt) and pkg-config, run as the build tree's"

# ---- man pages ---------------------------------------------------------------------------
for page in "$P"/share/man/man*/*; do
  MANWIDTH=80 man --warnings -l "$page" >"$TMP/man.out" 2>"$TMP/man.err" || fail "man -l $page failed"
  [ ! -s "$TMP/man.err" ] || { cat "$TMP/man.err" >&2; fail "man --warnings: $(basename "$page") has warnings"; }
  grep -q '^NAME' "$TMP/man.out" || fail "$(basename "$page") renders no NAME section"
done
MANWIDTH=80 man -M "$P/share/man" 7 vmrt 2>/dev/null | grep -q 'VMRT_PHYSMEM' || fail "man -M PREFIX 7 vmrt does not find vmrt(7)"
note "ok: $(ls "$P"/share/man/man*/* | wc -l) man pages render without warnings"

# ---- the Debian package ---------------------------------------------------------------
if ! command -v dpkg-deb >/dev/null || ! command -v cpack >/dev/null; then
  echo "SKIP [$SCENARIO]: dpkg-deb or cpack missing: the Debian package is not checked" >&2
  exit 0
fi
(cd "$BUILD" && cpack -B "$TMP/pkg") >"$TMP/cpack.log" 2>&1 || { tail -20 "$TMP/cpack.log" >&2; fail "cpack failed"; }
deb=$(ls "$TMP"/pkg/vmrt_*.deb)
[ "$(dpkg-deb -f "$deb" Package)" = vmrt ] || fail "package name $(dpkg-deb -f "$deb" Package)"
[ "$(dpkg-deb -f "$deb" Version)" = "$VERSION" ] || fail "package version $(dpkg-deb -f "$deb" Version)"
dpkg-deb -f "$deb" Depends | grep -q libc6 || fail "package has no shared-library dependencies (Depends: $(dpkg-deb -f "$deb" Depends))"
R=$TMP/root
dpkg-deb -x "$deb" "$R"
[ -x "$R/usr/bin/vmrun" ] || fail "the package has no /usr/bin/vmrun"
"$R/usr/bin/vmrun" --version | grep -q "^vmrun (vmrt) $VERSION " || fail "the package's vmrun --version"
seq 1 5000 | sort -R --random-source=<(yes) >"$TMP/in"
sort -n "$TMP/in" >"$TMP/sort.native"
"$R/usr/bin/vmrun" -- sort -n "$TMP/in" >"$TMP/sort.deb" || fail "sort under the package's vmrun failed"
cmp -s "$TMP/sort.native" "$TMP/sort.deb" || fail "sort under the package's vmrun differs from the native sort"
preload=$("$R/usr/bin/vmrun" -- sh -c 'echo "$LD_PRELOAD"')
case $preload in "$R/usr/"*libvmrt_malloc.so) ;; *) fail "the package's vmrun preloads '$preload'" ;; esac
pc=$(find "$R" -name vmrt.pc)
[ -n "$pc" ] || fail "the package has no vmrt.pc"
cc -O1 -o "$TMP/cow_deb" "$SRC/examples/cow_demo.c" $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs vmrt) ||
  fail "building against the unpacked package's vmrt.pc failed"
LD_LIBRARY_PATH=$(dirname "$(dirname "$pc")") check_cow deb "$TMP/cow_deb"
note "ok: $(basename "$deb") ($(dpkg-deb -f "$deb" Installed-Size) KiB; Depends: $(dpkg-deb -f "$deb" Depends)) unpacks and runs"
