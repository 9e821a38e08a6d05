// libtorch's forward computes the runtime's float function (only in builds
// with libtorch; elsewhere the peer reports that it is not built).
#include <cmath>

#include "doctest/doctest.h"
#include "model_io.h"
#include "mtan/mtan.h"
#include "synthetic.h"
#include "test_models.h"
#include "torch_peer.h"

using namespace mtan;

namespace {

// The runtime's float output vs the peer's, for all tasks and each task.
void CheckAgrees(const std::vector<uint8_t>& file, uint32_t rows_n) {
  const host::ModelBytes bytes(file);
  const fb::Model* view = fb::GetModel(bytes.data());
  std::string error;
  auto peer = bench::MakeTorchPeer(*view, &error);
  REQUIRE_MESSAGE(peer, error);
  const std::vector<float> rows = bench::RowsForModel(*view, rows_n, 77);
  for (mtan_backend backend : {MTAN_BACKEND_REFERENCE, MTAN_BACKEND_DEFAULT}) {
    host::RuntimeModel rt;
    REQUIRE_MESSAGE(rt.Load(file, rows_n, backend, &error) == MTAN_OK, error);
    uint32_t tasks = 0;
    mtan_task_count(rt.get(), &tasks);
    for (int32_t task = MTAN_ALL_TASKS; task < static_cast<int32_t>(tasks); ++task) {
      std::vector<float> want;
      REQUIRE_MESSAGE(rt.Run(rows.data(), rows_n, task, &want, &error) == MTAN_OK, error);
      std::vector<float> got(want.size(), NAN);
      REQUIRE_MESSAGE(peer->Run(rows.data(), rows_n, task, got.data(), 1, &error), error);
      for (size_t i = 0; i < want.size(); ++i)
        REQUIRE_MESSAGE(std::fabs(got[i] - want[i]) <= 1e-5f + 1e-5f * std::fabs(want[i]),
                        "task " << task << " index " << i << ": libtorch " << got[i]
                                << ", runtime " << want[i]);
    }
  }
}

}  // namespace

TEST_SUITE("torch_peer") {
  TEST_CASE("libtorch equals the runtime's float path") {
    if (!bench::TorchPeerAvailable()) {
      MESSAGE("built without libtorch: " << bench::TorchPeerDescription());
      fb::ModelT f = test::FloatModel(1);
      const auto file = host::FinishModel(f, 8);
      std::string error;
      CHECK_FALSE(bench::MakeTorchPeer(*fb::GetModel(host::ModelBytes(file).data()), &error));
      CHECK(!error.empty());
      return;
    }
    MESSAGE(bench::TorchPeerDescription());
    SUBCASE("tiny model, attention stacked as the trainer does") {
      fb::ModelT f = test::FloatModel(21);
      CheckAgrees(host::FinishModel(f, 16), 9);
    }
    SUBCASE("the default MTAN shapes") {
      bench::SyntheticModels syn;
      std::string error;
      REQUIRE_MESSAGE(bench::MakeSyntheticModels(4, 32, &syn, &error, 64), error);
      CheckAgrees(syn.float32, 32);
    }
    SUBCASE("attention weights not shared: operator by operator") {
      fb::ModelT f = test::FloatModel(22);
      // Give the first attention FC its own copy of the weights, so the
      // graph no longer has the trainer's stacked shape.
      for (auto& op : f.operators) {
        if (op->opcode != fb::OpCode::FULLY_CONNECTED) continue;
        const std::string& name = f.tensors[op->outputs[0]]->name;
        if (name.find(".att.") == std::string::npos || name.find(".fc") == std::string::npos)
          continue;
        auto w = std::make_unique<fb::TensorT>(*f.tensors[op->inputs[1]]);
        w->name += ".copy";
        auto buf = std::make_unique<fb::BufferT>(*f.buffers[w->buffer]);
        f.buffers.push_back(std::move(buf));
        w->buffer = static_cast<uint32_t>(f.buffers.size() - 1);
        f.tensors.push_back(std::move(w));
        op->inputs[1] = static_cast<int32_t>(f.tensors.size() - 1);
        break;
      }
      CheckAgrees(host::FinishModel(f, 16), 5);
    }
  }

  TEST_CASE("an int8 model is refused with a message") {
    if (!bench::TorchPeerAvailable()) return;
    fb::ModelT q = test::Int8Model(23);
    const auto file = host::FinishModel(q, 8);
    const host::ModelBytes bytes(file);
    std::string error;
    CHECK_FALSE(bench::MakeTorchPeer(*fb::GetModel(bytes.data()), &error));
    CHECK_MESSAGE(error.find("--float-model") != std::string::npos, error);
  }
}
