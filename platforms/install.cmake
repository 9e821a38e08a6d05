# `cmake --install`: the runtime as a package an app finds with
#   find_package(mtan 1.0 REQUIRED)  ->  target mtan::runtime
# or with pkg-config (`pkg-config --cflags --libs mtan`), plus the command-line
# tools that this build made. Included at the end of the top-level
# CMakeLists.txt.
#
# libmtan is static by default; -DBUILD_SHARED_LIBS=ON builds libmtan.so
# instead (only the runtime: the host code is always static).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MTAN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/mtan
    CACHE STRING "Where the CMake package config is installed, relative to the prefix")
mark_as_advanced(MTAN_INSTALL_CMAKEDIR)

# XNNPACK and pthreadpool ship no CMake config. In the build tree the runtime
# links the absolute paths that runtime/CMakeLists.txt found; in the installed
# package those would point into this machine (or into a cross sysroot), so
# the exported interface names imported targets that mtanConfig.cmake defines
# by searching the consumer's own library path.
get_target_property(mtan_runtime_iface mtan_runtime INTERFACE_LINK_LIBRARIES)
set(mtan_runtime_iface_new "")
foreach(item IN LISTS mtan_runtime_iface)
  if(MTAN_WITH_XNNPACK AND item STREQUAL XNNPACK_LIBRARY)
    list(APPEND mtan_runtime_iface_new "$<BUILD_INTERFACE:${item}>" "$<INSTALL_INTERFACE:mtan::XNNPACK>")
  elseif(MTAN_WITH_XNNPACK AND item STREQUAL PTHREADPOOL_LIBRARY)
    list(APPEND mtan_runtime_iface_new "$<BUILD_INTERFACE:${item}>" "$<INSTALL_INTERFACE:mtan::pthreadpool>")
  else()
    list(APPEND mtan_runtime_iface_new "${item}")
  endif()
endforeach()
set_property(TARGET mtan_runtime PROPERTY INTERFACE_LINK_LIBRARIES "${mtan_runtime_iface_new}")
set_target_properties(mtan_runtime PROPERTIES EXPORT_NAME runtime)

install(TARGETS mtan_runtime EXPORT mtanTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/runtime/include/mtan/mtan.h
              ${PROJECT_SOURCE_DIR}/runtime/include/mtan/mtan_debug.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mtan COMPONENT runtime)
install(EXPORT mtanTargets NAMESPACE mtan:: FILE mtanTargets.cmake
        DESTINATION ${MTAN_INSTALL_CMAKEDIR} COMPONENT runtime)

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/cmake/mtanConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/mtanConfig.cmake
  INSTALL_DESTINATION ${MTAN_INSTALL_CMAKEDIR})
# A 1.x app works with any later 1.y runtime (the C API only grows within a
# major version).
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/mtanConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mtanConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/mtanConfigVersion.cmake
        DESTINATION ${MTAN_INSTALL_CMAKEDIR} COMPONENT runtime)

# pkg-config. A static libmtan needs its dependencies on the link line of
# every program; a shared one carries them itself.
if(MTAN_WITH_XNNPACK)
  set(mtan_pc_deps "-lXNNPACK -lpthreadpool -lm")
else()
  set(mtan_pc_deps "-lm")
endif()
get_target_property(mtan_runtime_type mtan_runtime TYPE)
if(mtan_runtime_type STREQUAL "STATIC_LIBRARY")
  set(MTAN_PC_LIBS "-lmtan ${mtan_pc_deps}")
  set(MTAN_PC_LIBS_PRIVATE "")
else()
  set(MTAN_PC_LIBS "-lmtan")
  set(MTAN_PC_LIBS_PRIVATE "${mtan_pc_deps}")
endif()
# Relocatable: the prefix is found from where the .pc file lies.
file(RELATIVE_PATH MTAN_PC_UP /mtan_prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /mtan_prefix)
string(REGEX REPLACE "/$" "" MTAN_PC_UP "${MTAN_PC_UP}")
string(REGEX REPLACE "/$" "" MTAN_PC_UP "${MTAN_PC_UP}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/cmake/mtan.pc.in ${CMAKE_CURRENT_BINARY_DIR}/mtan.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mtan.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT runtime)

# The tools this build made (each is optional: it may not be in the tree).
foreach(tool mtan-convert mtan-eval mtan-bench mtan-inspect mtan-train mtan-data)
  if(TARGET ${tool})
    install(TARGETS ${tool} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
  endif()
endforeach()
