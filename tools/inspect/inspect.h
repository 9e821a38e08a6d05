// mtan-inspect: what is inside a .mtan file. The file is verified by the
// runtime's own verifier first; a file it rejects gets the verifier's
// message and a non-zero exit, never a crash.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mtan::inspect {

// Describes a model file's bytes as JSON (the --json output): version,
// producer, inputs, tasks with plans, operators, arena sizes, metrics,
// golden cases. False with "STATUS: message" in *error when the runtime's
// verifier rejects the bytes.
bool Describe(const std::string& name, const std::vector<uint8_t>& bytes,
              nlohmann::ordered_json* out, std::string* error);

// The same description as text for people; `summary` leaves out the lists
// of inputs, operators and metrics (their counts stay).
void WriteText(const nlohmann::ordered_json& d, std::ostream& out, bool summary = false);

// The whole tool: `mtan-inspect M.mtan [--json | --summary]`. Returns the exit code:
// 0, 1 for a file that cannot be read or is rejected, 2 for bad flags.
int InspectMain(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace mtan::inspect
