// The converter's search for an int8 model that holds on every task, kept
// apart from the pipeline in convert.cc so that the tests drive each step:
//
//   Scorer          runs a candidate through the runtime on a set of rows
//                   and measures the loss its outputs are expected to cost
//                   each task's metric (see below), and the metrics;
//   SearchRanges    picks each tensor's (and input feature's) calibration
//                   range by the expected loss it causes at the task outputs
//                   (greedy, one slot at a time: the per-tensor search of
//                   TensorRT / ONNX Runtime / AIMET calibrators, judged
//                   downstream instead of per tensor);
//   CorrectBiases   empirical bias correction (Nagel et al., ICCV 2019):
//                   each layer's bias absorbs the mean error its quantized
//                   inputs and weights add to its output;
//   RankSensitivity quantizes one operator at a time (the rest float) and
//                   ranks them by the expected loss each causes on given
//                   tasks: the order in which layers fall back to float.
//
// Why an expected loss and not the metrics: on 10 000 rows the AUC
// difference of two nearly equal models has a standard error of ~0.0007
// (purchase, ~250 positives), most of the goal of 0.001, so decisions taken
// on measured metrics follow the labels' noise. The expected loss takes the
// float model's own predictions as the truth: a row is positive with the
// float probability, so the AUC a candidate is expected to lose is a pair
// count weighted by those probabilities (no labels drawn, no label noise);
// accuracy loses p_float(float's class) - p_float(candidate's class) per
// row; NMSE grows by mean (candidate - float)^2 / MSE of float (the float
// residual taken as noise; the distortion is averaged over every row, with
// a label or not, so that rare inputs count). What remains is the sampling
// of the rows, and the candidate's errors keep their real structure (rows
// alike err alike).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dataset.h"
#include "evaluate.h"
#include "model_io.h"

namespace mtan::convert {

class Scorer {
 public:
  // `rows` are in the float model's input order, with labels; model_task
  // maps spec tasks to model tasks (host::MatchTasks); goal[t] is task t's
  // largest allowed loss, in the units of PrimaryLoss.
  // tail_rows[r] = 1 marks row r as a rare input that only regression
  // tasks count (SearchRows; empty: none).
  bool Init(const std::vector<uint8_t>& float_file, const host::Spec& spec, host::Dataset rows,
            std::vector<int32_t> model_task, std::vector<double> goal, std::string* error,
            std::vector<char> tail_rows = {});

  // Per spec task, over the rows where it is labelled (a regression's
  // distortion: over every row): the loss of the primary metric expected from `model`'s outputs if the float model's
  // outputs were the truth (see the top of this file), in PrimaryLoss units.
  bool ExpectedLoss(fb::ModelT& model, std::vector<double>* loss, std::string* error);
  // The same as fractions of the goals: <= 1 is expected to meet them.
  bool Expected(fb::ModelT& model, std::vector<double>* fraction, std::string* error);
  // Expected, and per task the bootstrap standard error of that fraction
  // over `resamples` resamples of these rows (NaN for fewer than 2): how
  // far the rows' sampling leaves the loss of other rows uncertain.
  bool ExpectedWithError(fb::ModelT& model, int resamples, std::vector<double>* fraction,
                         std::vector<double>* fraction_se, std::string* error);
  std::vector<double> Fractions(const std::vector<double>& loss) const;
  // Every metric of every task (host::EvaluateModel) on these rows.
  bool Metrics(fb::ModelT& model, std::vector<host::TaskEvaluation>* out, std::string* error);
  // Metrics, and per task the paired bootstrap standard error of the
  // primary metric's loss against float: `resamples` resamples of these
  // rows, the same rows for both models. NaN where a resample leaves it
  // undefined.
  bool Compare(fb::ModelT& model, int resamples, std::vector<host::TaskEvaluation>* out,
               std::vector<double>* loss_se, std::string* error);

  const std::vector<host::TaskEvaluation>& float_metrics() const { return float_metrics_; }
  const host::Dataset& rows() const { return rows_; }
  int64_t evaluations() const { return evaluations_; }  // candidates run so far

 private:
  bool Outputs(fb::ModelT& model, std::vector<std::vector<float>>* out, std::string* error);
  // Task t's values of the labelled rows among idx, tail rows left out.
  std::vector<float> Observed(size_t t, const std::vector<float>& v, const std::vector<uint32_t>& idx) const;
  // Per task the expected loss of outputs `out` on rows idx (repeats allowed).
  std::vector<double> LossOn(const std::vector<std::vector<float>>& out, const std::vector<uint32_t>& idx) const;

  host::Spec spec_;
  host::Dataset rows_;
  std::vector<int32_t> model_task_;
  std::vector<double> goal_;
  std::vector<char> tail_;  // per row: counted by regression tasks only
  std::vector<std::vector<float>> float_out_;  // per task, model space (as EvaluateTask takes them)
  std::vector<host::TaskEvaluation> float_metrics_;
  int64_t evaluations_ = 0;
};

// A task's loss on its primary metric: float - int8 for AUC and accuracy,
// int8 / float - 1 for NMSE.
double PrimaryLoss(fb::TaskKind type, double float_value, double int8_value);

// Sum of the per-task values (expected goal fractions): what the search minimises.
double Total(const std::vector<double>& per_task);

// The rows the range search, bias correction and the sensitivity ranking
// score candidates on, sorted: the first `first` rows; then further rows
// where a task has a label, until every task has `labels` labelled rows (or
// all it has): a task labelled on few rows (spend: purchases only) would
// otherwise be judged on a handful; then the `tail` rows with the smallest
// and the `tail` with the largest value of every feature, flagged in *tail
// (one flag per returned row) when no rule before took them. Those rare
// inputs are where a clipped range costs most, and for a squared error one
// row can cost a whole goal: on synthetic seed 3 one test row past the
// calibration rows' page_views_7d, which int8 clipped, raised the test
// spend NMSE by 2.7 % (1.3 goals). An AUC or an accuracy counts a row 1/n,
// so only regression tasks score the flagged rows (Scorer::Init): they
// stand for many more rows than their number, a margin for the tail.
struct SearchRowCounts {
  uint32_t first = 4096, labels = 2000, tail = 4;
};
std::vector<uint32_t> SearchRows(const host::Dataset& data, const SearchRowCounts& counts = {},
                                 std::vector<char>* tail = nullptr);

// Greedy per-slot range search. `build(choice)` quantizes with choice[k]
// the candidate (0..candidates-1) of slot k. Starting from *choice, every
// slot in turn tries every other candidate, keeping the one that lowers the
// total expected loss; `sweeps` passes over the slots (stops early when a
// pass changes nothing). *objective gets the final total.
bool SearchRanges(Scorer& scorer, const std::function<fb::ModelT(const std::vector<int>&)>& build,
                  size_t slots, int candidates, int sweeps, std::vector<int>* choice,
                  double* objective, std::string* error);

// Per-channel means of every activation tensor of `model` over `n` rows
// (int8 tensors dequantized). (*means)[t] is empty for constants. A model
// with tensor inputs takes their n rows in `tensor_input` (RuntimeModel::Run's
// layout), here and in CorrectBiases.
bool ChannelMeans(const fb::ModelT& model, const float* rows, uint32_t n,
                  std::vector<std::vector<double>>* means, std::string* error,
                  const std::vector<uint8_t>& tensor_input = {});

// Empirical bias correction. `float_model` is the (equalized) float model
// that `quantize` turns into the int8 candidate; its FULLY_CONNECTED biases
// are rewritten so that each layer of the quantized model has on `rows` the
// same mean pre-activation output as in float:
//   b' = b - (W~ mean(x~) - W mean(x))
// with W~, x~ the layer's weights and input as the quantized model has them
// (dequantized). A layer's inputs change with the corrections before it, so
// the layers are corrected in order of depth, one quantized run per depth.
// Biases that several operators share first get one copy per operator.
// *largest: the largest |correction| relative to its layer's largest |bias|.
bool CorrectBiases(fb::ModelT* float_model, const std::function<fb::ModelT(const fb::ModelT&)>& quantize,
                   const float* rows, uint32_t n, double* largest, std::string* error,
                   const std::vector<uint8_t>& tensor_input = {});

struct Sensitivity {
  int op = -1;         // operator of the float model
  double score = 0.0;  // sum over the given tasks of the expected goal fraction with only `op` in int8
};

// For every operator in `candidates`: the model with only that operator in
// int8 (`build(float_ops)`, float_ops[o] = 1 for float) and its expected
// goal fractions summed over `tasks` (spec task indices). Sorted, most
// sensitive first.
bool RankSensitivity(Scorer& scorer, const std::function<fb::ModelT(const std::vector<char>&)>& build,
                     size_t ops, const std::vector<int>& candidates, const std::vector<int>& tasks,
                     std::vector<Sensitivity>* ranking, std::string* error);

// One step of the float fallback: operator `op` also in float leaves
// `excess` (expected loss over the aim, summed over tasks; 0 clears it) and
// adds `bytes` to the file.
struct FallbackTrial {
  int op = -1;
  double excess = 0.0;
  int64_t bytes = 0;
};
// The operator to keep in float: of the trials that clear the aim, the one
// that adds the fewest bytes; if none does, the one that removes the most
// excess (from `excess_now`) per byte added; if none removes any, the one
// that leaves the least. -1 for no trials.
int PickFallback(const std::vector<FallbackTrial>& trials, double excess_now);

}  // namespace mtan::convert
