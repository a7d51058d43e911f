// vm_vnode_test.cpp — the vnode pager (vm/vnode_pager): one object per file, pages read from
// the file on demand (clustered), copy-on-write private mappings whose writes never reach the
// file, a page past the end refused (KERN_PAGER_ABSENT: the program's SIGBUS), a grown file
// read on, MADV_DONTNEED back to the file's bytes, clean file pages freed without a write.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "vm/vm_map.h"
#include "vm/vm_object.h"
#include "vm/vnode_pager.h"
#include "vm_fakepmap.h"

namespace {
using namespace vmrt;
using fake::rd;
using fake::wr;
constexpr vaddr_t kBase = vaddr_t{1} << 42, kFiles = kBase + (vsize_t{16} << 20);
constexpr vsize_t kSize = vsize_t{256} << 20;

// A temporary file of `pages` pages whose byte at offset i is i % 251 (+1 for every page).
struct temp_file {
  std::string path;
  int fd;
  explicit temp_file(unsigned pages) {
    char tmpl[] = "/tmp/vmrt-vnode-XXXXXX";
    fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    path = tmpl;
    std::string buf(pages * PAGE_SIZE, '\0');
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<char>(i % 251 + i / PAGE_SIZE);
    REQUIRE(::write(fd, buf.data(), buf.size()) == static_cast<ssize_t>(buf.size()));
  }
  ~temp_file() {
    ::close(fd);
    ::unlink(path.c_str());
  }
  std::uint8_t byte(off_t off) const {
    unsigned char c = 0;
    REQUIRE(::pread(fd, &c, 1, off) == 1);
    return c;
  }
};
inline std::uint8_t expect_byte(std::size_t i) { return static_cast<std::uint8_t>(i % 251 + i / PAGE_SIZE); }

// Map file f privately at a (n pages from file offset off), as rt_mmap does under paging.
void map_private(fake::space& s, vaddr_t a, vsize_t n, const temp_file& f, vm_ooffset_t off, std::uint64_t dev_ino) {
  vm_lock_guard g;
  vm_pindex_t file_pages = atop(round_page(static_cast<vsize_t>(::lseek(f.fd, 0, SEEK_END))));
  vm_object* obj = vnode_object_get(0, dev_ino, f.path.c_str(), file_pages, atop(off + n));
  REQUIRE(obj != nullptr);
  REQUIRE(vnode_object_attach_store(obj, f.fd, off + n) == 0);
  vm_map* m = reinterpret_cast<vm_map*>(s.vs);  // vmspace starts with its map
  REQUIRE(vm_map_insert(m, obj, off, a, a + n, VM_PROT_DEFAULT, VM_PROT_ALL,
                        static_cast<std::uint16_t>(MAP_ENTRY_COW | MAP_ENTRY_NEEDS_COPY), VM_INHERIT_COPY) == KERN_SUCCESS);
  pmap_reserve(vmspace_pmap(s.vs), a, a + n, VM_PROT_DEFAULT);
}
}  // namespace

TEST_CASE("vnode pager: pages come from the file, writes stay private, past EOF is refused") {
  fake::space s(kBase, kSize);
  temp_file f(6);
  vaddr_t a = kFiles;
  map_private(s, a, 8 * PAGE_SIZE, f, PAGE_SIZE, 1);  // file pages 1..8; the file has 6
  auto in0 = fake::ctr(V_VNODE_PAGEINS);
  CHECK(rd(s.vs, a + 5) == expect_byte(PAGE_SIZE + 5));
  CHECK(fake::ctr(V_VNODE_PAGEINS) > in0);
  for (unsigned p = 0; p < 5; ++p) CHECK(rd(s.vs, a + p * PAGE_SIZE + 77) == expect_byte((p + 1) * PAGE_SIZE + 77));
  // A write is copy-on-write: the mapping keeps it, the file does not see it.
  wr(s.vs, a + 2 * PAGE_SIZE, 0xAB);
  CHECK(rd(s.vs, a + 2 * PAGE_SIZE) == 0xAB);
  CHECK(f.byte(3 * PAGE_SIZE) == expect_byte(3 * PAGE_SIZE));
  CHECK(rd(s.vs, a + 2 * PAGE_SIZE + 1) == expect_byte(3 * PAGE_SIZE + 1));
  // File page 6 is past the end: refused, as the program's SIGBUS.
  std::uint8_t b = 0;
  kern_return_t kr = KERN_SUCCESS;
  auto bus0 = fake::ctr(V_FILE_SIGBUS);
  CHECK_FALSE(fake::access(s.vs, a + 5 * PAGE_SIZE, false, &b, &kr));
  CHECK(kr == KERN_PAGER_ABSENT);
  CHECK(fake::ctr(V_FILE_SIGBUS) > bus0);
  // The file grows: the page reads (zeros where nothing was written).
  REQUIRE(::ftruncate(f.fd, 7 * PAGE_SIZE) == 0);
  CHECK(rd(s.vs, a + 5 * PAGE_SIZE + 9) == 0);
  // MADV_DONTNEED gives the file's bytes back (not zeros).
  {
    vm_lock_guard g;
    REQUIRE(vm_map_advise_locked(reinterpret_cast<vm_map*>(s.vs), a, a + 8 * PAGE_SIZE, VM_ADVICE_DONTNEED) == KERN_SUCCESS);
  }
  CHECK(rd(s.vs, a + 2 * PAGE_SIZE) == expect_byte(3 * PAGE_SIZE));
  CHECK(fake::check_all() == "");
}

TEST_CASE("vnode pager: one object per file, named, freed with its last mapping") {
  fake::space s(kBase, kSize);
  temp_file f(2);
  vaddr_t a = kFiles + (vsize_t{16} << 20), b = a + (vsize_t{1} << 20);
  map_private(s, a, 2 * PAGE_SIZE, f, 0, 2);
  map_private(s, b, 2 * PAGE_SIZE, f, 0, 2);
  CHECK(rd(s.vs, a + 1) == expect_byte(1));
  auto in0 = fake::ctr(V_VNODE_PAGEINS);
  CHECK(rd(s.vs, b + 1) == expect_byte(1));
  CHECK(fake::ctr(V_VNODE_PAGEINS) == in0);  // the second mapping found the first one's page
  vm_lock_guard g;
  vm_map* m = reinterpret_cast<vm_map*>(s.vs);
  vm_map_entry *ea, *eb;
  REQUIRE(vm_map_lookup_entry(m, a, &ea));
  REQUIRE(vm_map_lookup_entry(m, b, &eb));
  CHECK(ea->object == eb->object);  // read faults do not shadow: both map the file's object
  CHECK(ea->object->type == OBJT_VNODE);
  CHECK(std::string(vnode_object_name(ea->object)) == f.path);
  vm_map_delete(m, a, a + 2 * PAGE_SIZE);
  vm_map_delete(m, b, b + 2 * PAGE_SIZE);
  // The table forgets it: a new mapping of the file gets a new object.
  vm_object* o = vnode_object_get(0, 2, "again", 2, 2);
  CHECK(std::string(vnode_object_name(o)) == "again");
  vm_object_deallocate(o);
}
