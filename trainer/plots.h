// PNG plots of a training report with gnuplot (Debian's gnuplot-nox):
// curves.png (training loss and validation metric per task and epoch) and,
// for architectures with cross-task attention, alpha.png (the mean attention
// matrix as a heatmap). No libtorch.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace mtan::trainer {

// `report` is the metrics.json object. Writes the data and the gnuplot script
// beside the PNGs in `dir`. Returns false with a note (not an error: training
// still succeeded) when gnuplot is missing or fails.
bool WritePlots(const nlohmann::json& report, const std::string& dir, std::string* note);

}  // namespace mtan::trainer
