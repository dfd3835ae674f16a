# `make install PREFIX=...`: the C API's header, its C++ wrapper, the custom-op ABI (custom_op.h), libkiln.so
# (versioned SONAME), libkiln_rt.so (the same C API for engine plans only, without protobuf or libonnx), the kiln CLI, a CMake package (find_package(kiln) gives the target kiln::kiln) and a pkg-config
# file (pkg-config --cflags --libs kiln).
include(CMakePackageConfigHelpers)

set_target_properties(kiln_shared PROPERTIES EXPORT_NAME kiln)
install(TARGETS kiln_shared EXPORT kilnTargets
        LIBRARY DESTINATION lib)
install(FILES ${PROJECT_SOURCE_DIR}/include/kiln/kiln_c.h ${PROJECT_SOURCE_DIR}/include/kiln/kiln_tasks.h
              ${PROJECT_SOURCE_DIR}/include/kiln/kiln.hpp
              ${PROJECT_SOURCE_DIR}/include/kiln/custom_op.h
        DESTINATION include/kiln)
install(TARGETS kiln RUNTIME DESTINATION bin)
# libkiln_rt.so: the C API for applications that ship engine plans (no protobuf, no libonnx).
install(TARGETS kiln_rt_shared LIBRARY DESTINATION lib)

set(KILN_CMAKE_DIR lib/cmake/kiln)
install(EXPORT kilnTargets NAMESPACE kiln:: FILE kilnTargets.cmake DESTINATION ${KILN_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kilnConfig.cmake.in ${PROJECT_BINARY_DIR}/kilnConfig.cmake
                              INSTALL_DESTINATION ${KILN_CMAKE_DIR})
# Before 1.0 a minor version may change the ABI (the SONAME follows the major version, 0): same minor only.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake VERSION ${PROJECT_VERSION}
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/kilnConfig.cmake ${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
        DESTINATION ${KILN_CMAKE_DIR})

configure_file(${PROJECT_SOURCE_DIR}/cmake/kiln.pc.in ${PROJECT_BINARY_DIR}/kiln.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/kiln.pc DESTINATION lib/pkgconfig)
