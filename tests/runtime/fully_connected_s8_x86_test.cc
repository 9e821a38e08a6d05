// The x86 VNNI int8 fully-connected kernels (runtime/src/ops/
// fully_connected_s8_x86.h) against the reference kernel: exactly equal, on
// seeded random shapes (K and N from 1 to 1024, any batch), every zero point,
// saturating scales, hostile biases that wrap the int32 sums, and the full
// int8 weight range. Every ISA this CPU has is run; one it lacks is skipped
// with a message (qemu and older cores have none). Through a model: the
// default backend (VNNI where present) gives the reference's bytes, and
// forcing MTAN_BACKEND_XNNPACK turns the kernels off.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "doctest/doctest.h"
#include "internal.h"
#include "mtan/mtan_debug.h"
#include "ops/fully_connected_s8_x86.h"
#include "ops/params.h"
#include "test_models.h"

using namespace mtan;

namespace {

struct Shape {
  uint32_t batch, in, out;
};

// Both kernels on one random layer; returns the number of differing bytes.
size_t CompareOne(const FcS8Isa& isa, std::mt19937& rng, Shape s, bool relu, int32_t zp_x,
                  int32_t zp_y, float out_scale, bool wrap) {
  std::uniform_int_distribution<int> byte(-128, 127);
  std::vector<int8_t> x(static_cast<size_t>(s.batch) * s.in), w(static_cast<size_t>(s.in) * s.out);
  for (auto& v : x) v = static_cast<int8_t>(byte(rng));
  for (auto& v : w) v = static_cast<int8_t>(byte(rng));
  std::vector<int32_t> bias(s.out);
  std::uniform_int_distribution<int32_t> small(-20000, 20000), any(INT32_MIN, INT32_MAX);
  for (auto& b : bias) b = wrap ? any(rng) : small(rng);
  std::vector<float> wscale(s.out);
  std::uniform_real_distribution<float> sd(0.0005f, 0.01f);
  for (auto& v : wscale) v = sd(rng);

  OpState op{};
  op.code = fb::OpCode::FULLY_CONNECTED;
  op.int8 = true;
  op.relu = relu;
  op.in_channels = s.in;
  op.out_channels = s.out;
  op.in0 = x.data();
  op.zp_in0 = zp_x;
  op.scale_in0 = 0.05f;
  op.zp_out = zp_y;
  op.scale_out = out_scale;
  auto& p = Params<FullyConnectedParams>(op);
  p.weights = w.data();
  p.bias = bias.data();
  p.weight_scales = wscale.data();
  // The requantization scales as the operator's prepare computes them,
  // zero padded to whole blocks as the VNNI kernels read them.
  std::vector<float> requant(PaddedChannels(s.out), 0.0f);
  for (uint32_t o = 0; o < s.out; ++o) requant[o] = op.scale_in0 * wscale[o] / op.scale_out;
  p.requant = requant.data();

  std::vector<int8_t> want(static_cast<size_t>(s.batch) * s.out), got(want.size(), 0x55);
  op.out = want.data();
  REQUIRE(RunReference(op, s.batch, nullptr, nullptr) == MTAN_OK);

  std::vector<uint8_t> packed(PackedWeightBytes(s.in, s.out));
  std::vector<int32_t> packed_bias(PaddedChannels(s.out));
  std::vector<uint8_t> scratch(static_cast<size_t>(kFcS8TileRows) * PaddedInputs(s.in));
  PackFcS8(w.data(), bias.data(), s.in, s.out, zp_x, packed.data(), packed_bias.data());
  const FcS8Packed k{packed.data(), packed_bias.data(), requant.data(), scratch.data(), s.in, s.out};
  // The output has a guard byte after it, which the kernel must not write.
  got.push_back(0x55);
  isa.run(k, x.data(), got.data(), s.batch, zp_y, relu ? zp_y : -128);
  CHECK(got.back() == 0x55);
  size_t differ = 0;
  for (size_t i = 0; i < want.size(); ++i) differ += want[i] != got[i];
  return differ;
}

}  // namespace

TEST_CASE("VNNI int8 fully-connected kernels equal the reference exactly") {
  uint32_t count = 0;
  const FcS8Isa* isas = CpuInt8FcKernels(&count);
  for (const char* name : {"avx512vnni", "avxvnni"}) {
    bool present = false;
    for (uint32_t i = 0; i < count; ++i) present |= std::string(isas[i].name) == name;
    if (!present) MESSAGE("skipped " << name << ": this CPU (or OS) does not have it");
  }
  for (uint32_t i = 0; i < count; ++i) {
    const FcS8Isa& isa = isas[i];
    CAPTURE(isa.name);
    std::mt19937 rng(17);
    // Edges of the 4-input groups, the 16-channel blocks, the 2-block and
    // 6- or 8-row tiles; then random shapes up to 1024 x 1024.
    std::vector<Shape> shapes = {{1, 1, 1},     {1, 3, 5},     {7, 4, 16},   {8, 5, 17},
                                 {9, 17, 31},   {6, 33, 32},   {13, 64, 33}, {256, 128, 64},
                                 {5, 1024, 3},  {3, 2, 1024},  {1, 48, 256}, {300, 100, 48}};
    std::uniform_int_distribution<uint32_t> dim(1, 1024), rows(1, 40);
    for (int k = 0; k < 12; ++k) shapes.push_back({rows(rng), dim(rng), dim(rng)});
    std::uniform_int_distribution<int32_t> zp(-128, 127);
    int n = 0;
    for (const Shape& s : shapes) {
      CAPTURE(s.batch);
      CAPTURE(s.in);
      CAPTURE(s.out);
      for (bool relu : {false, true}) {
        const int32_t zp_x = n % 5 == 0 ? -128 : n % 5 == 1 ? 127 : zp(rng);
        const int32_t zp_y = relu ? -128 : zp(rng);
        CAPTURE(relu);
        CAPTURE(zp_x);
        CAPTURE(zp_y);
        CHECK(CompareOne(isa, rng, s, relu, zp_x, zp_y, 0.02f, false) == 0);
        ++n;
      }
    }
    // Saturation (a tiny output scale), NaN from an infinite scale, and
    // biases anywhere in int32, whose sums wrap.
    CHECK(CompareOne(isa, rng, {37, 200, 70}, false, 3, -7, 1e-6f, false) == 0);
    CHECK(CompareOne(isa, rng, {11, 90, 20}, true, 0, -128, 0.0f, false) == 0);
    CHECK(CompareOne(isa, rng, {19, 300, 45}, false, -128, 0, 0.01f, true) == 0);
  }
}

TEST_CASE("the default backend runs int8 fully-connected layers on VNNI, with the reference's bytes") {
  uint32_t count = 0;
  const FcS8Isa* isas = CpuInt8FcKernels(&count);
  fb::ModelT q = test::Int8Model(9);
  const std::vector<uint8_t> file = host::FinishModel(q, 64);
  const std::vector<float> rows = test::RandomRows(10, 64);
  test::Loaded ref(file, 64, MTAN_BACKEND_REFERENCE);
  test::Loaded def(file, 64, MTAN_BACKEND_DEFAULT);
  REQUIRE(ref.status == MTAN_OK);
  REQUIRE(def.status == MTAN_OK);
  // Exactly the reference's outputs where the VNNI kernels run the layers
  // (elsewhere the default backend is XNNPACK's, within 1 LSB: kernels_test).
  if (count > 0) {
    CHECK(ref.Run(rows, 64, MTAN_ALL_TASKS) == def.Run(rows, 64, MTAN_ALL_TASKS));
    CHECK(ref.Run(rows, 1, 0) == def.Run(rows, 1, 0));
  }

  // Every int8 fully-connected layer names its kernel; XNNPACK forced keeps
  // them off (the fallback a core without VNNI takes).
  const bool xnnpack = mtan_backend_available(MTAN_BACKEND_XNNPACK) == MTAN_OK;
  std::vector<mtan_backend> backends = {MTAN_BACKEND_DEFAULT};
  if (xnnpack) backends.push_back(MTAN_BACKEND_XNNPACK);
  for (mtan_backend be : backends) {
    CAPTURE(be);
    test::Loaded m(file, 64, be);
    REQUIRE(m.status == MTAN_OK);
    uint32_t n = 0, fc = 0;
    REQUIRE(mtan_operator_count(m.model, &n) == MTAN_OK);
    for (uint32_t o = 0; o < n; ++o) {
      mtan_operator_info info;
      REQUIRE(mtan_operator_info_get(m.model, o, &info) == MTAN_OK);
      if (std::string(info.opcode) != "FULLY_CONNECTED" || info.dtype != MTAN_DTYPE_INT8) continue;
      ++fc;
      const std::string want = be == MTAN_BACKEND_DEFAULT && count > 0 ? isas[0].name
                               : xnnpack                               ? "xnnpack"
                                                                       : "reference";
      CHECK(std::string(info.kernel) == want);
      CHECK(info.backend == (want == "xnnpack" ? MTAN_BACKEND_XNNPACK : MTAN_BACKEND_REFERENCE));
    }
    CHECK(fc > 0);
  }
  if (count == 0) MESSAGE("this CPU has no VNNI: the default backend ran XNNPACK's kernels");
}
