#define DOCTEST_CONFIG_IMPLEMENT
#include "runner.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "doctest/doctest.h"

namespace {

// What the last run executed; set only by a run (never by a query).
bool g_ran = false;
unsigned g_cases = 0;

// A listener (it runs beside the console reporter) that records how many
// test cases passed the filters, i.e. ran.
struct CaseCounter : doctest::IReporter {
  explicit CaseCounter(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override {
    g_ran = true;
    g_cases = stats.numTestCasesPassingFilters;
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("mtan_case_counter", 1, CaseCounter);

}  // namespace

namespace mtan::test {

int RunDoctest(int argc, char** argv) {
  static const char kFlag[] = "--min-cases=";
  unsigned long min_cases = 1;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strncmp(argv[i], kFlag, sizeof(kFlag) - 1) == 0) {
      char* end = nullptr;
      min_cases = std::strtoul(argv[i] + sizeof(kFlag) - 1, &end, 10);
      if (end == nullptr || *end != '\0') {
        std::fprintf(stderr, "%s: bad %s\n", argv[0], argv[i]);
        return 2;
      }
      continue;
    }
    args.push_back(argv[i]);
  }
  doctest::Context context(static_cast<int>(args.size()), args.data());
  const int code = context.run();
  if (context.shouldExit() || !g_ran) return code;  // a query, not a run
  if (g_cases < min_cases) {
    std::fprintf(stderr,
                 "%s: FAIL: %u test case(s) ran, at least %lu expected: a filter (-ts / -tc) "
                 "that matches fewer cases than before (renamed suite?) or a lost source file\n",
                 argv[0], g_cases, min_cases);
    return code != 0 ? code : 1;
  }
  return code;
}

}  // namespace mtan::test
