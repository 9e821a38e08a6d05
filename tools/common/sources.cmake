# Host sources added to the mtan_host library by tools/common/CMakeLists.txt:
#   include(${CMAKE_CURRENT_LIST_DIR}/sources.cmake)
#   target_sources(mtan_host PRIVATE ${MTAN_HOST_EXTRA_SOURCES})
#   target_link_libraries(mtan_host PRIVATE ${MTAN_HOST_EXTRA_LIBS})
find_package(nlohmann_json REQUIRED)
set(MTAN_HOST_EXTRA_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/dataset.cc
    ${CMAKE_CURRENT_LIST_DIR}/metrics.cc)
set(MTAN_HOST_EXTRA_LIBS nlohmann_json::nlohmann_json)
list(APPEND MTAN_HOST_EXTRA_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/calibrate.cc
    ${CMAKE_CURRENT_LIST_DIR}/evaluate.cc)
