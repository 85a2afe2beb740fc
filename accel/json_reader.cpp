#include "accel/json_reader.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <unordered_set>

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

class Parser {
 public:
  Parser(std::string_view text, const std::string& where) : t_(text), where_(where) {}

  Value document() {
    if (t_.size() > kMaxBytes) fail_at(1, 1, "text is larger than ", kMaxBytes, " bytes");
    skip_ws();
    Value v = value(0);
    skip_ws();
    if (pos_ < t_.size()) error("unexpected '", printable(t_[pos_]), "' after the JSON value");
    return v;
  }

 private:
  std::string_view t_;
  const std::string& where_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;

  int column() const { return static_cast<int>(pos_ - line_start_) + 1; }

  template <class... A>
  [[noreturn]] void fail_at(int line, int col, const A&... a) const {
    fail(where_, ":", line, ":", col, ": ", a...);
  }
  template <class... A>
  [[noreturn]] void error(const A&... a) const {
    fail_at(line_, column(), a...);
  }
  static std::string printable(char c) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    return buf;
  }

  bool at_end() const { return pos_ >= t_.size(); }
  char peek() const { return t_[pos_]; }

  void skip_ws() {
    while (!at_end()) {
      const char c = peek();
      if (c == '\n') {
        ++pos_;
        ++line_;
        line_start_ = pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }

  void expect_literal(std::string_view word) {
    if (t_.substr(pos_, word.size()) != word) error("invalid literal (expected '", word, "')");
    pos_ += word.size();
  }

  Value value(int depth) {
    if (at_end()) error("unexpected end of text (expected a value)");
    Value v;
    v.line = line_;
    v.column = column();
    const char c = peek();
    if (c == '{' || c == '[') {
      if (depth >= kMaxDepth) error("nesting deeper than ", kMaxDepth, " levels");
      if (c == '{') object(v, depth + 1);
      else array(v, depth + 1);
    } else if (c == '"') {
      v.kind = Value::Kind::String;
      v.string = string();
    } else if (c == 't') {
      expect_literal("true");
      v.kind = Value::Kind::Bool;
      v.boolean = true;
    } else if (c == 'f') {
      expect_literal("false");
      v.kind = Value::Kind::Bool;
    } else if (c == 'n') {
      expect_literal("null");
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Value::Kind::Number;
      v.number = number();
    } else {
      error("unexpected '", printable(c), "' (expected a value)");
    }
    return v;
  }

  void object(Value& v, int depth) {
    v.kind = Value::Kind::Object;
    ++pos_;  // {
    skip_ws();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return;
    }
    // keys seen so far in this object: a hash set keeps the duplicate check linear overall (a scan of
    // the members per key was quadratic: 13 s for 1 MiB of keys)
    std::unordered_set<std::string> seen;
    for (;;) {
      skip_ws();
      if (at_end() || peek() != '"') error(at_end() ? "unexpected end of text" : "expected a string key");
      const int kl = line_, kc = column();
      std::string key = string();
      if (!seen.insert(key).second) fail_at(kl, kc, "duplicate key '", key, "'");
      skip_ws();
      if (at_end() || peek() != ':') error("expected ':' after key '", key, "'");
      ++pos_;
      skip_ws();
      Value member = value(depth);
      v.object.emplace_back(std::move(key), std::move(member));
      skip_ws();
      if (at_end()) error("unexpected end of text (expected ',' or '}')");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        return;
      }
      error("expected ',' or '}' but found '", printable(peek()), "'");
    }
  }

  void array(Value& v, int depth) {
    v.kind = Value::Kind::Array;
    ++pos_;  // [
    skip_ws();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_ws();
      v.array.push_back(value(depth));
      skip_ws();
      if (at_end()) error("unexpected end of text (expected ',' or ']')");
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        return;
      }
      error("expected ',' or ']' but found '", printable(peek()), "'");
    }
  }

  unsigned hex4() {
    if (pos_ + 4 > t_.size()) error("truncated \\u escape");
    unsigned u = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = t_[pos_++];
      u <<= 4;
      if (c >= '0' && c <= '9') u |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') u |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') u |= static_cast<unsigned>(c - 'A' + 10);
      else error("bad hex digit in \\u escape");
    }
    return u;
  }

  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  std::string string() {
    ++pos_;  // "
    std::string out;
    for (;;) {
      if (at_end()) error("unterminated string");
      const char c = t_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) error("control character in string (escape it)");
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (at_end()) error("unterminated string");
      const char e = t_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (t_.substr(pos_, 2) != "\\u") error("unpaired surrogate in \\u escape");
            pos_ += 2;
            const unsigned lo = hex4();
            if (lo < 0xdc00 || lo > 0xdfff) error("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            error("unpaired surrogate in \\u escape");
          }
          utf8(out, cp);
          break;
        }
        default:
          --pos_;
          error("bad escape '\\", printable(e), "' in string");
      }
    }
  }

  double number() {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t s = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ - s;
    };
    if (peek() == '-') ++pos_;
    if (at_end()) error("bad number");
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') error("bad number (leading zero)");
    } else if (digits() == 0) {
      error("bad number");
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (digits() == 0) error("bad number (no digit after '.')");
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) error("bad number (no digit in exponent)");
    }
    const std::string text(t_.substr(start, pos_ - start));
    errno = 0;
    char* end = nullptr;
    const double d = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(d)) {
      pos_ = start;
      error("number out of range: ", text);
    }
    return d;
  }
};

}  // namespace

Value parse(std::string_view text, const std::string& where) { return Parser(text, where).document(); }

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
