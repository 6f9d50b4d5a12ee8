#include "support/push.h"

#include <algorithm>
#include <future>

#include "ingest/push_session.h"

namespace lastframe::testing {

Status PushBytes(store::StreamStore& store, const std::string& stream, const std::string& bytes,
                 std::function<void(std::string)> on_ack) {
  std::promise<Status> done;
  ingest::PushCallbacks callbacks{.on_done = [&](Status s) { done.set_value(std::move(s)); }};
  if (on_ack) callbacks.on_ack = std::move(on_ack);
  auto session = ingest::PushSession::Start(store, {.stream = stream}, std::move(callbacks));
  if (!session.ok()) return session.status();
  constexpr size_t kPiece = 64 * 1024;
  for (size_t at = 0; at < bytes.size(); at += kPiece) {
    const size_t n = std::min(kPiece, bytes.size() - at);
    if (!(*session)->Feed(reinterpret_cast<const uint8_t*>(bytes.data() + at), n) &&
        !(*session)->WaitForSpace())
      break;
  }
  (*session)->Finish();
  return done.get_future().get();
}

}  // namespace lastframe::testing
