#include "synth.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "dataset.h"
#include "mtan/mtan.h"

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

TEST_CASE("id columns: deterministic, in range, Zipf items, the dense part unchanged, a higher ceiling") {
  SynthOptions o;
  o.rows = 20000;
  o.items = 2000;
  SynthData plain, a, b;
  std::string err;
  REQUIRE(GenerateSynth(o, &plain, &err));
  o.categorical = true;
  REQUIRE(GenerateSynth(o, &a, &err));
  REQUIRE(GenerateSynth(o, &b, &err));
  CHECK(a.item == b.item);
  CHECK(a.recent == b.recent);
  CHECK(a.click == b.click);
  CHECK(plain.item.empty());
  CHECK(a.x == plain.x);  // the dense columns are the same draw
  CHECK(a.click != plain.click);  // the labels now depend on the ids
  REQUIRE(a.item.size() == static_cast<size_t>(o.rows));
  REQUIRE(a.recent_offsets.size() == static_cast<size_t>(o.rows) + 1);
  std::vector<int64_t> count(o.items, 0);
  for (int64_t r = 0; r < o.rows; ++r) {
    CHECK(a.item[r] >= 0);
    CHECK(a.item[r] < o.items);
    CHECK(a.brand[r] < kSynthBrands);
    CHECK(a.store[r] < kSynthStores);
    CHECK(a.segment[r] < kSynthSegments);
    CHECK(a.recent_offsets[r + 1] - a.recent_offsets[r] <= static_cast<uint32_t>(kSynthMaxRecent));
    ++count[a.item[r]];
  }
  std::vector<int64_t> sorted = count;
  std::sort(sorted.rbegin(), sorted.rend());
  CHECK(sorted[0] > 50 * std::max<int64_t>(1, sorted[o.items / 2]));  // a head and a long tail
  // The ids carry signal: the ceiling rises well above the dense-only one.
  const auto cp = nlohmann::json::parse(SynthCeilingJson(plain));
  const auto ci = nlohmann::json::parse(SynthCeilingJson(a));
  CHECK(ci["test"]["click"]["auc"].get<double>() > cp["test"]["click"]["auc"].get<double>() + 0.02);
  CHECK(ci["test"]["purchase"]["auc"].get<double>() > cp["test"]["purchase"]["auc"].get<double>() + 0.01);
  CHECK(ci["test"]["category"]["accuracy"].get<double>() > cp["test"]["category"]["accuracy"].get<double>());
  CHECK(ci["ids"]["items"] == o.items);
  // Files: the spec lists the id features, the dense spec only the dense
  // ones, and the CSV reads back with the ids as written.
  const auto dir = std::filesystem::temp_directory_path() / "mtan_synth_ids_test";
  std::filesystem::remove_all(dir);
  REQUIRE_MESSAGE(WriteSynth(a, dir.string(), &err), err);
  mtan::host::Spec spec, dense;
  REQUIRE_MESSAGE(mtan::host::LoadSpec((dir / "tasks.json").string(), &spec, &err), err);
  REQUIRE_MESSAGE(mtan::host::LoadSpec((dir / "tasks_dense.json").string(), &dense, &err), err);
  CHECK(spec.features == a.features);
  CHECK(dense.features == a.features);
  CHECK(dense.id_features.empty());
  REQUIRE(spec.id_features.size() == 5);
  CHECK(spec.id_features[0].table == spec.id_features[4].table);  // item_id and recent_items
  CHECK(spec.id_features[1].string_ids);
  mtan::host::Dataset test;
  REQUIRE_MESSAGE(mtan::host::LoadCsv((dir / "test.csv").string(), spec, &test, &err), err);
  const int64_t r = 7, row = a.val_end + r;
  CHECK(test.ids[0].ids[r] == 1000000 + a.item[row]);
  const std::string brand = "brand-" + std::string(a.brand[row] < 1000 ? "0" : "") +
                            std::string(a.brand[row] < 100 ? "0" : "") + std::string(a.brand[row] < 10 ? "0" : "") +
                            std::to_string(a.brand[row]);
  CHECK(test.ids[1].ids[r] == mtan_hash_id(brand.data(), brand.size()));
  const uint32_t n = a.recent_offsets[row + 1] - a.recent_offsets[row];
  for (uint32_t k = 0; k < static_cast<uint32_t>(kSynthMaxRecent); ++k)
    CHECK(test.ids[4].ids[r * kSynthMaxRecent + k] ==
          (k < n ? 1000000 + a.recent[a.recent_offsets[row] + k] : -1));
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
  o.correlation = 0.5;
  o.categorical = true;
  o.items = 10;
  CHECK_FALSE(GenerateSynth(o, &d, &err));
  CHECK(err.find("items") != std::string::npos);
}

}  // TEST_SUITE
