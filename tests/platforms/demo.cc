#include "demo.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "model_io.h"
#include "quantize.h"
#include "test_models.h"

namespace mtan::platform {
namespace {

constexpr uint32_t kSeed = 2024;
constexpr uint32_t kCalibrationRows = 512;
constexpr uint32_t kGoldenRows = 48;  // the golden set: also the kiosk's candidates
constexpr uint32_t kRowsPerCase = 16;
constexpr uint32_t kMaxBatch = 32;
constexpr int kFeatures = 10;

// RandomMtan's feature i is a price (i % 3 == 0), a 0/1 flag or a count.
const char* const kFeatureNames[kFeatures] = {
    "item_price",   "item_on_sale",  "item_views",    "shopper_avg_basket",
    "shopper_member", "shopper_visits", "item_rating_x10", "shopper_has_app",
    "item_stock",   "shopper_last_spend"};

bool WriteText(const std::string& path, const std::string& text, std::string* error) {
  return host::WriteFileAtomic(path, std::vector<uint8_t>(text.begin(), text.end()), error);
}

// %.9g round-trips every float exactly, so host and target read the same rows.
std::string FormatRows(const std::vector<float>& v, size_t per_row) {
  std::string s;
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v[i]));
    s += buf;
    s += (i + 1) % per_row == 0 ? "\n" : " ";
  }
  return s;
}

bool ReadRows(const std::string& path, size_t per_row, std::vector<float>* v, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = path + ": cannot open";
    return false;
  }
  v->clear();
  float x;
  while (in >> x) v->push_back(x);
  if (!in.eof() || v->empty() || v->size() % per_row != 0) {
    *error = path + ": not rows of " + std::to_string(per_row) + " numbers";
    return false;
  }
  return true;
}

// Row indices by score, highest first, the earlier row first on a tie: the
// order the kiosk prints.
std::vector<uint32_t> Ranking(const std::vector<float>& out, uint32_t rows, uint32_t per_row,
                              uint32_t offset) {
  std::vector<uint32_t> order(rows);
  for (uint32_t r = 0; r < rows; ++r) order[r] = r;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return out[a * per_row + offset] > out[b * per_row + offset];
  });
  return order;
}

uint32_t ArgMax(const float* p, uint32_t n) {
  uint32_t best = 0;
  for (uint32_t k = 1; k < n; ++k)
    if (p[k] > p[best]) best = k;
  return best;
}

std::string Name(uint32_t r) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "sku-%03u", r + 1);
  return buf;
}

// The demo's int8 model of `w`: quantized on min/max ranges of the
// calibration rows, golden cases over `rows` from the reference kernels,
// each with the converter's per-output tolerances.
bool Int8Demo(const host::MtanWeights& w, const std::vector<float>& rows, fb::ModelT* out,
              std::string* error) {
  fb::ModelT f = host::BuildFloatModel(w);

  std::vector<std::vector<float>> values;
  if (!host::CollectActivations(f, test::RandomRows(kSeed + 1, kCalibrationRows, kFeatures),
                                kCalibrationRows, &values, error))
    return false;
  std::vector<host::Range> ranges(values.size());
  for (size_t t = 0; t < values.size(); ++t)
    for (float v : values[t]) {
      ranges[t].min = std::min(ranges[t].min, v);
      ranges[t].max = std::max(ranges[t].max, v);
    }
  fb::ModelT q = host::QuantizeModel(f, ranges);

  // Golden cases: the reference kernels' outputs, each case with the
  // converter's tolerances for it.
  for (uint32_t r0 = 0; r0 < kGoldenRows; r0 += kRowsPerCase) {
    const std::vector<float> x(rows.begin() + r0 * kFeatures,
                               rows.begin() + (r0 + kRowsPerCase) * kFeatures);
    host::RuntimeModel ref;
    std::vector<float> y;
    if (ref.Load(host::FinishModel(q, kMaxBatch), kRowsPerCase, MTAN_BACKEND_REFERENCE, error) !=
            MTAN_OK ||
        ref.Run(x.data(), kRowsPerCase, MTAN_ALL_TASKS, &y, error) != MTAN_OK)
      return false;
    if (!host::AddGoldenCase(q, x, kRowsPerCase, y, host::GoldenTolerances(q, y.data(), kRowsPerCase),
                             error))
      return false;
  }
  *out = std::move(q);
  return true;
}

}  // namespace

bool MakeDemo(const std::string& dir, std::string* error) {
  host::MtanWeights w = test::RandomMtan(kSeed, kFeatures);
  w.feature_names.assign(kFeatureNames, kFeatureNames + kFeatures);
  w.tasks[0].name = "purchase";
  const std::vector<float> rows = test::RandomRows(kSeed + 2, kGoldenRows, kFeatures);
  fb::ModelT q;
  if (!Int8Demo(w, rows, &q, error)) return false;
  const std::vector<uint8_t> file = host::FinishModel(q, kMaxBatch);

  // This machine's outputs with its default backend.
  host::RuntimeModel rt;
  std::vector<float> out;
  if (rt.Load(file, 0, MTAN_BACKEND_DEFAULT, error) != MTAN_OK ||
      rt.Run(rows.data(), kGoldenRows, MTAN_ALL_TASKS, &out, error) != MTAN_OK)
    return false;
  if (mtan_self_test(rt.get()) != MTAN_OK) {
    *error = "the demo fails its own self-test on the host: " + host::RuntimeError(MTAN_ERROR_SELF_TEST);
    return false;
  }
  uint32_t per_row = 0;
  int32_t purchase = 0;
  mtan_task_info info{};
  mtan_output_size(rt.get(), MTAN_ALL_TASKS, &per_row);
  mtan_task_find(rt.get(), "purchase", &purchase);
  mtan_task_info_get(rt.get(), static_cast<uint32_t>(purchase), &info);

  std::string csv = "product", top5, labelled, header;
  for (const auto& n : w.feature_names) header += (header.empty() ? "" : ",") + n;
  csv += "," + header + "\n";
  labelled = header + ",purchase,category,spend\n";
  std::mt19937 rng(kSeed + 3);
  for (uint32_t r = 0; r < kGoldenRows; ++r) {
    std::string cells;
    char buf[32];
    for (int i = 0; i < kFeatures; ++i) {
      std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(rows[r * kFeatures + i]));
      cells += (i ? "," : "") + std::string(buf);
    }
    csv += Name(r) + "," + cells + "\n";
    // Labels drawn from the model's own outputs, so the metrics mean something.
    const float* o = &out[r * per_row];
    std::snprintf(buf, sizeof buf, ",%d,%u,%.4f",
                  std::bernoulli_distribution(o[0])(rng) ? 1 : 0, ArgMax(o + 1, 4),
                  static_cast<double>(std::max(0.0f, o[5])));
    labelled += cells + buf + "\n";
  }
  const auto order = Ranking(out, kGoldenRows, per_row, info.output_offset);
  for (int i = 0; i < 5; ++i) top5 += Name(order[i]) + "\n";

  const char* spec =
      "{\"features\": [\"item_price\", \"item_on_sale\", \"item_views\", \"shopper_avg_basket\",\n"
      "  \"shopper_member\", \"shopper_visits\", \"item_rating_x10\", \"shopper_has_app\",\n"
      "  \"item_stock\", \"shopper_last_spend\"],\n"
      " \"tasks\": [\n"
      "  {\"name\": \"purchase\", \"kind\": \"binary\", \"label\": \"purchase\"},\n"
      "  {\"name\": \"category\", \"kind\": \"multiclass\", \"label\": \"category\", \"classes\": 4},\n"
      "  {\"name\": \"spend\", \"kind\": \"regression\", \"label\": \"spend\", \"transform\": \"log1p\"}]}\n";

  // Updates the kiosk's hot swap must refuse (check_update.cmake), each
  // loading and self-testing unless said otherwise.
  std::vector<uint8_t> corrupted = file;
  corrupted[corrupted.size() / 2] ^= 0x01;
  host::MtanWeights renamed_task = w, renamed_input = w;
  renamed_task.tasks[0].name = "purchase_v2";  // the kiosk ranks by "purchase"
  renamed_input.feature_names[3] += "_v2";      // not a column of candidates.csv
  fb::ModelT q_task, q_input, q_negated;
  if (!Int8Demo(renamed_task, rows, &q_task, error) ||
      !Int8Demo(renamed_input, rows, &q_input, error) || !Int8Demo(w, rows, &q_negated, error))
    return false;
  test::NegateHead(q_negated, "purchase");  // p -> 1 - p; the golden cases keep p
  fb::ModelT q_duplicate;  // refused by the verifier: two inputs of one name
  if (!Int8Demo(w, rows, &q_duplicate, error)) return false;
  q_duplicate.inputs[3]->name = q_duplicate.inputs[0]->name;
  // Over MTAN_MAX_ARENA_BYTES in a 2.6 MB file: on armhf its size used to
  // wrap to 409 KB, and the kiosk crashed loading it.
  fb::ModelT huge = tiny::SharedWeightModel(4091, 262144);
  // A candidate line longer than the kiosk's 16 KB line buffer: the first
  // row's first feature with 20000 leading zeros (the same number).
  const size_t first_cell = csv.find('\n') + 1 + Name(0).size() + 1;
  const std::string long_line = csv.substr(0, first_cell) + std::string(20000, '0') + csv.substr(first_cell);

  return host::WriteFileAtomic(dir + "/demo.mtan", file, error) &&
         host::WriteFileAtomic(dir + "/corrupted.mtan", corrupted, error) &&
         host::WriteFileAtomic(dir + "/renamed-task.mtan", host::FinishModel(q_task, kMaxBatch), error) &&
         host::WriteFileAtomic(dir + "/renamed-input.mtan", host::FinishModel(q_input, kMaxBatch), error) &&
         host::WriteFileAtomic(dir + "/duplicate-input.mtan", host::FinishModel(q_duplicate, kMaxBatch), error) &&
         host::WriteFileAtomic(dir + "/negated-head.mtan", host::FinishModel(q_negated, kMaxBatch), error) &&
         host::WriteFileAtomic(dir + "/huge-arena.mtan", host::FinishModel(huge, 1), error) &&
         WriteText(dir + "/candidates-long-line.csv", long_line, error) &&
         WriteText(dir + "/rows.txt", FormatRows(rows, kFeatures), error) &&
         WriteText(dir + "/host_outputs.txt", FormatRows(out, per_row), error) &&
         WriteText(dir + "/candidates.csv", csv, error) &&
         WriteText(dir + "/expected_top5.txt", top5, error) &&
         WriteText(dir + "/labelled.csv", labelled, error) &&
         WriteText(dir + "/spec.json", spec, error);
}

bool CompareDemo(const std::string& dir, std::string* error) {
  std::vector<uint8_t> file;
  if (!host::ReadFile(dir + "/demo.mtan", &file, error)) return false;
  host::RuntimeModel rt;
  if (rt.Load(file, 0, MTAN_BACKEND_DEFAULT, error) != MTAN_OK) return false;
  mtan_status s = mtan_self_test(rt.get());
  if (s != MTAN_OK) {
    *error = "self-test: " + host::RuntimeError(s);
    return false;
  }
  uint32_t inputs = 0, per_row = 0, tasks = 0;
  mtan_input_count(rt.get(), &inputs);
  mtan_output_size(rt.get(), MTAN_ALL_TASKS, &per_row);
  mtan_task_count(rt.get(), &tasks);
  // The golden cases' tolerance of each output bounds its comparison with
  // the host (the largest over the cases).
  fb::ModelT m;
  if (!host::UnpackModel(host::ModelBytes(file), &m, error)) return false;
  std::vector<float> tol(per_row, 0.0f);
  for (const auto& g : m.golden)
    for (uint32_t k = 0; k < per_row; ++k)
      tol[k] = std::max(tol[k], g->tolerances.empty() ? g->tolerance : g->tolerances.at(k));
  std::vector<float> rows, want, got;
  if (!ReadRows(dir + "/rows.txt", inputs, &rows, error) ||
      !ReadRows(dir + "/host_outputs.txt", per_row, &want, error))
    return false;
  const uint32_t n = static_cast<uint32_t>(rows.size() / inputs);
  if (want.size() != static_cast<size_t>(n) * per_row) {
    *error = "host_outputs.txt has " + std::to_string(want.size() / per_row) + " rows, rows.txt " +
             std::to_string(n);
    return false;
  }
  if (rt.Run(rows.data(), n, MTAN_ALL_TASKS, &got, error) != MTAN_OK) return false;

  double max_diff = 0.0;
  int exact = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
    max_diff = std::max(max_diff, d);
    exact += d == 0.0;
    if (d > tol[i % per_row]) {
      std::ostringstream o;
      o << "row " << i / per_row << ", output " << i % per_row << ": " << got[i] << " here, "
        << want[i] << " on the host (tolerance " << tol[i % per_row] << ")";
      *error = o.str();
      return false;
    }
  }
  std::printf("compare: %u rows x %u outputs: max |diff| %.3g (golden tolerances %.3g..%.3g), %d "
              "of %zu identical\n", n, per_row, max_diff,
              static_cast<double>(*std::min_element(tol.begin(), tol.end())),
              static_cast<double>(*std::max_element(tol.begin(), tol.end())), exact, got.size());
  for (uint32_t t = 0; t < tasks; ++t) {
    mtan_task_info info{};
    mtan_task_info_get(rt.get(), t, &info);
    if (info.kind == MTAN_TASK_MULTICLASS) {
      for (uint32_t r = 0; r < n; ++r) {
        const uint32_t a = ArgMax(&got[r * per_row + info.output_offset], info.output_size);
        const uint32_t b = ArgMax(&want[r * per_row + info.output_offset], info.output_size);
        if (a != b) {
          *error = std::string(info.name) + ": row " + std::to_string(r) + " top-1 class " +
                   std::to_string(a) + " here, " + std::to_string(b) + " on the host";
          return false;
        }
      }
      std::printf("compare: %s: top-1 class identical on all %u rows\n", info.name, n);
      continue;
    }
    if (info.kind == MTAN_TASK_BINARY) {
      for (uint32_t r = 0; r < n; ++r)
        if ((got[r * per_row + info.output_offset] >= 0.5f) !=
            (want[r * per_row + info.output_offset] >= 0.5f)) {
          *error = std::string(info.name) + ": row " + std::to_string(r) + " decision differs";
          return false;
        }
    }
    if (Ranking(got, n, per_row, info.output_offset) !=
        Ranking(want, n, per_row, info.output_offset)) {
      *error = std::string(info.name) + ": the ranking of the rows differs from the host's";
      return false;
    }
    std::printf("compare: %s: %sranking of all %u rows identical\n", info.name,
                info.kind == MTAN_TASK_BINARY ? "decisions and " : "", n);
  }
  return true;
}

}  // namespace mtan::platform
