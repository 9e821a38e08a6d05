// The operator registry (runtime/src/ops/registry.cc): one complete
// registration per opcode of the schema, each at its own opcode's index.
#include "doctest/doctest.h"
#include "internal.h"

using namespace mtan;

TEST_CASE("registry: every opcode has its own registration with the required parts") {
  for (int i = static_cast<int>(fb::OpCode::MIN); i <= static_cast<int>(fb::OpCode::MAX); ++i) {
    const fb::OpCode code = static_cast<fb::OpCode>(i);
    CAPTURE(fb::EnumNameOpCode(code));
    const OpRegistration* reg = FindOp(code);
    REQUIRE(reg != nullptr);
    CHECK(reg->code == code);
    // (Function pointers compared outside CHECK: doctest prints operands.)
    const bool complete = reg->verify != nullptr && reg->float_bound != nullptr && reg->eval != nullptr;
    CHECK(complete);
    // XNNPACK: all three parts or none.
    const bool handles = reg->xnn_handles != nullptr, create = reg->xnn_create != nullptr,
               setup = reg->xnn_setup != nullptr;
    CHECK(handles == create);
    CHECK(create == setup);
  }
  CHECK(FindOp(static_cast<fb::OpCode>(static_cast<int>(fb::OpCode::MAX) + 1)) == nullptr);
  CHECK(FindOp(static_cast<fb::OpCode>(255)) == nullptr);
}

TEST_CASE("registry: only QUANTIZE reads the model input, only FULLY_CONNECTED fuses RELU") {
  for (int i = static_cast<int>(fb::OpCode::MIN); i <= static_cast<int>(fb::OpCode::MAX); ++i) {
    const fb::OpCode code = static_cast<fb::OpCode>(i);
    CAPTURE(fb::EnumNameOpCode(code));
    CHECK(FindOp(code)->reads_model_input == (code == fb::OpCode::QUANTIZE));
    CHECK(FindOp(code)->fuses_relu == (code == fb::OpCode::FULLY_CONNECTED));
  }
}
