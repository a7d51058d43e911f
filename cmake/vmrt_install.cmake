# What `cmake --install build --prefix P` installs, and the Debian package (CPack):
#   bin/vmrun                          the launcher (finds lib/libvmrt_malloc.so next to it)
#   lib/libvmrt.so.V                   the C API (SONAME libvmrt.so.0.MINOR), libvmrt.so link
#   lib/libvmrt_malloc.so              the LD_PRELOAD malloc shim
#   include/vmrt/vmrt.h, vmrt.hpp      the public headers (#include <vmrt/vmrt.h>)
#   lib/cmake/vmrt/                    find_package(vmrt): vmrt::vmrt, vmrt::malloc
#   lib/pkgconfig/vmrt.pc              pkg-config --cflags --libs vmrt
#   share/man/man{1,3,7}/              vmrun(1), vmrt(3), vmrt(7)
# Test and benchmark programs are not installed.
include(CMakePackageConfigHelpers)

set(VMRT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/vmrt)
set_target_properties(vmrt_malloc PROPERTIES EXPORT_NAME malloc)

install(TARGETS vmrun RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# vmrun --guest's helper: not user-facing, beside the shim (vmrun finds it there).
install(TARGETS vmrun-guest RUNTIME DESTINATION ${CMAKE_INSTALL_LIBDIR}/vmrt)
install(TARGETS vmrt vmrt_malloc EXPORT vmrtTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_SOURCE_DIR}/runtime/vmrt.h ${CMAKE_SOURCE_DIR}/runtime/vmrt.hpp ${CMAKE_SOURCE_DIR}/runtime/vmrt_channel.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/vmrt)

install(EXPORT vmrtTargets NAMESPACE vmrt:: DESTINATION ${VMRT_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/vmrtConfig.cmake.in
  ${CMAKE_BINARY_DIR}/cmake/vmrtConfig.cmake INSTALL_DESTINATION ${VMRT_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_BINDIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/cmake/vmrtConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/cmake/vmrtConfig.cmake ${CMAKE_BINARY_DIR}/cmake/vmrtConfigVersion.cmake
  DESTINATION ${VMRT_CMAKE_DIR})

# vmrt.pc is relocatable: its prefix is found from the .pc file's own directory, so a
# tree installed with --prefix P (or unpacked with dpkg -x) needs no editing.
set(VMRT_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH VMRT_PC_TO_PREFIX ${CMAKE_INSTALL_PREFIX}/${VMRT_PC_DIR} ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" VMRT_PC_TO_PREFIX "${VMRT_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/vmrt.pc.in ${CMAKE_BINARY_DIR}/cmake/vmrt.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/cmake/vmrt.pc DESTINATION ${VMRT_PC_DIR})

# Man pages (runtime/man/, roff): @PROJECT_VERSION@ filled in, build/man/ holds the result.
foreach(page vmrun.1 vmrt.3 vmrt.7)
  string(REGEX MATCH "[0-9]$" section ${page})
  configure_file(${CMAKE_SOURCE_DIR}/runtime/man/${page} ${CMAKE_BINARY_DIR}/man/${page} @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/man/${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()

# The Debian package: `./run.sh package` (or `cmake --build build --target package`)
# writes build/packages/vmrt_VERSION_amd64.deb, installing under /usr.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vmrt)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "vmrt developers <vmrt@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "4.4BSD/Mach virtual memory as a user-space runtime, with a malloc shim")
set(CPACK_PACKAGE_DESCRIPTION "vmrt runs the machine-independent VM of 4.4BSD (vm_map, shadow objects,\ncopy-on-write, vm_fault) over a reserved region of a Linux process, the 4.4BSD\nkernel malloc on top, and a malloc shim: vmrun runs unmodified programs on it.\nlibvmrt.so embeds address spaces in a program (vmrt.h).")
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)  # shlibs file + ldconfig trigger for libvmrt.so
# (cpack warns that libvmrt_malloc.so has no soversion: a preload module, it is not
# linked by SONAME, so it has no shlibs entry on purpose.)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://localhost/vmrt")
set(CPACK_STRIP_FILES OFF)
include(CPack)
