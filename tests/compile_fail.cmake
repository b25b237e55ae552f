# Compiles SOURCE, which must fail, and checks that the compiler's output
# contains the text after "// EXPECT: " on its first line.
#   cmake -DCXX=... -DSOURCE=... -DFLAGS="..." -P compile_fail.cmake
file(STRINGS "${SOURCE}" first LIMIT_COUNT 1)
string(REGEX REPLACE "^// EXPECT: " "" expected "${first}")
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
execute_process(COMMAND "${CXX}" ${flags} -fsyntax-only "${SOURCE}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
string(FIND "${out}${err}" "${expected}" pos)
if(pos EQUAL -1)
  message(FATAL_ERROR "${SOURCE} failed to compile without the expected message '${expected}':\n${err}")
endif()
message(STATUS "${SOURCE}: rejected with '${expected}'")
