// The CLI's JSON documents (--json, --format json, --remarks) are nlohmann::ordered_json values (keys
// in the order they are set, as the documented schemas list them); every document starts with a
// "schema" key. Numbers stay finite: finite_or_null turns NaN and infinities into null.
#pragma once

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

namespace locus::cli {

using Json = nlohmann::ordered_json;

// A new document {"schema": name, ...}.
inline Json json_document(const std::string& schema) {
  Json j = Json::object();
  j["schema"] = schema;
  return j;
}

// v, or null when it is NaN or infinite (JSON has no such numbers).
inline Json finite_or_null(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

// The compact text of a document (one line, no trailing newline). Invalid UTF-8 in a string (a file
// name, a node name) is replaced rather than refused.
inline std::string json_text(const Json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// Writes json_text(j) and a newline to `path`; one-line Error naming the file when it cannot.
void write_json_file(const std::string& path, const Json& j);

}  // namespace locus::cli
