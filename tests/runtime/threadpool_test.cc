// mtan_run's `threadpool`: XNNPACK's operators split across a pthreadpool's
// threads must give the rows the calling thread alone gives, bit for bit,
// float and int8, at every batch (each new batch sets the operators up again).
#include <pthreadpool.h>

#include <cstring>
#include <vector>

#include "doctest/doctest.h"
#include "test_models.h"

using namespace mtan;

namespace {

void ExpectSameWithPool(fb::ModelT m, const char* what) {
  CAPTURE(what);
  const uint32_t max_batch = 64;
  test::Loaded rt(host::FinishModel(m, max_batch), max_batch, MTAN_BACKEND_XNNPACK);
  REQUIRE_MESSAGE(rt.status == MTAN_OK, mtan_last_error());
  uint32_t per_row = 0;
  REQUIRE(mtan_output_size(rt.model, MTAN_ALL_TASKS, &per_row) == MTAN_OK);
  const auto rows = test::RandomRows(17, max_batch);
  pthreadpool_t pool = pthreadpool_create(2);
  REQUIRE(pool != nullptr);
  for (uint32_t batch : {1u, 3u, 16u, 64u, 1u}) {
    CAPTURE(batch);
    std::vector<float> alone(batch * per_row), pooled(batch * per_row);
    REQUIRE(mtan_run(rt.model, rows.data(), batch, MTAN_ALL_TASKS, alone.data(), alone.size(), nullptr) == MTAN_OK);
    REQUIRE(mtan_run(rt.model, rows.data(), batch, MTAN_ALL_TASKS, pooled.data(), pooled.size(), pool) == MTAN_OK);
    size_t differ = 0;
    float worst = 0;
    for (size_t i = 0; i < alone.size(); ++i) {
      differ += std::memcmp(&alone[i], &pooled[i], sizeof(float)) != 0;
      worst = std::max(worst, std::fabs(alone[i] - pooled[i]));
    }
    CHECK_MESSAGE(differ == 0, differ << " of " << alone.size() << " values differ, by up to " << worst);
    // And back to the calling thread alone.
    std::vector<float> again(batch * per_row);
    REQUIRE(mtan_run(rt.model, rows.data(), batch, MTAN_ALL_TASKS, again.data(), again.size(), nullptr) == MTAN_OK);
    CHECK(again == alone);
  }
  pthreadpool_destroy(pool);
}

}  // namespace

TEST_CASE("a pthreadpool of 2 threads gives the rows the calling thread gives, float and int8") {
  REQUIRE(mtan_init() == MTAN_OK);
  ExpectSameWithPool(test::FloatModel(11), "float32");
  ExpectSameWithPool(test::Int8Model(11), "int8");
}
