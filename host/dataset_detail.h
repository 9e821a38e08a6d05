// Helpers shared by the spec reader (spec.cc) and the CSV reader (csv.cc):
// messages and the runtime's rule for names. Private to host/dataset*.
#pragma once

#include <string>
#include <string_view>

namespace mtan::host::detail {

// Puts `message` in *error (if not null) and returns false.
bool Fail(std::string* error, const std::string& message);

// `s` in double quotes, for messages.
std::string Quote(std::string_view s);

// What is wrong with a feature, task or class name, or "" (the runtime's
// verifier applies the same rule: mtan.h, MTAN_MAX_NAME_BYTES). A NUL made
// "spend\0v1" and "spend\0v2" one task for every C caller.
std::string NameProblem(std::string_view name);

// A printable form of a name for messages (control characters as \xNN).
std::string Printable(std::string_view name);

}  // namespace mtan::host::detail
