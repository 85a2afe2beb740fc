#include "cli/json_writer.h"

#include <cmath>
#include <cstdio>

namespace locus::cli {

void JsonWriter::comma() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_ += ',';
    first_.back() = false;
  }
}

void JsonWriter::open(char c) {
  comma();
  out_ += c;
  first_.push_back(true);
}

void JsonWriter::close(char c) {
  out_ += c;
  first_.pop_back();
}

void JsonWriter::key(const std::string& k) {
  value(k);
  out_ += ':';
  after_key_ = true;
}

void JsonWriter::value(const std::string& v) {
  comma();
  out_ += '"';
  for (unsigned char ch : v) {
    switch (ch) {
      case '"': out_ += "\\\""; break;
      case '\\': out_ += "\\\\"; break;
      case '\n': out_ += "\\n"; break;
      case '\t': out_ += "\\t"; break;
      case '\r': out_ += "\\r"; break;
      default:
        if (ch < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", ch);
          out_ += b;
        } else {
          out_ += char(ch);
        }
    }
  }
  out_ += '"';
}

void JsonWriter::value(double v) {
  if (!std::isfinite(v)) return null();
  comma();
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  out_ += b;
}

void JsonWriter::value(int64_t v) {
  comma();
  out_ += std::to_string(v);
}

void JsonWriter::value(bool v) {
  comma();
  out_ += v ? "true" : "false";
}

void JsonWriter::null() {
  comma();
  out_ += "null";
}

}  // namespace locus::cli
