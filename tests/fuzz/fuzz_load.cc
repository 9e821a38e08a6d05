// libFuzzer target: one input is one .mtan file, as a kiosk downloads it.
// It goes through mtan_arena_size, mtan_load (reference and XNNPACK
// backends, an arena of any alignment), every query, mtan_run_inputs (all
// tasks and each task, batches 1, 3 and max, rows derived from the input
// including NaN, infinities and huge values, ids for every tensor input, some
// outside any table), rows of nothing but huge finite features,
// two threads running and self-testing one model at once, and
// mtan_self_test.
//
// Besides the sanitizers, the harness aborts (a finding) when the runtime
// breaks its contract:
// - a status outside mtan_status, or an error without a message;
// - mtan_load given exactly mtan_arena_size's answer fails for lack of arena,
//   or mtan_arena_used differs from that answer; one byte less is not
//   MTAN_ERROR_ARENA_TOO_SMALL; an answer above MTAN_MAX_ARENA_BYTES;
// - a run on finite rows fails (except MTAN_ERROR_INPUT_ID for an id outside
//   its table), or a non-finite feature is not MTAN_ERROR_INPUT_NOT_FINITE;
// - mtan_run succeeds on a model with tensor inputs;
// - a run on finite rows, however large, returns a NaN or infinite output;
// - a task run alone gives other values than the same task in an all-tasks run
//   (the memory plan let a tensor be overwritten while live);
// - with two threads on one model, a call returns anything but MTAN_OK or
//   MTAN_ERROR_BUSY, or an MTAN_OK run differs from the same run made alone.
//
// The harness allocates (std::vector); the runtime under test does not.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "format.h"
#include "mtan/mtan.h"

namespace {

// Arena beyond which the harness skips loading (the file may ask for up to
// 1 GiB of activations; allocating that per input would only measure malloc).
constexpr size_t kMaxArenaBytes = size_t{64} << 20;
constexpr uint32_t kMaxTasksRunAlone = 8;

[[noreturn]] void Finding(const char* what, mtan_status s) {
  std::fprintf(stderr, "mtan fuzz finding: %s (status %d %s: %s)\n", what, static_cast<int>(s),
               mtan_status_string(s), mtan_last_error());
  std::abort();
}

// Every call must return a declared status, and an error must say why.
mtan_status Checked(mtan_status s) {
  if (static_cast<int>(s) < MTAN_OK || static_cast<int>(s) > MTAN_ERROR_INPUT_ID)
    Finding("status outside mtan_status", s);
  if (s != MTAN_OK && mtan_last_error()[0] == '\0') Finding("error without a message", s);
  return s;
}

// splitmix64: the row values are a deterministic function of the input.
struct Rng {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float Uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(Next() >> 40) / static_cast<float>(1 << 24);
  }
};

// One feature value: mostly plausible, sometimes extreme but finite.
float FiniteValue(Rng& rng) {
  static const float kExtreme[] = {0.0f, -0.0f, 3e38f, -3e38f, 1e-38f, 1e-45f, 65504.0f,
                                   -1e9f, 1e9f, 127.5f, -128.5f};
  const uint64_t r = rng.Next() % 16;
  if (r < 12) return rng.Uniform(-100.0f, 100.0f);
  return kExtreme[rng.Next() % (sizeof(kExtreme) / sizeof(kExtreme[0]))];
}

float NonFinite(Rng& rng) {
  switch (rng.Next() % 3) {
    case 0: return NAN;
    case 1: return INFINITY;
    default: return -INFINITY;
  }
}

// Huge but finite: float models clamp the standardised value, int8 models
// saturate; either way every output must stay finite.
float HugeValue(Rng& rng) {
  static const float kHuge[] = {3.4e38f, -3.4e38f, 1e28f, -1e28f, 1e20f, -1e20f,
                                1e10f,   -1e10f,   65504.0f, -65504.0f, 1e6f, -1e6f};
  return kHuge[rng.Next() % (sizeof(kHuge) / sizeof(kHuge[0]))];
}

void CheckFinite(const std::vector<float>& out, const char* what) {
  for (float v : out)
    if (!std::isfinite(v)) Finding(what, MTAN_OK);
}

bool SameBits(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return false;
  }
  return true;
}

// The rows of every tensor input for `batch` rows: ids mostly in -1..7
// (valid for most small tables), sometimes any 64-bit value.
struct TensorInputs {
  std::vector<std::vector<uint8_t>> data;  // exact sizes: ASan sees a read past the end
  std::vector<const void*> ptrs;
  TensorInputs(const mtan_model* m, uint32_t batch, Rng& rng) {
    uint32_t n = 0;
    Checked(mtan_tensor_input_count(m, &n));
    for (uint32_t j = 0; j < n; ++j) {
      mtan_input_info info;
      if (Checked(mtan_tensor_input_info(m, j, &info)) != MTAN_OK) Finding("tensor input info", MTAN_OK);
      std::vector<uint8_t> bytes(static_cast<size_t>(batch) * info.row_bytes);
      for (size_t k = 0; k + 8 <= bytes.size(); k += 8) {
        const int64_t id = rng.Next() % 16 == 0 ? static_cast<int64_t>(rng.Next())
                                                : static_cast<int64_t>(rng.Next() % 9) - 1;
        std::memcpy(&bytes[k], &id, 8);
      }
      data.push_back(std::move(bytes));
    }
    for (const auto& d : data) ptrs.push_back(d.data());
  }
  uint32_t count() const { return static_cast<uint32_t>(ptrs.size()); }
};

mtan_status Run(mtan_model* m, const std::vector<float>& rows, const TensorInputs& ids,
                uint32_t batch, int32_t task, float* out, size_t out_floats) {
  return mtan_run_inputs(m, rows.data(), ids.ptrs.data(), ids.count(), batch, task, out,
                         out_floats, nullptr);
}

// mtan_run_batch on the same ids in CSR form (the padding dropped) must give
// the padded run's outputs bit for bit; then one offset of one input is
// mutated (the ids array still spans every offset): a status, never a read
// outside the arrays (ASan watches exact sizes).
void ExerciseCsr(mtan_model* m, const std::vector<float>& rows, const TensorInputs& ids,
                 uint32_t batch, const std::vector<float>& want, Rng& rng) {
  const uint32_t count = ids.count();
  std::vector<std::vector<int64_t>> csr(count);
  std::vector<std::vector<uint32_t>> offsets(count);
  for (uint32_t j = 0; j < count; ++j) {
    mtan_input_info info;
    Checked(mtan_tensor_input_info(m, j, &info));
    if (info.dtype != MTAN_DTYPE_INT64) return;
    const size_t length = info.row_bytes / 8;
    offsets[j].push_back(0);
    for (uint32_t r = 0; r < batch; ++r) {
      for (size_t l = 0; l < length; ++l) {
        int64_t id;
        std::memcpy(&id, ids.data[j].data() + (r * length + l) * 8, 8);
        if (id != -1) csr[j].push_back(id);
      }
      offsets[j].push_back(static_cast<uint32_t>(csr[j].size()));
    }
  }
  auto run = [&](std::vector<float>* out) {
    std::vector<mtan_ids> in(count);
    for (uint32_t j = 0; j < count; ++j) in[j] = {csr[j].data(), offsets[j].data()};
    const mtan_batch b{rows.data(), batch, in.data(), count};
    return Checked(mtan_run_batch(m, &b, MTAN_ALL_TASKS, out->data(), out->size(), nullptr));
  };
  std::vector<float> out(want.size());
  if (run(&out) != MTAN_OK || !SameBits(out.data(), want.data(), out.size()))
    Finding("mtan_run_batch disagrees with mtan_run_inputs on the same ids", MTAN_OK);
  const uint32_t j = static_cast<uint32_t>(rng.Next() % count);
  std::vector<uint32_t>& off = offsets[j];
  off[rng.Next() % off.size()] = static_cast<uint32_t>(rng.Next() % (csr[j].size() + 8));
  uint32_t largest = 0;
  for (uint32_t v : off) largest = std::max(largest, v);
  csr[j].resize(largest, 3);
  const mtan_status s = run(&out);
  if (s != MTAN_OK && s != MTAN_ERROR_INVALID_ARGUMENT && s != MTAN_ERROR_INPUT_ID &&
      s != MTAN_ERROR_BACKEND)
    Finding("mtan_run_batch with mutated offsets", s);
}

void ExerciseQueries(const mtan_model* m) {
  uint32_t n = 0;
  size_t used = 0;
  Checked(mtan_arena_used(m, &used));
  Checked(mtan_max_batch(m, &n));
  Checked(mtan_input_count(m, &n));
  for (uint32_t i = 0; i <= n && i < 4096; ++i) {
    const char* name = nullptr;
    if (Checked(mtan_input_name(m, i, &name)) == MTAN_OK && std::strlen(name) > (1u << 30))
      Finding("input name", MTAN_OK);
  }
  Checked(mtan_task_count(m, &n));
  for (uint32_t k = 0; k <= n; ++k) {
    mtan_task_info info;
    if (Checked(mtan_task_info_get(m, k, &info)) == MTAN_OK) {
      int32_t found = -1;
      Checked(mtan_task_find(m, info.name, &found));
      uint32_t floats = 0;
      Checked(mtan_output_size(m, static_cast<int32_t>(k), &floats));
      if (floats != info.output_size) Finding("output size disagrees with task info", MTAN_OK);
    }
  }
  Checked(mtan_tensor_count(m, &n));
  for (uint32_t t = 0; t <= n; ++t) {
    mtan_tensor_desc d;
    if (Checked(mtan_tensor_get(m, t, &d)) == MTAN_OK && std::strlen(d.name) > (1u << 30))
      Finding("tensor name", MTAN_OK);
  }
}

// Runs `batch` rows on every task at once, then on each task alone, and
// checks the statuses and that the results agree.
void ExerciseRuns(mtan_model* m, uint32_t batch, Rng& rng, bool with_non_finite) {
  uint32_t inputs = 0, tasks = 0, all = 0;
  if (Checked(mtan_input_count(m, &inputs)) != MTAN_OK ||
      Checked(mtan_task_count(m, &tasks)) != MTAN_OK ||
      Checked(mtan_output_size(m, MTAN_ALL_TASKS, &all)) != MTAN_OK)
    Finding("queries on a loaded model", MTAN_OK);
  std::vector<float> rows(static_cast<size_t>(batch) * inputs);
  for (float& v : rows) v = FiniteValue(rng);
  if (with_non_finite) rows[rng.Next() % rows.size()] = NonFinite(rng);
  const TensorInputs ids(m, batch, rng);

  // Exactly sized output buffers, so that ASan sees a write past the end.
  std::vector<float> out_all(static_cast<size_t>(batch) * all);
  if (ids.count() > 0 && Checked(mtan_run(m, rows.data(), batch, MTAN_ALL_TASKS, out_all.data(),
                                          out_all.size(), nullptr)) != MTAN_ERROR_INVALID_ARGUMENT)
    Finding("mtan_run accepted a model with tensor inputs", MTAN_OK);
  mtan_status s = Checked(Run(m, rows, ids, batch, MTAN_ALL_TASKS, out_all.data(), out_all.size()));
  if (with_non_finite) {
    // (An embedding bag ahead of the features' QUANTIZE may see a bad id first.)
    if (s != MTAN_ERROR_INPUT_NOT_FINITE && s != MTAN_ERROR_INPUT_ID)
      Finding("non-finite feature not refused", s);
    return;
  }
  // A valid backend may still refuse at run time; then no value is promised.
  // An id outside its table is the caller's error.
  if (s == MTAN_ERROR_BACKEND || s == MTAN_ERROR_INPUT_ID) return;
  if (s != MTAN_OK) Finding("run on finite rows failed", s);
  CheckFinite(out_all, "a non-finite output from finite rows");
  if (ids.count() > 0) ExerciseCsr(m, rows, ids, batch, out_all, rng);
  for (uint32_t k = 0; k < tasks && k < kMaxTasksRunAlone; ++k) {
    mtan_task_info info;
    if (Checked(mtan_task_info_get(m, k, &info)) != MTAN_OK) Finding("task info", MTAN_OK);
    std::vector<float> out(static_cast<size_t>(batch) * info.output_size);
    s = Checked(Run(m, rows, ids, batch, static_cast<int32_t>(k), out.data(), out.size()));
    if (s == MTAN_ERROR_BACKEND) continue;
    if (s != MTAN_OK) Finding("task run on finite rows failed", s);
    for (uint32_t r = 0; r < batch; ++r) {
      if (!SameBits(&out[static_cast<size_t>(r) * info.output_size],
                    &out_all[static_cast<size_t>(r) * all + info.output_offset], info.output_size))
        Finding("a task alone disagrees with the all-tasks run", MTAN_OK);
    }
  }
  // A too-small output buffer and a batch above the maximum are statuses.
  if (all > 0 && Checked(Run(m, rows, ids, batch, MTAN_ALL_TASKS, out_all.data(),
                             out_all.size() - 1)) != MTAN_ERROR_OUTPUT_TOO_SMALL)
    Finding("short output buffer accepted", MTAN_OK);
}

// Rows of nothing but huge finite features (issue 12: float models used to
// answer NaN, or one thing on XNNPACK and another on the reference kernels).
void ExerciseHugeFeatures(mtan_model* m, uint32_t batch, Rng& rng) {
  uint32_t inputs = 0, all = 0;
  Checked(mtan_input_count(m, &inputs));
  Checked(mtan_output_size(m, MTAN_ALL_TASKS, &all));
  std::vector<float> rows(static_cast<size_t>(batch) * inputs);
  for (float& v : rows) v = rng.Next() % 4 == 0 ? FiniteValue(rng) : HugeValue(rng);
  const TensorInputs ids(m, batch, rng);
  std::vector<float> out(static_cast<size_t>(batch) * all);
  const mtan_status s = Checked(Run(m, rows, ids, batch, MTAN_ALL_TASKS, out.data(), out.size()));
  if (s == MTAN_ERROR_BACKEND || s == MTAN_ERROR_INPUT_ID) return;
  if (s != MTAN_OK) Finding("run on huge finite rows failed", s);
  CheckFinite(out, "a non-finite output from huge finite rows");
}

// Two threads on one model (issue 12: the header forbade it, apps did it,
// and it returned other threads' rows, NaN, or aborted inside XNNPACK).
// Each thread runs its own batch size, the second also self-tests; every
// call is MTAN_OK or MTAN_ERROR_BUSY, and an MTAN_OK run gives exactly what
// the same run gave alone.
void ExerciseTwoThreads(mtan_model* m, uint32_t batch, Rng& rng) {
  uint32_t inputs = 0, all = 0;
  Checked(mtan_input_count(m, &inputs));
  Checked(mtan_output_size(m, MTAN_ALL_TASKS, &all));
  std::vector<float> rows(static_cast<size_t>(batch) * inputs);
  for (float& v : rows) v = FiniteValue(rng);
  const TensorInputs ids(m, batch, rng);
  std::vector<float> want_one(all), want_many(static_cast<size_t>(batch) * all);
  if (Checked(Run(m, rows, ids, 1, MTAN_ALL_TASKS, want_one.data(), want_one.size())) != MTAN_OK ||
      Checked(Run(m, rows, ids, batch, MTAN_ALL_TASKS, want_many.data(), want_many.size())) != MTAN_OK)
    return;  // (a backend that refuses at run time, or a bad id; reported by ExerciseRuns)
  const mtan_status self_alone = Checked(mtan_self_test(m));
  constexpr int kIterations = 6;
  auto worker = [&](bool many) {
    std::vector<float> out(many ? want_many.size() : want_one.size());
    const std::vector<float>& want = many ? want_many : want_one;
    for (int i = 0; i < kIterations; ++i) {
      mtan_status s = Run(m, rows, ids, many ? batch : 1, MTAN_ALL_TASKS, out.data(), out.size());
      if (s != MTAN_OK && s != MTAN_ERROR_BUSY) Finding("two threads: run failed", s);
      if (s == MTAN_OK && !SameBits(out.data(), want.data(), out.size()))
        Finding("two threads: a run differs from the same run alone", s);
      if (many) {
        s = mtan_self_test(m);
        if (s != MTAN_ERROR_BUSY && s != self_alone) Finding("two threads: self-test changed", s);
      }
    }
  };
  std::thread other(worker, true);
  worker(false);
  other.join();
}

void LoadAndRun(const uint8_t* bytes, size_t size, mtan_backend backend, Rng& rng) {
  mtan_options opt = mtan_options_default();
  opt.backend = backend;
  size_t need = 0;
  if (Checked(mtan_arena_size(bytes, size, &opt, &need)) != MTAN_OK) return;
  if (need > MTAN_MAX_ARENA_BYTES) Finding("arena size above MTAN_MAX_ARENA_BYTES", MTAN_OK);
  if (need > kMaxArenaBytes) {
    opt.max_batch = 2;  // the file's maximum batch may be large: try a small one
    if (Checked(mtan_arena_size(bytes, size, &opt, &need)) != MTAN_OK || need > kMaxArenaBytes)
      return;
  }
  // An arena of any alignment: mtan_load aligns it itself, given the slack.
  const size_t misalign = rng.Next() % 64;
  // Left uninitialized, as a device's arena is (zeroing a 64 MiB arena was
  // most of a slow unit's time).
  std::unique_ptr<uint8_t[]> storage(new uint8_t[need + 128]);
  uint8_t* arena = reinterpret_cast<uint8_t*>(
      (reinterpret_cast<uintptr_t>(storage.get()) + 63) & ~uintptr_t{63}) + misalign;
  const size_t pad = misalign == 0 ? 0 : 64 - misalign;
  mtan_model* m = nullptr;
  if (rng.Next() % 8 == 0) {
    const mtan_status s = Checked(mtan_load(bytes, size, &opt, arena, need + pad - 1, &m));
    if (s != MTAN_ERROR_ARENA_TOO_SMALL || m != nullptr)
      Finding("one byte less than mtan_arena_size is not ARENA_TOO_SMALL", s);
  }
  const mtan_status s = Checked(mtan_load(bytes, size, &opt, arena, need + pad, &m));
  if (s == MTAN_ERROR_ARENA_TOO_SMALL) Finding("load failed in an arena of the reported size", s);
  if (s != MTAN_OK) {
    if (m != nullptr) Finding("failed load left a model", s);
    return;
  }
  size_t used = 0;
  Checked(mtan_arena_used(m, &used));
  if (used != need + pad) Finding("arena used differs from mtan_arena_size", MTAN_OK);
  ExerciseQueries(m);
  uint32_t max_batch = 0;
  Checked(mtan_max_batch(m, &max_batch));
  const uint32_t batches[3] = {1, max_batch < 3 ? max_batch : 3, max_batch < 64 ? max_batch : 64};
  for (uint32_t i = 0; i < 3; ++i) {
    if (i > 0 && batches[i] == batches[i - 1]) continue;
    ExerciseRuns(m, batches[i], rng, false);
  }
  ExerciseRuns(m, batches[1], rng, true);
  ExerciseHugeFeatures(m, batches[1], rng);
  ExerciseTwoThreads(m, batches[1], rng);
  const mtan_status st = Checked(mtan_self_test(m));
  (void)st;
  // Runs after a self-test still work (it shares the activations).
  ExerciseRuns(m, 1, rng, false);
  mtan_unload(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool initialized = mtan_init() == MTAN_OK;
  if (!initialized) Finding("mtan_init failed", MTAN_ERROR_NOT_INITIALIZED);
  // Model bytes must be 16-byte aligned (weights are read in place); the
  // fuzzer's buffer is not, so copy. An exact-size heap block lets ASan see
  // any read past the end of the file.
  void* p = nullptr;
  if (posix_memalign(&p, MTAN_MODEL_ALIGNMENT, size == 0 ? 1 : size) != 0) return 0;
  if (size != 0) std::memcpy(p, data, size);
  const uint8_t* bytes = static_cast<const uint8_t*>(p);
  // Rows derive from the input's checksum: every mutation changes them.
  Rng rng{mtan::Checksum64(data, size)};
  size_t need = 0;
  Checked(mtan_arena_size(bytes, size, nullptr, &need));
  LoadAndRun(bytes, size, MTAN_BACKEND_REFERENCE, rng);
  LoadAndRun(bytes, size, MTAN_BACKEND_XNNPACK, rng);
  std::free(p);
  return 0;
}
