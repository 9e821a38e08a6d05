// The debug API (mtan/mtan_debug.h): the operators of a loaded model, one by
// one, as mtan-bench's per-operator profile uses them.
#include <cmath>
#include <cstring>
#include <string>

#include "doctest/doctest.h"
#include "mtan/mtan_debug.h"
#include "test_models.h"

using namespace mtan;

TEST_CASE("operator info matches the file, and the plan run operator by operator is mtan_run") {
  for (bool int8 : {false, true}) {
    for (mtan_backend backend : {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_REFERENCE}) {
      CAPTURE(int8);
      CAPTURE(backend);
      if (mtan_backend_available(backend) != MTAN_OK) continue;
      fb::ModelT f = int8 ? test::Int8Model(5) : test::FloatModel(5);
      const std::vector<uint8_t> file = host::FinishModel(f, 16);
      test::Loaded m(file, 16, backend);
      REQUIRE(m.status == MTAN_OK);
      uint32_t n = 0;
      REQUIRE(mtan_operator_count(m.model, &n) == MTAN_OK);
      REQUIRE(n == f.operators.size());
      int xnn = 0;
      for (uint32_t o = 0; o < n; ++o) {
        mtan_operator_info info;
        REQUIRE(mtan_operator_info_get(m.model, o, &info) == MTAN_OK);
        const fb::OperatorT& op = *f.operators[o];
        const fb::TensorT& x = *f.tensors[op.inputs[0]];
        const fb::TensorT& y = *f.tensors[op.outputs[0]];
        CHECK(std::string(info.opcode) == fb::EnumNameOpCode(op.opcode));
        CHECK(std::string(info.output) == y.name);
        CHECK(info.in_channels == static_cast<uint32_t>(x.shape[0]));
        CHECK(info.out_channels == static_cast<uint32_t>(y.shape[0]));
        const bool computes_int8 = x.dtype == fb::DType::INT8 || y.dtype == fb::DType::INT8;
        CHECK(info.dtype == (computes_int8 ? 1u : 0u));
        CHECK(info.macs_per_row == (op.opcode == fb::OpCode::FULLY_CONNECTED
                                        ? static_cast<uint64_t>(x.shape[0]) * y.shape[0]
                                        : 0u));
        if (backend == MTAN_BACKEND_REFERENCE) CHECK(info.backend == MTAN_BACKEND_REFERENCE);
        xnn += info.backend == MTAN_BACKEND_XNNPACK;
      }
      // On XNNPACK the fully-connected layers at least run there.
      if (backend == MTAN_BACKEND_XNNPACK) CHECK(xnn > 0);

      const std::vector<float> rows = test::RandomRows(6, 16);
      for (int32_t task = 0; task < static_cast<int32_t>(f.tasks.size()); ++task) {
        const uint32_t* plan = nullptr;
        uint32_t length = 0;
        REQUIRE(mtan_task_plan(m.model, task, &plan, &length) == MTAN_OK);
        REQUIRE(length == f.tasks[task]->plan.size());
        for (uint32_t i = 0; i < length; ++i) CHECK(plan[i] == f.tasks[task]->plan[i]);
        const std::vector<float> want = m.Run(rows, 16, task);
        // Poison the output tensor, then run the plan by hand.
        mtan_tensor_desc d;
        REQUIRE(mtan_tensor_get(m.model, static_cast<uint32_t>(f.tasks[task]->output), &d) == MTAN_OK);
        std::memset(const_cast<void*>(d.data), 0x7f, sizeof(float) * d.channels * 16);
        for (uint32_t i = 0; i < length; ++i)
          REQUIRE(mtan_operator_run(m.model, plan[i], rows.data(), 16, nullptr) == MTAN_OK);
        const float* got = static_cast<const float*>(d.data);
        const bool expm1 = f.tasks[task]->transform == fb::OutputTransform::EXPM1;
        for (size_t k = 0; k < want.size(); ++k)
          CHECK((expm1 ? std::expm1(got[k]) : got[k]) == doctest::Approx(want[k]).epsilon(1e-6));
      }
      const uint32_t* plan = &n;
      uint32_t length = 0;
      REQUIRE(mtan_task_plan(m.model, MTAN_ALL_TASKS, &plan, &length) == MTAN_OK);
      CHECK(plan == nullptr);
      CHECK(length == n);
    }
  }
}

TEST_CASE("the debug API refuses bad arguments with a status") {
  fb::ModelT f = test::FloatModel(5);
  test::Loaded m(host::FinishModel(f, 4), 4, MTAN_BACKEND_DEFAULT);
  REQUIRE(m.status == MTAN_OK);
  const std::vector<float> rows = test::RandomRows(6, 8);
  uint32_t n = 0;
  mtan_operator_info info;
  const uint32_t* plan = nullptr;
  CHECK(mtan_operator_count(nullptr, &n) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_operator_count(m.model, nullptr) == MTAN_ERROR_INVALID_ARGUMENT);
  REQUIRE(mtan_operator_count(m.model, &n) == MTAN_OK);
  CHECK(mtan_operator_info_get(m.model, n, &info) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(std::string(mtan_last_error()).find("out of range") != std::string::npos);
  CHECK(mtan_operator_info_get(m.model, 0, nullptr) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_task_plan(m.model, 3, &plan, &n) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_task_plan(m.model, -2, &plan, &n) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_task_plan(m.model, 0, nullptr, &n) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_operator_run(m.model, 0, rows.data(), 0, nullptr) == MTAN_ERROR_BATCH);
  CHECK(mtan_operator_run(m.model, 0, rows.data(), 5, nullptr) == MTAN_ERROR_BATCH);
  CHECK(mtan_operator_run(m.model, 0, nullptr, 1, nullptr) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_operator_run(m.model, 1000, rows.data(), 1, nullptr) == MTAN_ERROR_INVALID_ARGUMENT);
  CHECK(mtan_operator_run(m.model, 0, rows.data(), 4, nullptr) == MTAN_OK);
  CHECK(mtan_backend_available(MTAN_BACKEND_REFERENCE) == MTAN_OK);
  CHECK(mtan_backend_available(99) == MTAN_ERROR_INVALID_ARGUMENT);
}
