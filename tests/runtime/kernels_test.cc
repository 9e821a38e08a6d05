// Each XNNPACK-backed operator against its scalar reference kernel on seeded
// random data: batch 1 and larger, odd sizes, and saturating scales. Int8
// results agree within 1 LSB. The reference-only operators are checked
// against a direct double-precision evaluation of their definitions.
#include <cmath>
#include <random>
#include <vector>

#include "doctest/doctest.h"
#include "internal.h"
#include "ops/params.h"

using namespace mtan;

namespace {

struct Buffers {
  std::vector<int8_t> a, b, y_ref, y_xnn;
  std::vector<float> fa, fb, fy_ref, fy_xnn;
};

std::vector<int8_t> RandomS8(std::mt19937& rng, size_t n) {
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<int8_t> v(n + 16);  // XNN_EXTRA_BYTES of readable padding
  for (auto& x : v) x = static_cast<int8_t>(d(rng));
  return v;
}
std::vector<float> RandomF32(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n + 4);
  for (auto& x : v) x = d(rng);
  return v;
}

// Runs `op` through XNNPACK (allocating into a local arena) and the
// reference kernel, each writing its own output buffer.
void RunBoth(OpState op, uint32_t batch, void* ref_out, void* xnn_out) {
  REQUIRE(mtan_init() == MTAN_OK);
  op.out = ref_out;
  REQUIRE(RunReference(op, batch, nullptr, nullptr) == MTAN_OK);
  REQUIRE(XnnpackHandles(op));
  std::vector<uint8_t> storage(1 << 22);
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(storage.data()) + 63) & ~uintptr_t{63});
  XnnArena arena{base, storage.size() - 64, 0, false};
  op.out = xnn_out;
  GlobalLock();
  const mtan_status s = XnnpackCreate(&op, &arena, "test");
  GlobalUnlock();
  REQUIRE_MESSAGE(s == MTAN_OK, std::string(mtan_last_error()));
  REQUIRE(XnnpackRun(&op, batch, nullptr) == MTAN_OK);
  XnnpackDelete(&op);
}

int MaxDiff(const int8_t* a, const int8_t* b, size_t n) {
  int d = 0;
  for (size_t i = 0; i < n; ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

}  // namespace

TEST_CASE("FULLY_CONNECTED int8 per-channel: XNNPACK within 1 LSB of reference") {
  std::mt19937 rng(1);
  struct Case { uint32_t batch, in, out; bool relu; float out_scale; };
  const Case cases[] = {{1, 48, 256, true, 0.05f},  {7, 3, 5, true, 0.02f},   {64, 17, 33, false, 0.03f},
                        {1, 1, 1, false, 0.01f},    {256, 128, 64, true, 0.04f},
                        {5, 64, 9, false, 0.0005f} /* saturates */};
  for (const Case& c : cases) {
    CAPTURE(c.batch);
    CAPTURE(c.in);
    CAPTURE(c.out);
    auto x = RandomS8(rng, static_cast<size_t>(c.batch) * c.in);
    auto w = RandomS8(rng, static_cast<size_t>(c.in) * c.out);
    for (auto& v : w) v = v == -128 ? -127 : v;  // symmetric weights
    std::vector<int32_t> bias(c.out);
    std::uniform_int_distribution<int> bd(-2000, 2000);
    for (auto& b : bias) b = bd(rng);
    std::vector<float> wscale(c.out), requant(c.out);
    std::uniform_real_distribution<float> sd(0.002f, 0.02f);
    for (auto& s : wscale) s = sd(rng);
    OpState op{};
    op.code = fb::OpCode::FULLY_CONNECTED;
    op.int8 = true;
    op.relu = c.relu;
    op.in_channels = c.in;
    op.out_channels = c.out;
    op.in0 = x.data();
    auto& p = Params<FullyConnectedParams>(op);
    p.weights = w.data();
    p.bias = bias.data();
    op.zp_in0 = -5;
    op.scale_in0 = 0.1f;
    op.zp_out = c.relu ? -128 : 3;
    op.scale_out = c.out_scale;
    for (uint32_t o = 0; o < c.out; ++o) requant[o] = op.scale_in0 * wscale[o] / op.scale_out;
    p.requant = requant.data();
    p.weight_scales = wscale.data();
    std::vector<int8_t> yr(static_cast<size_t>(c.batch) * c.out), yx(yr.size());
    RunBoth(op, c.batch, yr.data(), yx.data());
    CHECK(MaxDiff(yr.data(), yx.data(), yr.size()) <= 1);
    if (c.relu)
      for (int8_t v : yr) CHECK(v >= -128);
    if (c.out_scale < 0.001f) {
      int saturated = 0;
      for (int8_t v : yr) saturated += v == 127 || v == -128;
      CHECK(saturated > static_cast<int>(yr.size()) / 4);
    }
  }
}

TEST_CASE("FULLY_CONNECTED float32: XNNPACK matches reference") {
  std::mt19937 rng(2);
  for (auto [batch, in, out] : {std::tuple{1u, 48u, 256u}, {9u, 5u, 3u}, {64u, 33u, 17u}}) {
    for (bool relu : {false, true}) {
      auto x = RandomF32(rng, static_cast<size_t>(batch) * in);
      auto w = RandomF32(rng, static_cast<size_t>(in) * out, 0.3f);
      auto b = RandomF32(rng, out);
      OpState op{};
      op.code = fb::OpCode::FULLY_CONNECTED;
      op.relu = relu;
      op.in_channels = in;
      op.out_channels = out;
      op.in0 = x.data();
      Params<FullyConnectedParams>(op).weights = w.data();
      Params<FullyConnectedParams>(op).bias = b.data();
      std::vector<float> yr(static_cast<size_t>(batch) * out), yx(yr.size());
      RunBoth(op, batch, yr.data(), yx.data());
      for (size_t i = 0; i < yr.size(); ++i) CHECK(yx[i] == doctest::Approx(yr[i]).epsilon(1e-4).scale(1.0));
    }
  }
}

TEST_CASE("LOGISTIC and TANH int8: fixed output scales, within 1 LSB") {
  std::mt19937 rng(3);
  for (fb::OpCode code : {fb::OpCode::LOGISTIC, fb::OpCode::TANH}) {
    for (uint32_t batch : {1u, 13u}) {
      const uint32_t c = 37;
      auto x = RandomS8(rng, static_cast<size_t>(batch) * c);
      OpState op{};
      op.code = code;
      op.int8 = true;
      op.in_channels = op.out_channels = c;
      op.in0 = x.data();
      op.zp_in0 = 7;
      op.scale_in0 = 0.06f;
      op.scale_out = code == fb::OpCode::LOGISTIC ? 1.0f / 256 : 1.0f / 128;
      op.zp_out = code == fb::OpCode::LOGISTIC ? -128 : 0;
      int8_t lut[256];
      if (code == fb::OpCode::LOGISTIC) BuildSigmoidLut(op.scale_in0, op.zp_in0, lut);
      else BuildTanhLut(op.scale_in0, op.zp_in0, lut);
      Params<LookupParams>(op).lut = lut;
      std::vector<int8_t> yr(static_cast<size_t>(batch) * c), yx(yr.size());
      RunBoth(op, batch, yr.data(), yx.data());
      CHECK(MaxDiff(yr.data(), yx.data(), yr.size()) <= 1);
      // And the reference is the function: sigmoid(0) = 0.5 -> q = 0.
      const int8_t at_zero = lut[static_cast<uint8_t>(static_cast<int8_t>(op.zp_in0))];
      CHECK(at_zero == 0);
    }
  }
}

TEST_CASE("MUL and ADD int8 within 1 LSB, float32 exact") {
  std::mt19937 rng(4);
  for (fb::OpCode code : {fb::OpCode::MUL, fb::OpCode::ADD}) {
    for (uint32_t batch : {1u, 31u}) {
      const uint32_t c = 19;
      auto a = RandomS8(rng, static_cast<size_t>(batch) * c), b = RandomS8(rng, static_cast<size_t>(batch) * c);
      OpState op{};
      op.code = code;
      op.int8 = true;
      op.in_channels = op.out_channels = c;
      op.in0 = a.data();
      op.in1 = b.data();
      op.zp_in0 = -128;
      op.scale_in0 = 1.0f / 256;
      op.zp_in1 = 4;
      op.scale_in1 = 0.05f;
      op.zp_out = -2;
      op.scale_out = code == fb::OpCode::MUL ? 0.02f : 0.03f;
      std::vector<int8_t> yr(static_cast<size_t>(batch) * c), yx(yr.size());
      RunBoth(op, batch, yr.data(), yx.data());
      CHECK(MaxDiff(yr.data(), yx.data(), yr.size()) <= 1);

      auto fa = RandomF32(rng, static_cast<size_t>(batch) * c), fbv = RandomF32(rng, static_cast<size_t>(batch) * c);
      OpState f{};
      f.code = code;
      f.in_channels = f.out_channels = c;
      f.in0 = fa.data();
      f.in1 = fbv.data();
      std::vector<float> fr(static_cast<size_t>(batch) * c), fx(fr.size());
      RunBoth(f, batch, fr.data(), fx.data());
      CHECK(fr == fx);
    }
  }
}

TEST_CASE("reference-only kernels match their definitions") {
  std::mt19937 rng(5);
  const uint32_t batch = 3, t = 3, c = 5;
  // ATTENTION_POOL, float: c = sum_s softmax(e)_s z_s.
  std::vector<std::vector<float>> e(t), z(t);
  const void* ptrs[2 * t];
  for (uint32_t s = 0; s < t; ++s) {
    e[s] = RandomF32(rng, batch, 2.0f);
    z[s] = RandomF32(rng, batch * c);
    ptrs[s] = e[s].data();
    ptrs[t + s] = z[s].data();
  }
  OpState op{};
  op.code = fb::OpCode::ATTENTION_POOL;
  op.in_channels = 1;
  op.out_channels = c;
  Params<AttentionPoolParams>(op).inputs = 2 * t;
  Params<AttentionPoolParams>(op).ptrs = ptrs;
  std::vector<float> y(batch * c);
  op.out = y.data();
  REQUIRE(RunReference(op, batch, nullptr, nullptr) == MTAN_OK);
  for (uint32_t r = 0; r < batch; ++r) {
    double w[t], sum = 0;
    for (uint32_t s = 0; s < t; ++s) sum += w[s] = std::exp(static_cast<double>(e[s][r]));
    for (uint32_t k = 0; k < c; ++k) {
      double want = 0;
      for (uint32_t s = 0; s < t; ++s) want += w[s] / sum * z[s][r * c + k];
      CHECK(y[r * c + k] == doctest::Approx(want).epsilon(1e-5));
    }
  }
  // SOFTMAX rows sum to one and keep the order; huge logits do not overflow.
  std::vector<float> logits = {1000.0f, 999.0f, -5.0f, 0.0f, 0.5f, 0.25f};
  std::vector<float> p(6);
  OpState sm{};
  sm.code = fb::OpCode::SOFTMAX;
  sm.in_channels = sm.out_channels = 3;
  sm.in0 = logits.data();
  sm.out = p.data();
  REQUIRE(RunReference(sm, 2, nullptr, nullptr) == MTAN_OK);
  CHECK(p[0] + p[1] + p[2] == doctest::Approx(1.0));
  CHECK(p[0] == doctest::Approx(1.0 / (1.0 + std::exp(-1.0))));
  CHECK(p[3] < p[5]);
  CHECK(p[5] < p[4]);
  // DEQUANTIZE is scale * (q - zero_point).
  std::vector<int8_t> q = {-128, 0, 127};
  std::vector<float> d(3);
  OpState dq{};
  dq.code = fb::OpCode::DEQUANTIZE;
  dq.int8 = true;
  dq.in_channels = dq.out_channels = 3;
  dq.in0 = q.data();
  dq.out = d.data();
  dq.scale_in0 = 0.5f;
  dq.zp_in0 = 2;
  REQUIRE(RunReference(dq, 1, nullptr, nullptr) == MTAN_OK);
  CHECK(d == std::vector<float>{-65.0f, -1.0f, 62.5f});
}

TEST_CASE("an XNNPACK failure at run time is MTAN_ERROR_BACKEND") {
  std::vector<float> x(8 + 4), w(4), b(1), y(8);
  OpState op{};
  op.code = fb::OpCode::FULLY_CONNECTED;
  op.in_channels = 4;
  op.out_channels = 1;
  op.in0 = x.data();
  op.out = y.data();
  Params<FullyConnectedParams>(op).weights = w.data();
  Params<FullyConnectedParams>(op).bias = b.data();
  std::vector<uint8_t> storage(1 << 16);
  uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(storage.data()) + 63) & ~uintptr_t{63});
  XnnArena arena{base, storage.size() - 64, 0, false};
  REQUIRE(mtan_init() == MTAN_OK);
  GlobalLock();
  REQUIRE(XnnpackCreate(&op, &arena, "fc") == MTAN_OK);
  GlobalUnlock();
  // Pretend it was set up: XNNPACK refuses to run an operator never set up.
  op.setup_batch = 2;
  CHECK(XnnpackRun(&op, 2, nullptr) == MTAN_ERROR_BACKEND);
  CHECK(std::string(mtan_last_error()).find("XNNPACK failed to run") != std::string::npos);
  XnnpackDelete(&op);
}
