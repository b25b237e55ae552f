# ctest's run of the demo (examples/fashion_mnist.cpp) on a slice of
# Fashion-MNIST: it must learn (test accuracy well above the 10% of chance,
# checked by the demo's --min-accuracy), reload its saved model identically
# (the demo's own exit code), and leave the model, both CSVs and a valid PNG.
# Usage: cmake -DDEMO=<binary> -DOUT=<dir> -P fashion_mnist_check.cmake

file(REMOVE_RECURSE "${OUT}")
execute_process(
  COMMAND "${DEMO}" --epochs 1 --train-size 6400 --test-size 2000 --min-accuracy 0.5 --out "${OUT}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the demo exited with ${rc}")
endif()

foreach(f fashion_mnist_cnn.eqx loss.csv accuracy.csv curves.png)
  if(NOT EXISTS "${OUT}/${f}")
    message(FATAL_ERROR "the demo did not write ${OUT}/${f}")
  endif()
endforeach()

# The saved model starts with its JSON hyperparameter line.
file(STRINGS "${OUT}/fashion_mnist_cnn.eqx" first_line LIMIT_COUNT 1)
if(NOT first_line MATCHES "^\\{\"classes\":10,.*\"image_size\":28")
  message(FATAL_ERROR "unexpected first line of the saved model: ${first_line}")
endif()

# A PNG: the 8-byte signature, then an IHDR chunk.
file(READ "${OUT}/curves.png" head LIMIT 16 HEX)
if(NOT head STREQUAL "89504e470d0a1a0a0000000d49484452")
  message(FATAL_ERROR "${OUT}/curves.png is not a PNG (first 16 bytes: ${head})")
endif()

# One accuracy row after the header, one loss row per 50 steps (100 steps).
file(STRINGS "${OUT}/accuracy.csv" rows)
list(LENGTH rows n)
if(NOT n EQUAL 2)
  message(FATAL_ERROR "accuracy.csv has ${n} lines, expected 2: ${rows}")
endif()
file(STRINGS "${OUT}/loss.csv" rows)
list(LENGTH rows n)
if(NOT n EQUAL 3)
  message(FATAL_ERROR "loss.csv has ${n} lines, expected 3: ${rows}")
endif()
message(STATUS "demo: learned, reloaded identically, wrote the model, CSVs and PNG")
