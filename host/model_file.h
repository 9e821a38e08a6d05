// Writing .mtan files: per-task plans, the activation memory plan
// (memory_planner.h), golden cases, and the checksum footer
// (runtime/src/format.h, shared with the reader). Host only (STL, may throw).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mtan_generated.h"

namespace mtan::host {

// Computes every task's plan, the activation memory plan and the version,
// flushes denormal float32 weights to zero (in `model` too, so golden cases
// and checks see the written weights), then serializes with the checksum
// footer. `max_batch` is stored as the
// default maximum batch. `reuse_memory` false gives every activation its own
// bytes, so that all of a run's tensors can be read afterwards (calibration).
std::vector<uint8_t> FinishModel(fb::ModelT& model, uint32_t max_batch, bool reuse_memory = true);

// Serializes as is (no planning) and appends the checksum footer. Tests use
// it to write deliberately broken plans.
std::vector<uint8_t> SealModel(fb::ModelT& model);

// The footer's checksum function (XXH64, seed 0; runtime/src/format.h) of
// any bytes: what `xxhsum -H64` prints for them.
uint64_t Checksum64(const uint8_t* data, size_t n);

// Stores `rows` (n x inputs) and `outputs` (n rows of mtan_run's all-task
// outputs, as the caller computed them, e.g. with the reference kernels) as a
// golden case. `tolerances` has one entry per output of a row (the sum of
// every task's output size), each in that output's units: mtan_self_test
// compares output k of every row within tolerances[k]. The case's scalar
// `tolerance` (read by format-1.0 runtimes) gets the largest. False with a
// message on mismatched sizes or a negative or non-finite tolerance. A model
// with tensor inputs takes their rows in `tensor_input` (each tensor input's
// n rows in turn, as RuntimeModel::Run takes them).
bool AddGoldenCase(fb::ModelT& model, const std::vector<float>& rows, uint32_t n,
                   const std::vector<float>& outputs, const std::vector<float>& tolerances,
                   std::string* error, const std::vector<uint8_t>& tensor_input = {});

// Bytes of one row of all tensor inputs together, as the caller passes them.
size_t TensorInputRowBytes(const fb::ModelT& model);

// Floats per row of an all-task run of `model`: the sum of every task's
// output size.
size_t OutputsPerRow(const fb::ModelT& model);

// Values per row of an activation: the product of its per-row shape
// (contract.h's RowElements, as the runtime computes it).
uint64_t RowElements(const fb::TensorT& activation);

// Output size (floats per row) of a task tensor in an object-API model.
int TaskOutputSize(const fb::ModelT& model, const fb::TaskT& task);

}  // namespace mtan::host
