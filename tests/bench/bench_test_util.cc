#include "bench_test_util.h"

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "bench.h"
#include "doctest/doctest.h"
#include "model_io.h"
#include "test_models.h"

namespace mtan::bench::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "mtan-bench-test-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::pair<std::string, std::string> WriteTinyModels(const TempDir& dir, unsigned seed) {
  fb::ModelT f = mtan::test::FloatModel(seed);
  fb::ModelT q = mtan::test::Int8Model(seed);
  const std::string fp = dir.File("tiny.float32.mtan"), qp = dir.File("tiny.int8.mtan");
  std::string error;
  REQUIRE_MESSAGE(host::WriteFileAtomic(fp, host::FinishModel(f, 16), &error), error);
  REQUIRE_MESSAGE(host::WriteFileAtomic(qp, host::FinishModel(q, 16), &error), error);
  return {fp, qp};
}

Outcome RunBench(const std::vector<std::string>& args) {
  std::vector<const char*> argv = {"mtan-bench"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  Outcome o;
  o.code = BenchMain(static_cast<int>(argv.size()), argv.data(), out, err);
  o.out = out.str();
  o.err = err.str();
  return o;
}

}  // namespace mtan::bench::test
