#include "fixture.h"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace mtan::test {

Fixture::Fixture(uint32_t seed, int rows_count) : n(rows_count), seed_(seed) {
  char tmpl[] = "/tmp/mtan_convert_test_XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  fb::ModelT f = FloatModel(seed);
  float_model = Path("model.f32.mtan");
  WriteBytes(float_model, host::FinishModel(f, 64));
  rows = RandomRows(seed + 100, n);
  calib_csv = Path("calib.csv");
  WriteText(calib_csv, Csv(rows, n));
  test_csv = Path("test.csv");
  WriteText(test_csv, Csv(RandomRows(seed + 200, n), n));
  spec_json = Path("tasks.json");
  WriteText(spec_json, R"({"tasks": [
    {"name": "click", "kind": "binary"},
    {"name": "category", "kind": "multiclass", "class_names": ["a", "b", "c", "d"]},
    {"name": "spend", "kind": "regression", "transform": "log1p"}]})");
}

Fixture::~Fixture() {
  std::string out;
  RunCommand("rm -rf '" + dir_ + "'", &out);
}

std::string Fixture::Csv(const std::vector<float>& x, int rows_n,
                         const std::vector<std::string>& header) const {
  // Labels drawn from the float model's own outputs.
  fb::ModelT f = FloatModel(seed_);
  Loaded m(host::FinishModel(f, 64), 64, MTAN_BACKEND_REFERENCE);
  const std::vector<float> y = m.Run(x, rows_n, MTAN_ALL_TASKS);
  std::mt19937 rng(seed_ + rows_n);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  std::ostringstream s;
  for (int i = 0; i < 10; ++i) s << (header.empty() ? "f" + std::to_string(i) : header[i]) << ",";
  s << "click,category,spend\n";
  s.precision(9);
  // Click: above the median probability, 10% flipped; category: the most
  // likely class, 20% of rows another one. A random model's outputs vary
  // little, so sampling from them would give labels no model could rank.
  std::vector<float> p(rows_n);
  for (int r = 0; r < rows_n; ++r) p[r] = y[r * 6];
  std::nth_element(p.begin(), p.begin() + rows_n / 2, p.end());
  const float median = p[rows_n / 2];
  for (int r = 0; r < rows_n; ++r) {
    for (int i = 0; i < 10; ++i) s << x[r * 10 + i] << ",";
    const float* o = &y[r * 6];
    s << ((o[0] > median) != (u(rng) < 0.1f) ? 1 : 0) << ",";
    int k = static_cast<int>(std::max_element(o + 1, o + 5) - (o + 1));
    if (u(rng) < 0.2f) k = static_cast<int>(u(rng) * 4) % 4;
    s << "abcd"[k] << ",";
    if (r % 2 == 0) s << std::max(-0.9f, std::expm1(std::log1p(o[5]) + noise(rng)));
    s << "\n";
  }
  return s.str();
}

bool FileExists(const std::string& path) {
  std::ifstream f(path);
  return f.good();
}

std::string ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + path);
}

std::vector<uint8_t> ReadBytes(const std::string& path) {
  const std::string t = ReadText(path);
  return std::vector<uint8_t>(t.begin(), t.end());
}

void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  WriteText(path, std::string(bytes.begin(), bytes.end()));
}

int RunCommand(const std::string& command, std::string* output) {
  output->clear();
  std::FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t k;
  while ((k = std::fread(buf, 1, sizeof(buf), p)) > 0) output->append(buf, k);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace mtan::test
