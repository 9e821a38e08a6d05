// platforms_tests: the doctest suites of tests/platforms, plus two commands
// that platforms/test-arm.sh uses to compare a target with the build host:
//   platforms_tests demo DIR      writes the demo model and host outputs (host)
//   platforms_tests compare DIR   checks this machine against them (target)
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "demo.h"
#include "mtan/mtan.h"
#include "runner.h"

int main(int argc, char** argv) {
  if (argc == 3 && (std::strcmp(argv[1], "demo") == 0 || std::strcmp(argv[1], "compare") == 0)) {
    const bool demo = std::strcmp(argv[1], "demo") == 0;
    std::string error;
    bool ok = false;
    try {
      ok = mtan_init() == MTAN_OK || (error = mtan_last_error(), false);
      if (ok) ok = demo ? mtan::platform::MakeDemo(argv[2], &error)
                        : mtan::platform::CompareDemo(argv[2], &error);
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!ok) {
      std::fprintf(stderr, "platforms_tests %s: %s\n", argv[1], error.c_str());
      return 1;
    }
    std::printf("platforms_tests %s %s: ok\n", argv[1], argv[2]);
    return 0;
  }
  return mtan::test::RunDoctest(argc, argv);
}
