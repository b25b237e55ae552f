# Shared helpers for the consumer.* tests (run with cmake -P).
# Inputs (-D): EQX_SOURCE_DIR EQX_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR
#              GENERATOR MAKE_PROGRAM CXX_COMPILER [BUILD_TYPE]
# The consumers check packaging, not speed: by default they build with an empty
# CMAKE_BUILD_TYPE (no -O, no -g), the cheapest way to compile <eqx/eqx.hpp>.

foreach(_v EQX_SOURCE_DIR EQX_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR)
  if(NOT DEFINED ${_v} OR "${${_v}}" STREQUAL "")
    message(FATAL_ERROR "consumer test: -D${_v}=... is required")
  endif()
endforeach()

# eqx_consumer_step(<name> <command...>): run a command, print its output, and
# fail loudly (with the output) if it does not exit 0.
function(eqx_consumer_step name)
  list(JOIN ARGN " " _cmdline)
  message(STATUS "[consumer] ${name}: ${_cmdline}")
  execute_process(
    COMMAND ${ARGN}
    RESULT_VARIABLE _rc
    OUTPUT_VARIABLE _out
    ERROR_VARIABLE _out)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "[consumer] step '${name}' FAILED (exit ${_rc}):\n${_out}")
  endif()
  message(STATUS "[consumer] ${name}: ok\n${_out}")
  set(EQX_STEP_OUTPUT "${_out}" PARENT_SCOPE)
endfunction()

# Configure, build and run the consumer project in <build_dir> with extra
# configure arguments.
function(eqx_consumer_build_and_run build_dir)
  file(REMOVE_RECURSE "${build_dir}")
  set(_gen_args -G "${GENERATOR}")
  if(NOT "${MAKE_PROGRAM}" STREQUAL "")
    list(APPEND _gen_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
  endif()
  if(NOT "${CXX_COMPILER}" STREQUAL "")
    list(APPEND _gen_args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
  endif()
  eqx_consumer_step(configure
    "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${build_dir}" ${_gen_args}
    "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}" ${ARGN})
  eqx_consumer_step(build "${CMAKE_COMMAND}" --build "${build_dir}")
  eqx_consumer_step(run "${build_dir}/consumer")
  string(STRIP "${EQX_STEP_OUTPUT}" _printed)
  if(NOT _printed STREQUAL "12")
    message(FATAL_ERROR "[consumer] expected the consumer to print 12, it printed '${_printed}'")
  endif()
  if(EXISTS "${build_dir}/consumer_implementation")
    eqx_consumer_step(run_implementation "${build_dir}/consumer_implementation")
    string(STRIP "${EQX_STEP_OUTPUT}" _printed)
    if(NOT _printed STREQUAL "kernels ok")
      message(FATAL_ERROR "[consumer] expected consumer_implementation to print 'kernels ok', it printed '${_printed}'")
    endif()
  endif()
  if(EXISTS "${build_dir}/consumer_data")
    eqx_consumer_step(run_data "${build_dir}/consumer_data")
  endif()
endfunction()
