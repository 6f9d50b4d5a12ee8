#include "objects/store_metrics.h"

namespace lastframe::objects {
namespace {

std::string_view OpName(StoreOp op) {
  switch (op) {
    case StoreOp::kPut:
      return "put";
    case StoreOp::kGet:
      return "get";
    case StoreOp::kDelete:
      return "delete";
    case StoreOp::kList:
      return "list";
    case StoreOp::kHead:
      return "head";
    case StoreOp::kSweep:
      return "sweep";
  }
  return "other";
}

}  // namespace

bool CallersError(const Status& s) {
  switch (s.code()) {
    case Code::kInvalidArgument:
    case Code::kNotFound:
    case Code::kUnauthenticated:
    case Code::kPermissionDenied:
    case Code::kConflict:
    case Code::kTooLarge:
      return true;
    default:
      return false;
  }
}

StoreMetrics::StoreMetrics(std::string_view store, std::initializer_list<StoreOp> ops,
                           bool retries) {
  auto& registry = metrics::Registry::Global();
  auto& requests = registry.Counters("lastframe_object_store_requests_total",
                                     "Object store operations asked for (an S3 call once, "
                                     "however often it is retried).",
                                     {"store", "operation"});
  auto& failures = registry.Counters(
      "lastframe_object_store_failures_total",
      "Object store operations that failed: unreachable, an error answer, a local I/O error "
      "(a missing key or a bad request is the caller's, not counted).",
      {"store", "operation"});
  auto& retried =
      registry.Counters("lastframe_object_store_retries_total",
                        "Tries of object store calls after their first.", {"store", "operation"});
  const std::string name(store);
  for (StoreOp op : ops) {
    const std::string operation(OpName(op));
    Op& o = ops_[Index(op)];
    o.requests = &requests.With({name, operation});
    o.failures = &failures.With({name, operation});
    if (retries) o.retries = &retried.With({name, operation});
  }
  upload_ = &registry
                 .Histograms("lastframe_object_upload_duration_seconds",
                             "Time to store an object (an S3 put's retries included).", {"store"},
                             metrics::LatencyBuckets())
                 .With({name});
}

void StoreMetrics::Count(StoreOp op, const Status& result) const {
  const Op& o = ops_[Index(op)];
  o.requests->Add();
  if (!result.ok() && !CallersError(result)) o.failures->Add();
}

void StoreMetrics::CountUpload(const Status& result,
                               std::chrono::steady_clock::time_point start) const {
  Count(StoreOp::kPut, result);
  if (!CallersError(result)) upload_->Observe(metrics::SecondsSince(start));
}

const StoreMetrics& EmbeddedStoreMetrics() {
  static const StoreMetrics m("embedded",
                              {StoreOp::kPut, StoreOp::kGet, StoreOp::kDelete, StoreOp::kList,
                               StoreOp::kHead, StoreOp::kSweep},
                              /*retries=*/false);
  return m;
}

const StoreMetrics& S3StoreMetrics() {
  static const StoreMetrics m(
      "s3", {StoreOp::kPut, StoreOp::kGet, StoreOp::kDelete, StoreOp::kList, StoreOp::kHead},
      /*retries=*/true);
  return m;
}

}  // namespace lastframe::objects
