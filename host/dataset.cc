#include "dataset.h"

#include <cmath>
#include <cstdio>

#include "dataset_detail.h"
#include "file_io.h"
#include "mtan/mtan.h"

namespace mtan::host {
namespace detail {

bool Fail(std::string* error, const std::string& message) {
  if (error) *error = message;
  return false;
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string NameProblem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > MTAN_MAX_NAME_BYTES)
    return "is longer than " + std::to_string(MTAN_MAX_NAME_BYTES) + " bytes";
  for (char ch : name) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return "holds a NUL or control character";
  }
  return "";
}

std::string Printable(std::string_view name) {
  std::string out;
  for (char ch : name) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace detail

const char* TaskKindName(fb::TaskKind type) {
  switch (type) {
    case fb::TaskKind::BINARY: return "binary";
    case fb::TaskKind::MULTICLASS: return "multiclass";
    case fb::TaskKind::REGRESSION: return "regression";
  }
  return "?";
}

bool ReadTextFile(const std::string& path, std::string* text, std::string* error,
                  uint64_t max_bytes) {
  return ReadFileCapped(path, max_bytes, /*text=*/true, text, error);
}

double ToModelSpace(const TaskSpec& task, double raw) {
  return task.log1p ? std::log1p(raw) : raw;
}

double FromModelSpace(const TaskSpec& task, double value) {
  return task.log1p ? std::expm1(value) : value;
}

}  // namespace mtan::host
