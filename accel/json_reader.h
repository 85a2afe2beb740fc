// The strict JSON reader of the accelerator configs (accel/presets/*, user files), on nlohmann-json.
// RFC 8259 only: objects, arrays, strings (all escapes, \u with surrogate pairs, to UTF-8), numbers,
// true/false/null; no comments, no trailing commas, no duplicate keys, nothing after the value.
// Limits: nesting depth kMaxDepth, text kMaxBytes. Errors are locus::Error, one line:
// "<where>:<line>:<column>: <problem>" (1-based; columns count bytes).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace locus::accel::json {

inline constexpr int kMaxDepth = 64;
inline constexpr size_t kMaxBytes = 1 << 20;  // 1 MiB

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // in file order, keys unique
  int line = 0, column = 0;                           // where the value starts

  // Out of line (json_reader.cpp): `object` holds pairs of Value, so the special members must not be
  // instantiated while Value is incomplete (clang refuses that).
  Value() = default;
  Value(const Value&);
  Value(Value&&) noexcept;
  Value& operator=(const Value&);
  Value& operator=(Value&&) noexcept;
  ~Value();

  bool is_object() const { return kind == Kind::Object; }
  bool is_string() const { return kind == Kind::String; }
  bool is_number() const { return kind == Kind::Number; }
  // the member named `key` of an object, or nullptr
  const Value* find(std::string_view key) const;
};

const char* kind_name(Value::Kind k);

// Parses `text`; `where` names it in errors (a path, "preset 'default'", ...).
Value parse(std::string_view text, const std::string& where);
// Reads and parses a file (at most kMaxBytes). Errors name the path.
Value parse_file(const std::string& path);

}  // namespace locus::accel::json
