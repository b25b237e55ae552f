# consumer.find_package: install eqx from the main build tree into a private
# prefix, then build a project that does find_package(eqx REQUIRED).
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")

set(_prefix "${WORK_DIR}/find_package-prefix")
file(REMOVE_RECURSE "${_prefix}")
eqx_consumer_step(install
  "${CMAKE_COMMAND}" --install "${EQX_BINARY_DIR}" --prefix "${_prefix}")
if(NOT EXISTS "${_prefix}/include/eqx")
  message(FATAL_ERROR "[consumer] install did not produce ${_prefix}/include/eqx")
endif()

eqx_consumer_build_and_run("${WORK_DIR}/find_package-build"
  "-DCMAKE_PREFIX_PATH=${_prefix}"
  "-DEQX_EXPECT_PREFIX=${_prefix}")
