// Hostile calls and inputs: every bad argument gets its own status.
#include <cmath>
#include <cstring>
#include <limits>

#include "doctest/doctest.h"
#include "test_models.h"

using namespace mtan;

TEST_CASE("mtan_run rejects bad arguments with a status") {
  fb::ModelT f = test::FloatModel(9);
  test::Loaded m(host::FinishModel(f, 8), 8, MTAN_BACKEND_DEFAULT);
  REQUIRE(m.status == MTAN_OK);
  auto rows = test::RandomRows(1, 9);
  std::vector<float> out(64);
  CHECK(mtan_run(nullptr, rows.data(), 1, 0, out.data(), out.size(), nullptr) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_run(m.model, nullptr, 1, 0, out.data(), out.size(), nullptr) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_run(m.model, rows.data(), 1, 0, nullptr, out.size(), nullptr) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_run(m.model, rows.data(), 0, 0, out.data(), out.size(), nullptr) == MTAN_ERROR_BATCH);
  CHECK(mtan_run(m.model, rows.data(), 9, 0, out.data(), out.size(), nullptr) == MTAN_ERROR_BATCH);
  CHECK(std::string(mtan_last_error()).find("batch 9") != std::string::npos);
  CHECK(mtan_run(m.model, rows.data(), 1, 3, out.data(), out.size(), nullptr) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_run(m.model, rows.data(), 1, -2, out.data(), out.size(), nullptr) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_run(m.model, rows.data(), 2, MTAN_ALL_TASKS, out.data(), 11, nullptr) == MTAN_ERROR_OUTPUT_TOO_SMALL);
  CHECK(mtan_run(m.model, rows.data(), 2, MTAN_ALL_TASKS, out.data(), 12, nullptr) == MTAN_OK);
  CHECK(mtan_run(m.model, rows.data(), 4, 1, out.data(), 15, nullptr) == MTAN_ERROR_OUTPUT_TOO_SMALL);
  int32_t task = 0;
  CHECK(mtan_task_find(m.model, "nope", &task) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_task_find(m.model, "spend", &task) == MTAN_OK);
  CHECK(task == 2);
  mtan_task_info info;
  CHECK(mtan_task_info_get(m.model, 3, &info) == MTAN_ERROR_INVALID_ARGUMENT);
  const char* name = nullptr;
  CHECK(mtan_input_name(m.model, 10, &name) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_input_name(m.model, 9, &name) == MTAN_OK);
  CHECK(std::string(name) == "f9");
  const host::ModelBytes bytes(host::FinishModel(f, 8));
  mtan_options bad = {0, 99};
  size_t need = 0;
  CHECK(mtan_arena_size(bytes.data(), bytes.size(), &bad, &need) == MTAN_ERROR_INVALID_ARGUMENT);
  bad = {MTAN_MAX_BATCH + 1, MTAN_BACKEND_DEFAULT};
  CHECK(mtan_arena_size(bytes.data(), bytes.size(), &bad, &need) == MTAN_ERROR_BATCH);
}

TEST_CASE("NaN and infinite features are refused; huge finite ones saturate") {
  for (bool int8 : {false, true}) {
    fb::ModelT f = int8 ? test::Int8Model(9) : test::FloatModel(9);
    test::Loaded m(host::FinishModel(f, 8), 8, MTAN_BACKEND_DEFAULT);
    REQUIRE(m.status == MTAN_OK);
    std::vector<float> out(64);
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY}) {
      auto rows = test::RandomRows(1, 3);
      rows[10 + 4] = bad;  // row 1, feature 4
      CHECK(mtan_run(m.model, rows.data(), 3, MTAN_ALL_TASKS, out.data(), out.size(), nullptr) ==
            MTAN_ERROR_INPUT_NOT_FINITE);
      CHECK(std::string(mtan_last_error()).find("row 1, feature 4 'f4'") != std::string::npos);
    }
    auto rows = test::RandomRows(1, 3);
    for (int i = 0; i < 10; ++i) rows[i] = 3e38f;
    REQUIRE(mtan_run(m.model, rows.data(), 3, MTAN_ALL_TASKS, out.data(), out.size(), nullptr) == MTAN_OK);
    if (int8) {
      for (int k = 0; k < 18; ++k) CHECK(std::isfinite(out[k]));
    }
  }
}

TEST_CASE("self-test: golden cases pass, a wrong one fails, none is a status") {
  fb::ModelT f = test::Int8Model(4);
  {
    test::Loaded none(host::FinishModel(f, 8), 8, MTAN_BACKEND_XNNPACK);
    CHECK(mtan_self_test(none.model) == MTAN_ERROR_NO_GOLDEN_CASES);
  }
  std::string error;
  f.max_batch = 8;
  REQUIRE_MESSAGE(tiny::AddReferenceGolden(f, test::RandomRows(3, 20), 20, 1e-2f, &error), error);
  test::Loaded good(host::FinishModel(f, 8), 8, MTAN_BACKEND_XNNPACK);
  CHECK_MESSAGE(mtan_self_test(good.model) == MTAN_OK, std::string(mtan_last_error()));
  f.golden[0]->output[7] += 0.5f;
  test::Loaded bad(host::FinishModel(f, 8), 8, MTAN_BACKEND_XNNPACK);
  CHECK(mtan_self_test(bad.model) == MTAN_ERROR_SELF_TEST);
  CHECK(std::string(mtan_last_error()).find("golden case 0, row 1, output 1") != std::string::npos);
}

TEST_CASE("status strings and unloaded models") {
  for (int s = 0; s <= MTAN_ERROR_NO_GOLDEN_CASES; ++s)
    CHECK(std::strncmp(mtan_status_string(static_cast<mtan_status>(s)), "MTAN_", 5) == 0);
  CHECK(std::string(mtan_status_string(static_cast<mtan_status>(999))) == "MTAN_ERROR_UNKNOWN");
  mtan_unload(nullptr);
  uint32_t n = 0;
  CHECK(mtan_task_count(nullptr, &n) == MTAN_ERROR_INVALID_ARGUMENT);
}

TEST_CASE("XNNPACK refusing a model's parameters is MTAN_ERROR_UNSUPPORTED; the reference runs it") {
  fb::ModelT q = test::Int8Model(6);
  // A requantization scale s_x * s_w / s_y of about 1e4: valid int8 arithmetic
  // that XNNPACK's qc8 convolution does not accept (it needs < 256).
  for (auto& t : q.tensors)
    if (t->name == "trunk0.fc1") t->quantization->scale[0] = 1e-7f;
  const auto file = host::FinishModel(q, 4);
  test::Loaded x(file, 4, MTAN_BACKEND_XNNPACK);
  CHECK(x.status == MTAN_ERROR_UNSUPPORTED);
  CHECK(std::string(mtan_last_error()).find("trunk0.fc1") != std::string::npos);
  test::Loaded r(file, 4, MTAN_BACKEND_REFERENCE);
  CHECK(r.status == MTAN_OK);
}
