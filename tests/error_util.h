// Expecting a one-line locus::Error from a test.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <string>

#include "graph/error.h"

namespace locus::test {

// Runs f, expects a locus::Error (or the subclass E, e.g. Unsupported) whose message is one line and
// contains every one of `parts`.
template <class E = Error>
void expect_one_line_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << *parts.begin() << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

}  // namespace locus::test
