# consumer.add_subdirectory: build a project that vendors eqx with
# add_subdirectory(); eqx's tests/examples/benchmarks must stay off. Its
# programs are header-only: one plain, one with its kernels compiled in a
# designated file (EQX_KERNELS_IMPLEMENTATION).
include("${CMAKE_CURRENT_LIST_DIR}/common.cmake")

eqx_consumer_build_and_run("${WORK_DIR}/add_subdirectory-build"
  "-DEQX_SOURCE_DIR=${EQX_SOURCE_DIR}")
