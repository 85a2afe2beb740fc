// The accelerator configs' JSON reader (accel/json_reader.h) on nlohmann-json's SAX parser: the
// events build a Value tree; the line and column of each value come from the bytes the lexer has
// read when the event fires (a counting input iterator), so errors keep "<where>:<line>:<col>:".
#include "accel/json_reader.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "graph/error.h"

namespace locus::accel::json {

Value::Value(const Value&) = default;
Value::Value(Value&&) noexcept = default;
Value& Value::operator=(const Value&) = default;
Value& Value::operator=(Value&&) noexcept = default;
Value::~Value() = default;

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : object)
    if (k == key) return &v;
  return nullptr;
}

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::Null: return "null";
    case Value::Kind::Bool: return "a boolean";
    case Value::Kind::Number: return "a number";
    case Value::Kind::String: return "a string";
    case Value::Kind::Array: return "an array";
    case Value::Kind::Object: return "an object";
  }
  return "?";
}

namespace {

// An input iterator over the text that publishes how many bytes nlohmann's lexer has read: at each
// SAX event that count locates the token just scanned (plus one byte of lookahead after a number).
struct CountingIterator {
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;
  const char* p = nullptr;
  const char* base = nullptr;
  size_t* consumed = nullptr;
  reference operator*() const { return *p; }
  CountingIterator& operator++() {
    ++p;
    *consumed = size_t(p - base);
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const CountingIterator& o) const { return p == o.p; }
  bool operator!=(const CountingIterator& o) const { return p != o.p; }
};

bool number_char(char c) { return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'; }

// Builds the Value tree from nlohmann's SAX events, with the line and column where each value
// starts; refuses duplicate keys and nesting deeper than kMaxDepth.
class Builder : public nlohmann::json_sax<nlohmann::json> {
 public:
  Builder(std::string_view text, const std::string& where, const size_t* consumed)
      : t_(text), where_(where), consumed_(consumed) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < t_.size(); ++i)
      if (t_[i] == '\n') line_starts_.push_back(i + 1);
  }

  bool null() override { return put(Value{}, literal_start(4)); }
  bool boolean(bool b) override {
    Value v;
    v.kind = Value::Kind::Bool;
    v.boolean = b;
    return put(std::move(v), literal_start(b ? 4 : 5));
  }
  bool number_integer(number_integer_t x) override { return number(double(x)); }
  bool number_unsigned(number_unsigned_t x) override { return number(double(x)); }
  bool number_float(number_float_t x, const string_t&) override { return number(double(x)); }
  bool string(string_t& s) override {
    Value v;
    v.kind = Value::Kind::String;
    v.string = std::move(s);
    return put(std::move(v), string_start());
  }
  bool binary(binary_t&) override { return refuse(pos() - 1, "binary values are not JSON"); }
  bool start_object(std::size_t) override { return open(Value::Kind::Object); }
  bool key(string_t& k) override {
    const size_t at = string_start();
    if (!keys_.back().insert(k).second) return refuse(at, cat("duplicate key '", k, "'"));
    key_ = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(Value::Kind::Array); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) override {
    // nlohmann's message without "[json.exception...] parse error at line L, column C: " and without
    // its "last read: '...'" (the lexer's buffer, which spans several tokens)
    std::string msg = ex.what();
    if (msg.compare(0, 16, "[json.exception.") == 0 && msg.find("] ") != std::string::npos)
      msg = msg.substr(msg.find("] ") + 2);
    if (msg.compare(0, 19, "parse error at line") == 0 && msg.find(": ") != std::string::npos)
      msg = msg.substr(msg.find(": ") + 2);
    const size_t lr = msg.find("; last read: '");
    if (lr != std::string::npos) {
      const size_t end = msg.find("'; ", lr + 14);
      msg.erase(lr, end == std::string::npos ? std::string::npos : end + 1 - lr);
    }
    const std::string_view eof_text = "unexpected end of input";
    // where the offending token starts: the lexer stops after it (a string: at its closing quote)
    size_t at = std::min(position > 0 ? position - 1 : 0, t_.size() > 0 ? t_.size() - 1 : 0);
    if (msg.find("string literal") != std::string::npos && at < t_.size() && t_[at] == '"')
      at = string_start_before(at);
    else if (msg.find("invalid string") != std::string::npos)  // the string it is in
      at = string_start_before(std::min(at + 1, t_.size()));
    if (done_ && msg.find(eof_text) == std::string::npos) msg = "unexpected text after the JSON value (" + msg + ")";
    if (error_.empty()) error_ = located(at, msg);
    return false;
  }

  Value result() { return std::move(root_); }
  const std::string& error() const { return error_; }
  std::string located(size_t at, const std::string& msg) const {
    at = std::min(at, t_.size());
    const size_t line = size_t(std::upper_bound(line_starts_.begin(), line_starts_.end(), at) - line_starts_.begin());
    return cat(where_, ":", line, ":", at - line_starts_[line - 1] + 1, ": ", msg);
  }

 private:
  std::string_view t_;
  const std::string& where_;
  const size_t* consumed_;
  std::vector<size_t> line_starts_;
  Value root_;
  std::vector<Value*> stack_;  // open containers
  std::vector<std::unordered_set<std::string>> keys_;
  std::string key_;
  bool done_ = false;  // the top-level value is complete
  std::string error_;

  size_t pos() const { return std::min(*consumed_, t_.size()); }
  size_t literal_start(size_t len) const { return pos() >= len ? pos() - len : 0; }
  // the opening quote of the string whose closing quote was read last
  size_t string_start() const { return string_start_before(pos() >= 1 ? pos() - 1 : 0); }
  size_t string_start_before(size_t q) const {
    while (q > 0) {
      --q;
      if (t_[q] != '"') continue;
      size_t slashes = 0;
      while (q > slashes && t_[q - 1 - slashes] == '\\') ++slashes;
      if (slashes % 2 == 0) return q;
    }
    return 0;
  }
  size_t number_start() const {
    size_t e = pos();
    if (e > 0 && !number_char(t_[e - 1])) --e;  // the lookahead byte after the number
    while (e > 0 && number_char(t_[e - 1])) --e;
    return e;
  }
  bool number(double d) {
    const size_t at = number_start();
    if (!std::isfinite(d)) return refuse(at, "number out of range");
    Value v;
    v.kind = Value::Kind::Number;
    v.number = d;
    return put(std::move(v), at);
  }
  bool refuse(size_t at, const std::string& msg) {
    if (error_.empty()) error_ = located(at, msg);
    return false;
  }
  // Places a value at the current position of the tree; returns the slot.
  Value* place(Value v, size_t at) {
    const size_t line = size_t(std::upper_bound(line_starts_.begin(), line_starts_.end(), at) - line_starts_.begin());
    v.line = int(line);
    v.column = int(at - line_starts_[line - 1] + 1);
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Value& c = *stack_.back();
    if (c.kind == Value::Kind::Array) {
      c.array.push_back(std::move(v));
      return &c.array.back();
    }
    c.object.emplace_back(std::move(key_), std::move(v));
    return &c.object.back().second;
  }
  bool put(Value v, size_t at) {
    place(std::move(v), at);
    if (stack_.empty()) done_ = true;
    return true;
  }
  bool open(Value::Kind k) {
    const size_t at = pos() >= 1 ? pos() - 1 : 0;
    if (stack_.size() >= size_t(kMaxDepth)) return refuse(at, cat("nesting deeper than ", kMaxDepth, " levels"));
    Value v;
    v.kind = k;
    stack_.push_back(place(std::move(v), at));
    if (k == Value::Kind::Object) keys_.emplace_back();
    return true;
  }
  bool close() {
    if (stack_.back()->kind == Value::Kind::Object) keys_.pop_back();
    stack_.pop_back();
    if (stack_.empty()) done_ = true;
    return true;
  }
};

}  // namespace

Value parse(std::string_view text, const std::string& where) {
  if (text.size() > kMaxBytes) fail(where, ":1:1: text is larger than ", kMaxBytes, " bytes");
  size_t consumed = 0;
  Builder b(text, where, &consumed);
  const CountingIterator first{text.data(), text.data(), &consumed};
  const CountingIterator last{text.data() + text.size(), text.data(), &consumed};
  const bool ok = nlohmann::json::sax_parse(first, last, &b);
  if (!ok || !b.error().empty()) fail(b.error().empty() ? b.located(consumed, "not valid JSON") : b.error());
  return b.result();
}

Value parse_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LOCUS_CHECK(in, "cannot open '", path, "'");
  std::string text;
  char buf[65536];
  while (in) {
    in.read(buf, sizeof buf);
    text.append(buf, static_cast<size_t>(in.gcount()));
    LOCUS_CHECK(text.size() <= kMaxBytes, "'", path, "' is larger than ", kMaxBytes, " bytes");
  }
  LOCUS_CHECK(!in.bad(), "cannot read '", path, "'");
  return parse(text, path);
}

}  // namespace locus::accel::json
