# The version (project() VERSION) and the git revision, written to
# ${CMAKE_BINARY_DIR}/generated/vmrt_version.h at configure time for vmrun --version
# and the VMRT_STATS report.  The revision is `git describe --always --dirty` of the
# source tree; outside a git checkout (a tarball) it is VMRT_GIT_REVISION if given
# (-DVMRT_GIT_REVISION=...), else "unknown".  A commit or checkout re-runs the
# configure step (HEAD and the current branch's ref are configure dependencies); a
# tree made dirty after configuring is not seen until the next configure.
set(VMRT_GIT_REVISION "" CACHE STRING "git revision to report when the source is not a git checkout")
set(_vmrt_rev "")
find_package(Git QUIET)
if(GIT_FOUND AND EXISTS ${CMAKE_SOURCE_DIR}/.git)
  execute_process(COMMAND ${GIT_EXECUTABLE} describe --always --dirty
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} OUTPUT_VARIABLE _vmrt_rev
    RESULT_VARIABLE _vmrt_rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT _vmrt_rc EQUAL 0)
    set(_vmrt_rev "")
  endif()
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --absolute-git-dir
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} OUTPUT_VARIABLE _vmrt_gitdir
    RESULT_VARIABLE _vmrt_rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --symbolic-full-name HEAD
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} OUTPUT_VARIABLE _vmrt_ref
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse --git-common-dir
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR} OUTPUT_VARIABLE _vmrt_common
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_vmrt_rc EQUAL 0 AND EXISTS ${_vmrt_gitdir}/HEAD)
    set_property(DIRECTORY ${CMAKE_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_vmrt_gitdir}/HEAD)
    if(_vmrt_common AND NOT IS_ABSOLUTE ${_vmrt_common})
      set(_vmrt_common ${CMAKE_SOURCE_DIR}/${_vmrt_common})
    endif()
    if(_vmrt_ref MATCHES "^refs/" AND EXISTS ${_vmrt_common}/${_vmrt_ref})
      set_property(DIRECTORY ${CMAKE_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_vmrt_common}/${_vmrt_ref})
    endif()
  endif()
endif()
if(_vmrt_rev STREQUAL "")
  if(VMRT_GIT_REVISION)
    set(_vmrt_rev ${VMRT_GIT_REVISION})
  else()
    set(_vmrt_rev unknown)
  endif()
endif()
set(VMRT_REVISION ${_vmrt_rev})
# vmrun finds the shim relative to itself: bin/ -> lib/ (or lib/<multiarch>/).
file(RELATIVE_PATH VMRT_SHIM_DIR_FROM_BINDIR ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
configure_file(${CMAKE_CURRENT_LIST_DIR}/vmrt_version.h.in ${CMAKE_BINARY_DIR}/generated/vmrt_version.h @ONLY)
include_directories(${CMAKE_BINARY_DIR}/generated)
