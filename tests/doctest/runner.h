// The doctest runner every test binary of tests/ uses. It is doctest's own
// runner plus one rule: a run that executes fewer test cases than a
// minimum fails. doctest exits 0 when its filters match nothing, so a
// renamed TEST_SUITE or a dropped source file would otherwise turn a ctest
// entry green while it tests nothing.
//
//   --min-cases=N   fail unless at least N test cases ran (default 1);
//                   ctest entries pass the count each one is known to have
//                   (tests/CMakeLists.txt, mtan_add_doctest)
//
// Queries (--help, --version, --count, --list-test-cases, ...) are not runs
// and are never failed by it.
#pragma once

namespace mtan::test {

// Runs the registered doctest cases with argv's options; returns the exit
// code. argv may hold --min-cases=N anywhere (it is removed before doctest
// sees the options).
int RunDoctest(int argc, char** argv);

}  // namespace mtan::test
