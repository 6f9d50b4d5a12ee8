#pragma once

// The object stores' metrics, shared by LocalStore and S3Store (private to
// objects/): lastframe_object_store_{requests,failures,retries}_total{store,
// operation} and lastframe_object_upload_duration_seconds{store}.

#include <array>
#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <string_view>

#include "core/metrics.h"
#include "core/status.h"

namespace lastframe::objects {

enum class StoreOp { kPut, kGet, kDelete, kList, kHead, kSweep };
inline constexpr size_t kStoreOps = 6;

// One store's children of the families, looked up once (With takes a lock):
// counting an operation is a relaxed atomic add.
class StoreMetrics {
 public:
  // |store| is the label ("embedded", "s3"); |ops| the operations it does
  // (no series for the others); |retries|: whether its calls are retried.
  StoreMetrics(std::string_view store, std::initializer_list<StoreOp> ops, bool retries);

  // One |op| that ended in |result|.
  void Count(StoreOp op, const Status& result) const;
  // One put that began at |start| and ended in |result|: counted, and its
  // time observed unless the caller's request was refused before any work.
  void CountUpload(const Status& result, std::chrono::steady_clock::time_point start) const;
  // The counter of |op|'s retries (null where the store does not retry).
  metrics::Counter* retries(StoreOp op) const { return ops_[Index(op)].retries; }

 private:
  struct Op {
    metrics::Counter* requests = nullptr;
    metrics::Counter* failures = nullptr;
    metrics::Counter* retries = nullptr;
  };
  static size_t Index(StoreOp op) { return static_cast<size_t>(op); }

  std::array<Op, kStoreOps> ops_{};
  metrics::Histogram* upload_ = nullptr;
};

const StoreMetrics& EmbeddedStoreMetrics();
const StoreMetrics& S3StoreMetrics();

// Whether |result| is the caller's doing (a missing key, a bad key, range or
// body): not a failure of the store, and no work done for a put.
bool CallersError(const Status& result);

}  // namespace lastframe::objects
