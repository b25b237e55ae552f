# Runs the fault program under mpirun (2 ranks) and checks that the job
# ended, non-zero, with rank 1's message printed by rank 1 and by rank 0.
#   cmake -DMPIRUN=... -DPROGRAM=... -P fault_check.cmake
execute_process(COMMAND "${MPIRUN}" --oversubscribe -np 2 "${PROGRAM}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
set(all "${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "the job exited with 0, but rank 1 threw:\n${all}")
endif()
foreach(line "eqx::dist: rank 1 of 2 stopped: bad batch on rank 1"
             "eqx::dist: rank 0 of 2 stopping: eqx::dist: rank 1 of 2 stopped: bad batch on rank 1")
  string(FIND "${all}" "${line}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "missing '${line}' in the job's output:\n${all}")
  endif()
endforeach()
message(STATUS "the job stopped with rank 1's message on both ranks (exit code ${rc})")
