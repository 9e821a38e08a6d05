// Helpers of the bench tests: tiny model files in a temporary folder, and
// mtan-bench's main run with captured output.
#pragma once

#include <string>
#include <vector>

namespace mtan::bench::test {

// A fresh folder under the system's temporary directory, removed with its
// files when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// test::FloatModel(seed) and test::Int8Model(seed), sealed, written to
// `dir`; returns {float path, int8 path}.
std::pair<std::string, std::string> WriteTinyModels(const TempDir& dir, unsigned seed);

struct Outcome {
  int code = 0;
  std::string out, err;
};
Outcome RunBench(const std::vector<std::string>& args);

}  // namespace mtan::bench::test
