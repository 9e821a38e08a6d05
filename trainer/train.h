// mtan-train's work, behind a libtorch-free interface so that only model.cc
// and train.cc compile against libtorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mtan::trainer {

struct TrainOptions {
  // Inputs and outputs.
  std::string train_csv, val_csv, spec_path;
  std::string test_csv;     // optional: scored once after training, never used to select
  std::string out_model;    // float32 .mtan
  std::string report_dir;   // metrics.json and plots; default: the directory of out_model
  std::string predictions;  // optional: CSV of the test predictions (model space)
  // Model.
  std::string arch = "mtan";
  std::vector<int> trunk = {256, 128};
  bool trunk_given = false;  // `single` matches mtan's size unless --trunk is given
  bool match_params = false; // scale the trunk to mtan's parameter count
  int mask_hidden = 32;
  int task_width = 64;
  int att_hidden = 32;
  double dropout = 0.0;
  // Optimisation.
  // Defaults chosen on the synthetic validation split (trainer/RESULTS.md)
  // so that the default demo trains in under 3 minutes on one core.
  int epochs = 10;
  int batch = 1024;
  double lr = 3e-3;
  double weight_decay = 1e-4;  // wd in wd * ||W||^2 (weights, not biases)
  // l2 in l2 * sum of the squared embedding rows a row's bags read, per row
  // of the batch: decays each table row when it is used, so a rare id is
  // not fitted to its few rows (tables get no weight decay).
  double embedding_l2 = 0.1;
  std::string loss_weights = "equal";
  double dwa_temperature = 2.0;
  int patience = 3;         // epochs without a better validation score before stopping
  double lr_decay = 0.5;    // learning rate factor after an epoch without improvement
  uint64_t seed = 1;
  int threads = 1;
  // Output.
  bool json = false;        // print the final summary as JSON on stdout
  bool quiet = false;       // no per-epoch lines
  bool plots = true;
  int golden_rows = 8;
  int max_batch = 256;      // stored in the model as the default maximum batch
};

// Seconds the remaining epochs will take, printed as the ETA: the median of
// the last three epochs times the epochs left. A mean over all epochs lagged
// 5x behind when epoch times drifted.
double EtaSeconds(const std::vector<double>& epoch_seconds, int epochs_left);

// Runs everything; returns the process exit code (0 on success) after
// printing any error to stderr.
int RunTraining(const TrainOptions& options);

}  // namespace mtan::trainer
