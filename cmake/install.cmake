# SPDX-License-Identifier: GPL-2.0-or-later
# cmake --install: binaries, libbpffs (shared + static), headers, pkg-config file, CMake package,
# systemd units, man pages. DESTDIR is honoured as usual.
#
# The prefix is the one of the install step (`cmake --install BUILD --prefix /usr`), not only the
# one given at configure time: every destination is relative to it, and the two installed files
# that spell absolute paths (bpffs.pc and the service's ExecStart=) are configured while
# installing, from the prefix in force then. The CMake package is relocatable by itself.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Relative: below the install prefix (/usr/lib/systemd/system, /usr/local/lib/systemd/system,
# both on systemd's search path). An absolute path is used as is. Build trees configured when the
# default was absolute hold it in their cache, where it would pin the units to the configure-time
# prefix: that old default is dropped.
if(BPFFS_SYSTEMD_UNITDIR STREQUAL "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
  unset(BPFFS_SYSTEMD_UNITDIR CACHE)
endif()
set(BPFFS_SYSTEMD_UNITDIR "lib/systemd/system"
    CACHE STRING "Where the systemd units go (relative to the install prefix, or absolute)")

install(TARGETS bpffs-fuse bpffsctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS bpffs bpffs_static EXPORT bpffsTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES include/bpffs/bpffs.h include/bpffs/bpffs.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/bpffs)

# The C++ runtime a static link of libbpffs needs (bpffsConfig.cmake adds it to bpffs_static).
set(BPFFS_CXX_RUNTIME stdc++)
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

install(FILES systemd/mnt-bpf.mount DESTINATION ${BPFFS_SYSTEMD_UNITDIR})
install(FILES man/bpffs-fuse.8 man/bpffsctl.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES man/bpffs.3 DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)

# bpffs.pc and bpffs-fuse@.service, configured at install time. The values known now are
# handed over first; the second block runs inside cmake_install.cmake, where
# CMAKE_INSTALL_PREFIX is the install step's. Each file is configured under a name of its own
# (concurrent installs from one build tree do not collide) and installed with file(INSTALL),
# which applies DESTDIR and records the file in install_manifest.txt.
install(CODE "
set(_bpffs_src \"${CMAKE_CURRENT_SOURCE_DIR}\")
set(_bpffs_tmp \"${CMAKE_CURRENT_BINARY_DIR}/install-time\")
set(PROJECT_VERSION \"${PROJECT_VERSION}\")
set(_bpffs_bindir \"${CMAKE_INSTALL_BINDIR}\")
set(_bpffs_libdir \"${CMAKE_INSTALL_LIBDIR}\")
set(_bpffs_includedir \"${CMAKE_INSTALL_INCLUDEDIR}\")
set(_bpffs_sysconfdir \"${CMAKE_INSTALL_SYSCONFDIR}\")
set(_bpffs_unitdir \"${BPFFS_SYSTEMD_UNITDIR}\")
")
install(CODE [[
function(_bpffs_full out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  elseif(CMAKE_INSTALL_PREFIX STREQUAL "/")
    set(${out} "/${dir}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
# A macro, not a function: file(INSTALL) appends to CMAKE_INSTALL_MANIFEST_FILES in the
# caller's scope.
macro(_bpffs_install_configured template dest_dir name)
  string(RANDOM LENGTH 12 _bpffs_tag)
  set(_bpffs_file "${_bpffs_tmp}/${name}.${_bpffs_tag}")
  configure_file("${_bpffs_src}/${template}" "${_bpffs_file}" @ONLY)
  file(INSTALL "${_bpffs_file}" DESTINATION "${dest_dir}" RENAME "${name}"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  file(REMOVE "${_bpffs_file}")
endmacro()

# The names the .in files use.
_bpffs_full(CMAKE_INSTALL_FULL_LIBDIR "${_bpffs_libdir}")
_bpffs_full(CMAKE_INSTALL_FULL_INCLUDEDIR "${_bpffs_includedir}")
_bpffs_full(BPFFS_BINDIR "${_bpffs_bindir}")
_bpffs_full(_bpffs_unitdir_full "${_bpffs_unitdir}")
# GNUInstallDirs' rule: the configuration of /usr is in /etc.
if(IS_ABSOLUTE "${_bpffs_sysconfdir}")
  set(BPFFS_SYSCONFDIR "${_bpffs_sysconfdir}")
elseif(CMAKE_INSTALL_PREFIX MATCHES "^/usr/?$")
  set(BPFFS_SYSCONFDIR "/${_bpffs_sysconfdir}")
else()
  _bpffs_full(BPFFS_SYSCONFDIR "${_bpffs_sysconfdir}")
endif()

_bpffs_install_configured(cmake/bpffs.pc.in "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" bpffs.pc)
_bpffs_install_configured(systemd/bpffs-fuse@.service.in "${_bpffs_unitdir_full}"
  bpffs-fuse@.service)
]])
