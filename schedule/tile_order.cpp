#include "schedule/tile_order.h"

namespace locus::schedule {

const char* order_name(Order o) {
  switch (o) {
    case Order::RowMajor: return "RowMajor";
    case Order::ColMajor: return "ColMajor";
    case Order::ScanRows: return "ScanRows";
    case Order::ScanCols: return "ScanCols";
  }
  return "?";
}

const char* tile_order_name(TileOrder o) {
  switch (o) {
    case TileOrder::Scan: return "scan";
    case TileOrder::Row: return "row";
    case TileOrder::Col: return "col";
  }
  return "?";
}

bool parse_tile_order(const std::string& s, TileOrder* out) {
  if (s == "scan") *out = TileOrder::Scan;
  else if (s == "row") *out = TileOrder::Row;
  else if (s == "col") *out = TileOrder::Col;
  else return false;
  return true;
}

std::vector<Order> orders_in(TileOrder family) {
  switch (family) {
    case TileOrder::Scan: return {Order::ScanRows, Order::ScanCols};
    case TileOrder::Row: return {Order::RowMajor};
    case TileOrder::Col: return {Order::ColMajor};
  }
  return {};
}

}  // namespace locus::schedule
