#include "synth.h"

#include <cmath>
#include <filesystem>
#include <set>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "dataset.h"

using namespace mtan::trainer;

TEST_SUITE("synth") {

TEST_CASE("is deterministic and seeds differ") {
  SynthOptions o;
  o.rows = 3000;
  SynthData a, b, c;
  std::string err;
  REQUIRE(GenerateSynth(o, &a, &err));
  REQUIRE(GenerateSynth(o, &b, &err));
  o.seed = 2;
  REQUIRE(GenerateSynth(o, &c, &err));
  CHECK(a.x == b.x);
  CHECK(a.click == b.click);
  CHECK(a.category == b.category);
  CHECK(a.p_purchase == b.p_purchase);
  CHECK(a.x != c.x);
  CHECK(SynthCeilingJson(a) == SynthCeilingJson(b));
}

TEST_CASE("rows, columns, splits and labels are as specified") {
  SynthOptions o;
  o.rows = 4000;
  SynthData d;
  std::string err;
  REQUIRE(GenerateSynth(o, &d, &err));
  const size_t nf = d.features.size();
  CHECK(nf >= 32);
  CHECK(nf <= 64);
  CHECK(std::set<std::string>(d.features.begin(), d.features.end()).size() == nf);
  CHECK(d.x.size() == 4000 * nf);
  CHECK(d.train_end == 2800);
  CHECK(d.val_end == 3200);
  int64_t clicks = 0, purchases = 0;
  for (int64_t r = 0; r < d.rows; ++r) {
    CHECK(d.purchase[r] <= d.click[r]);              // purchase only after a click
    CHECK(std::isnan(d.spend[r]) == (d.purchase[r] == 0));  // spend only for purchases
    clicks += d.click[r] > 0;
    purchases += d.purchase[r] > 0;
    double s = 0;
    for (int k = 0; k < kSynthClasses; ++k) s += d.p_category[r * kSynthClasses + k];
    CHECK(s == doctest::Approx(1.0).epsilon(1e-5));
  }
  const double ctr = static_cast<double>(clicks) / d.rows;
  CHECK(ctr > 0.05);
  CHECK(ctr < 0.11);
  CHECK(purchases > 0);
  // Deliberately mismatched scales: prices in the tens, flags 0/1, noise 1e4.
  double max_abs = 0;
  for (int64_t r = 0; r < d.rows; ++r) max_abs = std::max(max_abs, std::fabs(double(d.x[r * nf + nf - 4])));
  CHECK(max_abs > 1e4);
}

TEST_CASE("ceilings are sane and files read back with the spec") {
  SynthOptions o;
  o.rows = 20000;
  SynthData d;
  std::string err;
  REQUIRE(GenerateSynth(o, &d, &err));
  const auto c = nlohmann::json::parse(SynthCeilingJson(d));
  const auto& t = c["test"];
  CHECK(t["click"]["auc"].get<double>() > 0.7);
  CHECK(t["click"]["auc"].get<double>() < 0.99);
  CHECK(t["purchase"]["auc"].get<double>() > 0.7);
  const auto& counts = c["splits"]["test"]["category_counts"];
  int64_t majority = 0, total = 0;
  for (const auto& n : counts) {
    majority = std::max<int64_t>(majority, n.get<int64_t>());
    total += n.get<int64_t>();
  }
  CHECK(t["category"]["accuracy"].get<double>() > static_cast<double>(majority) / total);
  CHECK(t["spend"]["nmse"].get<double>() > 0.05);
  CHECK(t["spend"]["nmse"].get<double>() < 0.9);

  const auto dir = std::filesystem::temp_directory_path() / "mtan_synth_test";
  std::filesystem::remove_all(dir);
  REQUIRE_MESSAGE(WriteSynth(d, dir.string(), &err), err);
  mtan::host::Spec spec;
  REQUIRE_MESSAGE(mtan::host::LoadSpec((dir / "tasks.json").string(), &spec, &err), err);
  mtan::host::Dataset test;
  REQUIRE_MESSAGE(mtan::host::LoadCsv((dir / "test.csv").string(), spec, &test, &err), err);
  CHECK(test.rows == d.rows - d.val_end);
  CHECK(test.features == d.features);
  const size_t nf = d.features.size();
  CHECK(std::equal(test.x.begin(), test.x.end(), d.x.begin() + d.val_end * nf));  // exact floats
  CHECK(test.labels[3].observed_rows == c["splits"]["test"]["spend_rows"].get<int64_t>());
  CHECK(test.labels[2].value[5] == d.category[d.val_end + 5]);
  std::filesystem::remove_all(dir);
}

TEST_CASE("bad options are refused") {
  SynthOptions o;
  o.rows = 10;
  SynthData d;
  std::string err;
  CHECK_FALSE(GenerateSynth(o, &d, &err));
  o.rows = 1000;
  o.correlation = 1.5;
  CHECK_FALSE(GenerateSynth(o, &d, &err));
  CHECK(err.find("correlation") != std::string::npos);
}

}  // TEST_SUITE
