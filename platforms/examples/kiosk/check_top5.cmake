# ctest helper: runs the kiosk on DIR/demo.mtan + DIR/candidates.csv and
# compares the printed products, in order, with DIR/expected_top5.txt (the
# host's ranking). Scores are not compared here: ARM XNNPACK may differ from
# x86 by one int8 step, which the golden-case tolerance covers elsewhere.
execute_process(COMMAND ${EMULATOR} ${KIOSK} ${DIR}/demo.mtan ${DIR}/candidates.csv
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "kiosk output:\n${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "kiosk exited with ${rc}")
endif()
string(REGEX MATCHALL "[0-9]+\t[^\t\n]+\t" rows "${out}")
set(got "")
foreach(r IN LISTS rows)
  string(REGEX REPLACE "^[0-9]+\t([^\t\n]+)\t$" "\\1" p "${r}")
  list(APPEND got "${p}")
endforeach()
file(STRINGS ${DIR}/expected_top5.txt want)
if(NOT got STREQUAL want)
  message(FATAL_ERROR "top 5 differ:\n  got:      ${got}\n  expected: ${want}")
endif()
message(STATUS "top 5 as expected: ${got}")
