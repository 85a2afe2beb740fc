// A minimal JSON writer for the CLI's --json outputs (strings escaped, non-finite numbers as null).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace locus::cli {

class JsonWriter {
 public:
  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }
  void key(const std::string& k);
  void value(const std::string& v);
  void value(const char* v) { value(std::string(v)); }
  void value(double v);
  void value(int64_t v);
  void value(bool v);
  void null();
  template <class T>
  void kv(const std::string& k, const T& v) {
    key(k);
    value(v);
  }
  void kv_null(const std::string& k) {
    key(k);
    null();
  }
  const std::string& str() const { return out_; }

 private:
  void open(char c);
  void close(char c);
  void comma();
  std::string out_;
  std::vector<bool> first_;  // per open container: no element yet
  bool after_key_ = false;
};

}  // namespace locus::cli
