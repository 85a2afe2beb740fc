// The real MobileNetV2 against ONNX Runtime's stored outputs, shared by the backend tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "importers/onnx/onnx_importer.h"
#include "runtime/session.h"
#include "tests/graph_builder_util.h"

namespace locus::test {

// Runs the five test_data_set_N of `dir` through `s`: each output within rtol 1e-3 / atol 1e-4 of
// ONNX Runtime's and the top-1 class of test_data_sets.tsv.
inline void expect_matches_onnx_runtime(Session& s, const std::string& dir, const std::string& label) {
  const int64_t expected_top1[5] = {282, 249, 22, 12, 457};  // test_data_sets.tsv (ONNX Runtime)
  for (int k = 0; k < 5; ++k) {
    std::string set = dir + "/test_data_set_" + std::to_string(k);
    Tensor in = onnx_import::load_tensor_file(set + "/input_0.pb");
    Tensor want = onnx_import::load_tensor_file(set + "/output_0.pb");
    auto out = s.run({{"input", in}});
    std::string why;
    EXPECT_TRUE(allclose(out[0], want, 1e-3, 1e-4, why)) << label << " set " << k << ": " << why;
    EXPECT_EQ(argmax(out[0]), expected_top1[k]) << label << " set " << k;
    EXPECT_EQ(argmax(want), expected_top1[k]) << "stored reference, set " << k;
  }
}

// The indices of t's five largest elements, largest first; ties (equal dequantized logits are common)
// broken by the lower index, for both sides of a comparison alike.
inline std::vector<int64_t> top5(const Tensor& t) {
  std::vector<int64_t> idx(size_t(t.numel()));
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return t.get(a) > t.get(b); });
  idx.resize(5);
  return idx;
}

}  // namespace locus::test
