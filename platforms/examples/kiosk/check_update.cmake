# ctest helper: the kiosk's hot swap refuses every bad update and keeps
# ranking with the old model. For each file in UPDATES (in DIR), runs
#   kiosk DIR/demo.mtan DIR/candidates.csv --update DIR/<file>
# and checks the exit status, "update rejected" (or, for GOOD, "switched")
# on stderr with the reason, and the host's top 5 (DIR/expected_top5.txt).
# A candidates file with a line longer than the kiosk's line buffer must be an
# error, not two candidates.
file(STRINGS ${DIR}/expected_top5.txt want)

function(run_kiosk out_var err_var rc_var)
  execute_process(COMMAND ${EMULATOR} ${KIOSK} ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(${out_var} "${out}" PARENT_SCOPE)
  set(${err_var} "${err}" PARENT_SCOPE)
  set(${rc_var} "${rc}" PARENT_SCOPE)
endfunction()

function(top5 out result_var)
  string(REGEX MATCHALL "[0-9]+\t[^\t\n]+\t" rows "${out}")
  set(got "")
  foreach(r IN LISTS rows)
    string(REGEX REPLACE "^[0-9]+\t([^\t\n]+)\t$" "\\1" p "${r}")
    list(APPEND got "${p}")
  endforeach()
  set(${result_var} "${got}" PARENT_SCOPE)
endfunction()

# file:expected-reason pairs
set(cases
  "corrupted.mtan:MTAN_ERROR_CHECKSUM"
  "renamed-task.mtan:has no task 'purchase'"
  "renamed-input.mtan:no column for model input"
  "duplicate-input.mtan:MTAN_ERROR_NAME"
  "negated-head.mtan:MTAN_ERROR_SELF_TEST"
  "huge-arena.mtan:MTAN_ERROR_LIMIT")
foreach(c IN LISTS cases)
  string(REGEX REPLACE "^([^:]+):(.*)$" "\\1" f "${c}")
  string(REGEX REPLACE "^([^:]+):(.*)$" "\\2" reason "${c}")
  run_kiosk(out err rc ${DIR}/demo.mtan ${DIR}/candidates.csv --update ${DIR}/${f})
  message(STATUS "--update ${f}: exit ${rc}\n${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "--update ${f}: the kiosk exited with ${rc} instead of serving on")
  endif()
  string(FIND "${err}" "update rejected" rejected)
  string(FIND "${err}" "${reason}" why)
  if(rejected LESS 0 OR why LESS 0)
    message(FATAL_ERROR "--update ${f}: expected 'update rejected' because of '${reason}'")
  endif()
  top5("${out}" got)
  if(NOT got STREQUAL want)
    message(FATAL_ERROR "--update ${f}: top 5 differ:\n  got:      ${got}\n  expected: ${want}")
  endif()
endforeach()

# A good update is proven and swapped in (the same model again: same top 5).
run_kiosk(out err rc ${DIR}/demo.mtan ${DIR}/candidates.csv --update ${DIR}/demo.mtan)
string(FIND "${err}" "switched to" switched)
top5("${out}" got)
if(NOT rc EQUAL 0 OR switched LESS 0 OR NOT got STREQUAL want)
  message(FATAL_ERROR "a good update was not swapped in (exit ${rc}):\n${err}")
endif()

# A line longer than the kiosk's buffer is an error, not two candidates.
run_kiosk(out err rc ${DIR}/demo.mtan ${DIR}/candidates-long-line.csv)
string(FIND "${err}" "line longer than" long)
if(rc EQUAL 0 OR long LESS 0)
  message(FATAL_ERROR "a 20 KB candidate line was not refused (exit ${rc}):\n${out}${err}")
endif()
message(STATUS "every bad update rejected, the good one swapped in, the long line refused")
