// Files for converter and evaluator tests: a float model built with the real
// writer (tests/runtime/test_models.h), a labelled CSV whose labels are drawn
// from that model's own outputs (so metrics are meaningful), and its spec.
// Everything lives in a fresh temporary directory, removed afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "test_models.h"

namespace mtan::test {

class Fixture {
 public:
  explicit Fixture(uint32_t seed = 7, int rows = 800);
  ~Fixture();
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  // The CSV text of `rows` (raw features) with labels; `header` overrides the
  // feature names (default f0..f9).
  std::string Csv(const std::vector<float>& rows, int n,
                  const std::vector<std::string>& header = {}) const;

  std::string float_model;  // path of the float .mtan
  std::string calib_csv;    // path of the labelled calibration CSV
  std::string test_csv;     // another labelled CSV (different rows)
  std::string spec_json;    // path of the spec
  std::vector<float> rows;  // the calibration rows' raw features
  int n = 0;

 private:
  std::string dir_;
  uint32_t seed_;
};

bool FileExists(const std::string& path);
std::string ReadText(const std::string& path);
void WriteText(const std::string& path, const std::string& text);
std::vector<uint8_t> ReadBytes(const std::string& path);
void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes);
// Runs a shell command; returns its exit status and stdout + stderr.
int RunCommand(const std::string& command, std::string* output);

}  // namespace mtan::test
