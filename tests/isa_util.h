// The ISAs a kernel test runs under: every one this CPU can execute (generic always, AVX2 and
// AVX-512 when present). Header-only, for tests that link the native kernels.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/native/cpu_features.h"

namespace locus::test {

inline std::vector<kernels::Isa> supported_isas() {
  using kernels::Isa;
  std::vector<Isa> v{Isa::Generic};
  if (kernels::has_avx2(kernels::detected_isa())) v.push_back(Isa::Avx2);
  if (kernels::detected_isa() == Isa::Avx512) v.push_back(Isa::Avx512);
  return v;
}

// A test fixture run once per ISA: the kernels dispatch to GetParam() for the test's duration.
class IsaTest : public ::testing::TestWithParam<kernels::Isa> {
 protected:
  void SetUp() override {
    kernels::set_isa_override(GetParam());
    ASSERT_EQ(kernels::active_isa(), GetParam());
  }
  void TearDown() override { kernels::clear_isa_override(); }
};

inline std::string isa_param_name(const ::testing::TestParamInfo<kernels::Isa>& info) {
  return kernels::isa_name(info.param);
}

}  // namespace locus::test
