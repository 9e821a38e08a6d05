#include "arch.h"

#include <cstdlib>

#include <doctest/doctest.h>

using namespace mtan::trainer;

TEST_SUITE("arch") {

TEST_CASE("parameter count by hand") {
  ModelConfig c;
  c.arch = Arch::kSharedBottom;
  c.inputs = 10;
  c.trunk = {8};
  c.task_width = 4;
  c.outputs = {1, 3};
  // trunk 10*8+8 = 88; tasks: (8*4+4) + (4*1+1) = 41 and (8*4+4) + (4*3+3) = 51.
  CHECK(ParamCount(c) == 88 + 41 + 51);
  c.arch = Arch::kMtan;
  c.mask_hidden = 2;
  c.att_hidden = 5;
  // + per task: masks (8*2+2) + (2*8+8) = 42, cross (4*5+5) + (5+1) = 31.
  CHECK(ParamCount(c) == 88 + 41 + 51 + 2 * (42 + 31));
  c.arch = Arch::kSingle;
  CHECK(ParamCount(c) == 2 * 88 + 41 + 51);
}

TEST_CASE("single and widened shared-bottom match mtan's size") {
  ModelConfig c;
  c.inputs = 41;
  c.outputs = {1, 1, 5, 1};
  const int64_t mtan = ParamCount(c);
  for (Arch a : {Arch::kSingle, Arch::kSharedBottom}) {
    ModelConfig m = c;
    m.arch = a;
    m.trunk = MatchTrunk(m, mtan);
    CHECK(std::llabs(ParamCount(m) - mtan) < mtan / 50);
    CHECK(m.trunk[0] > m.trunk[1]);
  }
}

TEST_CASE("architecture names") {
  Arch a;
  for (const char* n : {"mtan", "mtan-mask", "mtan-cross", "shared-bottom", "single"}) {
    REQUIRE(ParseArch(n, &a));
    CHECK(std::string(ArchName(a)) == n);
  }
  CHECK_FALSE(ParseArch("mmoe", &a));
}

}  // TEST_SUITE
