# Checks that code built against eqx::kernels compiles no primitive's rules:
# no primitive's vtable may be defined in its object files (the vtable pulls
# in every rule of its class; see include/eqx/core/config.hpp). Only
# elementwise_kernel's primitive, a template on the user's own function, is
# kept inline on purpose.
#   cmake -DNM=nm "-DOBJECTS=a.o;b.o" -P rules_compiled_once.cmake
cmake_minimum_required(VERSION 3.20)

foreach(_v NM OBJECTS)
  if(NOT DEFINED ${_v} OR "${${_v}}" STREQUAL "")
    message(FATAL_ERROR "rules_compiled_once: -D${_v}=... is required")
  endif()
endforeach()

execute_process(COMMAND "${NM}" -C --defined-only ${OBJECTS}
  RESULT_VARIABLE _rc OUTPUT_VARIABLE _symbols ERROR_VARIABLE _err)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "rules_compiled_once: ${NM} failed (exit ${_rc}): ${_err}")
endif()

string(REPLACE "\n" ";" _vtables "${_symbols}")
list(FILTER _vtables INCLUDE REGEX " vtable for eqx::.*Prim(<.*>)?$")
list(FILTER _vtables EXCLUDE REGEX "::ElementwiseKernelPrim<.*>$")
list(TRANSFORM _vtables REPLACE "^.* vtable for " "")
if(_vtables)
  list(JOIN _vtables "\n  " _list)
  message(FATAL_ERROR "rules_compiled_once: these primitives' rules are compiled in user code, although it "
                      "links eqx::kernels:\n  ${_list}\nGive each class a virtual member defined out of line "
                      "under its family's `#if EQX_KERNELS_HERE(FAMILY)` (its key function), or, for a class "
                      "template, an EQX_INSTANTIATION(FAMILY) line (its family's list of primitives).")
endif()
list(LENGTH OBJECTS _n)
message(STATUS "rules_compiled_once: no primitive rules in ${_n} object file(s)")
