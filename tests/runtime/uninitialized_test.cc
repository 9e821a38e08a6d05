// Loading before mtan_init() is a status, not a crash.

#include "test_models.h"

#include "doctest/doctest.h"

// Its own program: every other test calls mtan_init first.
TEST_CASE("loading before mtan_init() is MTAN_ERROR_NOT_INITIALIZED") {
  using namespace mtan;
  fb::ModelT m = test::FloatModel(1);
  const host::ModelBytes bytes(host::FinishModel(m, 4));
  size_t need = 0;
  const mtan_status s = mtan_arena_size(bytes.data(), bytes.size(), nullptr, &need);
  CHECK(s == MTAN_ERROR_NOT_INITIALIZED);
}
