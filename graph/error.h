// One exception type for everything a user can get wrong (bad file, bad model, bad input) and for
// everything the runtime does not support. Messages are one line and name the problem.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace locus {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An operator, dtype or attribute combination the runtime does not implement. `locus check` counts
// these as skipped, not failed.
class Unsupported : public Error {
 public:
  using Error::Error;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... R>
void append(std::ostringstream& o, const T& t, const R&... r) {
  o << t;
  append(o, r...);
}
}  // namespace detail

template <class... A>
std::string cat(const A&... a) {
  std::ostringstream o;
  detail::append(o, a...);
  return o.str();
}

template <class... A>
[[noreturn]] void fail(const A&... a) {
  throw Error(cat(a...));
}

#define LOCUS_CHECK(cond, ...)                  \
  do {                                          \
    if (!(cond)) ::locus::fail(__VA_ARGS__);    \
  } while (0)

}  // namespace locus
