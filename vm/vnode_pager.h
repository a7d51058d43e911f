// vnode_pager.h — vnode objects: the VM objects of mapped files (McKusick et al., The Design
// and Implementation of the 4.4BSD Operating System, "Object-Oriented Virtual Memory": each
// file has one object, shared by every mapping of it, found through its vnode; FreeBSD
// vnode_pager.c).
//
// vmrt has no vnodes: a file is named by the host's identity (st_dev, st_ino), and the
// object keeps the path it was mapped under for procstat -v (FreeBSD prints `vn /path`).
// Every mapping of one file (shared or private, by any map entry) refers to its one object,
// whose offsets are the file's byte offsets.
//
// Where the pages live (README "Program memory"):
//   - mappings served as host memory (MAP_SHARED always, MAP_PRIVATE without paging): the
//     host maps the file at the entry's place and the object's "frames" are the host page
//     cache's pages, so read(2)/write(2) by any process stay coherent with the mapping (the
//     object holds no resident page; it is the mapping's identity and name);
//   - MAP_PRIVATE mappings of pageable memory (paging on): the object's resident pages are
//     VM frames the pager filled from the file (get_pages); a shadow object in front of it
//     takes the program's writes (copy-on-write), so they never reach the file.  The pager
//     reads without a descriptor the program could see: at the object's creation the file
//     is mapped MAP_SHARED read-only into vmrt's own memory (the store) and pages are
//     copied out of it with process_vm_readv, which reports a page past end-of-file (or
//     cut by a truncation) as EFAULT instead of raising SIGBUS in vmrt.  A page past the
//     end of the file is absent from the store: the fault fails and the program gets
//     SIGBUS with BUS_ADRERR, as on Linux.  Pages are never written back (put_pages
//     refuses: clean vnode pages are freed without a write and read again).
//
// Locking: every function => the VM lock is held (get_pages may drop it for the copy when
// the caller allows; the pages are busy and the object referenced).  No malloc.
#pragma once

#include <cstdint>

#include "vm/vm_pager.h"
#include "vm/vm_thread_safety.h"
#include "vm/vm_types.h"

namespace vmrt {

struct vm_object;

// Most files mapped at once (their objects live in a fixed table: no malloc).
inline constexpr unsigned kVnodeMax = 256;
// Longest path kept for a name (longer ones are cut).
inline constexpr unsigned kVnodeNameMax = 240;

// The vnode object of file (dev, ino), referenced for the caller, found or made.  file_pages:
// the file's size now, in pages (resident pages at or past it are dropped: the file was cut
// since they were read); extent: the pages the caller's mapping reaches (the object's size
// grows to cover them: a mapping may extend past the end of its file).  `name` (may be null:
// see vnode_object_name) names a new object.  Null when the table or the object zone is full (the caller maps
// without one).  => VM lock held.
vm_object* vnode_object_get(std::uint64_t dev, std::uint64_t ino, const char* name, vm_pindex_t file_pages,
                            vm_pindex_t extent);

// obj's path ("" when obj is no vnode object of the table, or no name is known): the one
// given when it was made, else the one the name source finds the first time it is asked.
//  => VM lock held; may read the host's list of mappings (the name source).
const char* vnode_object_name(const vm_object* obj) VMRT_REQUIRES(g_vm_lock);

// Where a vnode object made without a name finds one when it is first asked for it
// (procstat -v): the runtime looks file (dev, ino) up in the host's list of this process's
// mappings, which names every file mapped (the program's mappings the host makes, and the
// pager's stores).  Looked up at each mapping instead (readlink of /proc/self/fd/N), the name
// cost every file mmap a /proc path walk, 4.5 us and more (git maps some 40 files a
// command).  The function copies the path to buf (cap bytes, terminated) and says whether
// it found one.  => before the first name is asked; no lock.
using vnode_name_fn = bool (*)(std::uint64_t dev, std::uint64_t ino, char* buf, std::size_t cap);
void vnode_set_name_source(vnode_name_fn fn);

// Give obj a store for its pager (MAP_PRIVATE pageable file mappings): the file open as fd
// is mapped shared read-only into vmrt's memory over at least `bytes` (the end of the
// mapping being made, in the file) and at least kVnodeStoreMin; fd is not kept.  The store
// may extend past the file's end: those pages read as absent (SIGBUS) until the file grows.
// 0 or the host's errno (EACCES: fd not open for reading).  => VM lock held.
int vnode_object_attach_store(vm_object* obj, int fd, std::uint64_t bytes);
inline constexpr std::uint64_t kVnodeStoreMin = std::uint64_t{64} << 20;

// Pages the store spans (0: no store).  => VM lock held.
vm_pindex_t vnode_object_pages(const vm_object* obj) VMRT_REQUIRES(g_vm_lock);
// Copy page pindex of obj's file into buf (PAGE_SIZE bytes) from its store: false past the
// file's end (or cut by a truncation since).  => VM lock held; obj a vnode object.
bool vnode_object_read_page(const vm_object* obj, vm_pindex_t pindex, void* buf) VMRT_REQUIRES(g_vm_lock);

extern const vm_pager_ops kVnodePagerOps;

}  // namespace vmrt
