// A small int8 demo model and the files that let a target platform check
// itself against the build host: the host writes the model (with golden
// cases computed by the reference kernels), a fixed set of input rows and
// its own outputs for them; the target reloads all of it and must agree.
#pragma once

#include <string>

namespace mtan::platform {

// Writes into `dir` (which must exist):
//   demo.mtan          int8 model, tasks purchase (binary), category (4
//                      classes), spend (regression, expm1); golden cases over
//                      every row of rows.txt
//   rows.txt           the golden set: raw feature rows, one per line
//   host_outputs.txt   this machine's mtan_run outputs (all tasks) per row
//   candidates.csv     the same rows as candidate products for the kiosk
//   expected_top5.txt  the kiosk's expected top 5 by purchase
//   corrupted.mtan     demo.mtan with one weight byte flipped
//   renamed-task.mtan, renamed-input.mtan, duplicate-input.mtan,
//   negated-head.mtan, huge-arena.mtan   updates the kiosk must refuse
//                      (platforms/examples/kiosk/check_update.cmake)
//   candidates-long-line.csv  a candidate line over the kiosk's 16 KB buffer
//   labelled.csv, spec.json   the rows with labels, for mtan-eval
bool MakeDemo(const std::string& dir, std::string* error);

// Loads dir/demo.mtan here, runs its self-test, runs rows.txt and compares
// with host_outputs.txt: every value within its golden-case tolerance
// (the largest over the cases), the same top-1 class per multiclass row, the same decision per
// binary row and the same ranking of rows per binary or regression task.
// Prints a summary to stdout; false with the first difference in *error.
bool CompareDemo(const std::string& dir, std::string* error);

}  // namespace mtan::platform
