// Writes the hostile and awkward inputs that tool_inputs.sh feeds to the
// tools, deterministically:
//   model.mtan        a small valid float model (features f0..f3; tasks click,
//                     category (3 classes), spend (log1p))
//   spec.json         its task spec
//   data.csv          200 labelled rows, LF line ends
//   data-bom.csv      the same with a UTF-8 byte order mark
//   data-crlf.csv     the same with CRLF line ends
//   data-bom-crlf.csv both
//   data-huge-line.csv a row whose first cell is 10 MB of digits
//   data-nan.csv      a row with a NaN feature
//   random.bin        64 KiB of pseudo-random bytes
//   random-header.mtan random bytes behind a valid "MTAN" identifier
//   truncated.mtan    model.mtan cut in half
//   corrupt.mtan      model.mtan with one byte flipped (checksum mismatch)
//   empty             0 bytes
//   data-1row.csv     one labelled row (cannot measure an AUC)
//   data-label-1e39.csv  a spend label finite as a double, infinite as float32
//   spec-nul.json     task names "spend\u0000v1" and "spend\u0000v2"
//   spec-36-tasks.json, data-36-tasks.csv  36 binary tasks: 4,179 operators
//                     for mtan's default architecture, over MTAN_MAX_OPERATORS
//   spec-wide.json, data-wide.csv  5000 feature columns, over MTAN_MAX_INPUTS
//   huge-arena.mtan   4091 operators sharing one weight: an arena above
//                     MTAN_MAX_ARENA_BYTES in a 2.6 MB file
//
//   hardening_fixtures OUT_DIR
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "model_io.h"
#include "tiny_models.h"

namespace {

using namespace mtan;

std::vector<uint8_t> Model() {
  fb::ModelT m = host::BuildFloatModel(tiny::Weights(
      tiny::kArchs[0], {fb::TaskKind::BINARY, fb::TaskKind::MULTICLASS, fb::TaskKind::REGRESSION},
      4, 11, {"click", "category", "spend"}));
  return host::FinishModel(m, 8);
}

const char kSpec[] =
    "{\"features\": [\"f0\", \"f1\", \"f2\", \"f3\"],\n"
    " \"tasks\": [\n"
    "  {\"name\": \"click\", \"kind\": \"binary\", \"label\": \"click\"},\n"
    "  {\"name\": \"category\", \"kind\": \"multiclass\", \"label\": \"category\", \"classes\": 3},\n"
    "  {\"name\": \"spend\", \"kind\": \"regression\", \"label\": \"spend\", \"transform\": \"log1p\"}]}\n";

std::string Csv(const char* eol, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::string s = std::string("f0,f1,f2,f3,click,category,spend") + eol;
  char line[256];
  for (int r = 0; r < 200; ++r) {
    std::snprintf(line, sizeof(line), "%.3f,%d,%d,%.2f,%d,%d,%.2f%s", 100 * u(rng),
                  u(rng) < 0.5f ? 0 : 1, static_cast<int>(5 * u(rng)), u(rng), u(rng) < 0.3f ? 1 : 0,
                  static_cast<int>(3 * u(rng)) % 3, 50 * u(rng), eol);
    s += line;
  }
  return s;
}

bool Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "%s: write failed\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string d = std::string(argv[1]) + "/";
  const auto model = Model();
  const std::string m(model.begin(), model.end());
  const std::string csv = Csv("\n", 5);
  const std::string bom = "\xEF\xBB\xBF";
  std::string huge = "f0,f1,f2,f3,click,category,spend\n" + std::string(10 << 20, '7') +
                     ",1,2,0.5,1,0,3.5\n1,0,1,0.5,0,1,2.0\n";
  std::string nan_row = "f0,f1,f2,f3,click,category,spend\n1,0,1,0.5,0,1,2.0\nnan,0,1,0.5,1,2,1.0\n";
  std::mt19937 rng(3);
  std::string random(64 << 10, '\0');
  for (char& c : random) c = static_cast<char>(rng());
  std::string random_header = random.substr(0, 4096);
  random_header.replace(4, 4, "MTAN");
  std::string corrupt = m;
  corrupt[corrupt.size() / 2] ^= 0x20;
  // Issue 12's inputs.
  const std::string one_row = csv.substr(0, csv.find('\n', csv.find('\n') + 1) + 1);
  std::string label_1e39 = "f0,f1,f2,f3,click,category,spend\n1,0,1,0.5,0,1,2.0\n1,0,1,0.5,1,2,1e39\n";
  const std::string spec_nul =
      "{\"tasks\": [{\"name\": \"spend\\u0000v1\", \"kind\": \"regression\", \"label\": \"spend\"},\n"
      "           {\"name\": \"spend\\u0000v2\", \"kind\": \"binary\", \"label\": \"click\"}]}\n";
  std::string spec36 = "{\"features\": [\"f0\", \"f1\"], \"tasks\": [", data36 = "f0,f1";
  for (int t = 0; t < 36; ++t) {
    spec36 += std::string(t ? ", " : "") + "{\"name\": \"t" + std::to_string(t) + "\", \"kind\": \"binary\"}";
    data36 += ",t" + std::to_string(t);
  }
  spec36 += "]}\n";
  data36 += "\n";
  for (int r = 0; r < 20; ++r) {
    data36 += std::to_string(r) + "," + std::to_string(r % 3);
    for (int t = 0; t < 36; ++t) data36 += (r + t) % 2 ? ",1" : ",0";
    data36 += "\n";
  }
  std::string wide;
  for (int c = 0; c < 5000; ++c) wide += "w" + std::to_string(c) + ",";
  wide += "click\n";
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 5000; ++c) wide += std::to_string((r + c) % 7) + ",";
    wide += std::to_string(r % 2) + "\n";
  }
  fb::ModelT shared = tiny::SharedWeightModel(4091, 262144);
  const auto shared_file = host::FinishModel(shared, 1);
  const bool ok = Write(d + "model.mtan", m) && Write(d + "spec.json", kSpec) &&
                  Write(d + "data-1row.csv", one_row) && Write(d + "data-label-1e39.csv", label_1e39) &&
                  Write(d + "spec-nul.json", spec_nul) && Write(d + "spec-36-tasks.json", spec36) &&
                  Write(d + "data-36-tasks.csv", data36) &&
                  Write(d + "spec-wide.json", "{\"tasks\": [{\"name\": \"click\", \"kind\": \"binary\"}]}\n") &&
                  Write(d + "data-wide.csv", wide) &&
                  Write(d + "huge-arena.mtan", std::string(shared_file.begin(), shared_file.end())) &&
                  Write(d + "data.csv", csv) && Write(d + "data-bom.csv", bom + csv) &&
                  Write(d + "data-crlf.csv", Csv("\r\n", 5)) &&
                  Write(d + "data-bom-crlf.csv", bom + Csv("\r\n", 5)) &&
                  Write(d + "data-huge-line.csv", huge) && Write(d + "data-nan.csv", nan_row) &&
                  Write(d + "random.bin", random) && Write(d + "random-header.mtan", random_header) &&
                  Write(d + "truncated.mtan", m.substr(0, m.size() / 2)) &&
                  Write(d + "corrupt.mtan", corrupt) && Write(d + "empty", "");
  return ok ? 0 : 1;
}
