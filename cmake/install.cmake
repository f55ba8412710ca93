# SPDX-License-Identifier: GPL-2.0-or-later
# cmake --install: binaries, libbpffs (shared + static), headers, pkg-config file, CMake package,
# systemd units, man pages. DESTDIR is honoured as usual.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(BPFFS_SYSTEMD_UNITDIR "${CMAKE_INSTALL_PREFIX}/lib/systemd/system"
    CACHE PATH "Where the systemd units go")
set(BPFFS_BINDIR "${CMAKE_INSTALL_FULL_BINDIR}")
set(BPFFS_SYSCONFDIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}")

install(TARGETS bpffs-fuse bpffsctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS bpffs bpffs_static EXPORT bpffsTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES include/bpffs/bpffs.h include/bpffs/bpffs.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/bpffs)

configure_file(cmake/bpffs.pc.in ${CMAKE_CURRENT_BINARY_DIR}/bpffs.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/bpffs.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(EXPORT bpffsTargets NAMESPACE bpffs::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bpffs)
configure_package_config_file(cmake/bpffsConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/bpffsConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bpffs)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/bpffsConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/bpffsConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/bpffsConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/bpffs)

configure_file(systemd/bpffs-fuse@.service.in
  ${CMAKE_CURRENT_BINARY_DIR}/systemd/bpffs-fuse@.service @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/systemd/bpffs-fuse@.service systemd/mnt-bpf.mount
  DESTINATION ${BPFFS_SYSTEMD_UNITDIR})

install(FILES man/bpffs-fuse.8 man/bpffsctl.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES man/bpffs.3 DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
