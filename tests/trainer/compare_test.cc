#include "compare.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "rng.h"

using namespace mtan::trainer;
namespace host = mtan::host;

TEST_SUITE("compare") {

TEST_CASE("seed means and paired bootstrap SEs") {
  host::Spec spec;
  std::string err;
  REQUIRE(host::ParseSpec(R"({"tasks": [{"name": "y", "kind": "binary"}]})", "spec", &spec, &err));
  // 2000 rows; "good" scores see the label through noise, "bad" are noise.
  const int n = 2000;
  host::Rng rng(5);
  host::Dataset test;
  test.rows = n;
  test.labels.resize(1);
  std::vector<float> good(n), bad(n);
  for (int i = 0; i < n; ++i) {
    const float y = rng.Bernoulli(0.3) ? 1.0f : 0.0f;
    test.labels[0].value.push_back(y);
    test.labels[0].observed.push_back(1);
    good[i] = static_cast<float>(y + rng.Normal());
    bad[i] = static_cast<float>(rng.Normal());
  }
  test.labels[0].observed_rows = n;
  const std::vector<PredictionGroup> groups = {
      {"base", {{bad}, {bad}}}, {"same", {{bad}}}, {"better", {{good}, {good}}}};
  const auto out = CompareGroups(spec, test, groups, 0, 50, 1);
  const auto& same = out["groups"]["same"]["y"];
  CHECK(same["diff_vs_baseline"].get<double>() == doctest::Approx(0.0));
  CHECK(same["diff_se"].get<double>() == doctest::Approx(0.0));
  const auto& better = out["groups"]["better"]["y"];
  CHECK(better["mean"].get<double>() > 0.7);
  CHECK(better["seed_std"].get<double>() == doctest::Approx(0.0));
  const double diff = better["diff_vs_baseline"].get<double>();
  const double se = better["diff_se"].get<double>();
  CHECK(diff > 0.15);
  CHECK(se > 0.003);  // about sqrt(AUC variance) at 2000 rows: ~0.015
  CHECK(se < 0.05);
}

TEST_CASE("reads prediction files and names bad ones") {
  host::Spec spec;
  std::string err;
  REQUIRE(host::ParseSpec(R"({"tasks": [{"name": "y", "kind": "binary"},
      {"name": "c", "kind": "multiclass", "classes": 2}]})", "spec", &spec, &err));
  const auto path = std::filesystem::temp_directory_path() / "mtan_compare_pred.csv";
  std::ofstream(path) << "y,c_0,c_1\n0.25,0.5,0.5\n0.75,0.125,0.875\n";
  std::vector<std::vector<float>> p;
  REQUIRE_MESSAGE(ReadPredictions(path.string(), spec, 2, &p, &err), err);
  CHECK(p[0] == std::vector<float>{0.25f, 0.75f});
  CHECK(p[1] == std::vector<float>{0.5f, 0.5f, 0.125f, 0.875f});
  CHECK_FALSE(ReadPredictions(path.string(), spec, 3, &p, &err));
  CHECK(err.find("mtan_compare_pred.csv") != std::string::npos);
  std::ofstream(path) << "y,c_0,c_1\n0.25,0.5\n";
  CHECK_FALSE(ReadPredictions(path.string(), spec, 1, &p, &err));
  CHECK(err.find(":2:") != std::string::npos);
  std::filesystem::remove(path);
}

}  // TEST_SUITE
