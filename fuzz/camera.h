#pragma once

// The fixture camera (fuzz/media/camera.mkv: H.264, two fragments) pushed into
// a store through the real PushSession, for targets that need video to read.

#include <fstream>
#include <future>
#include <sstream>
#include <string>

#include "fuzz_support.h"
#include "ingest/push_session.h"

namespace lastframe::fuzz {

inline void PushCamera(store::StreamStore& store, ingest::PushOptions options) {
  std::ifstream in(LASTFRAME_FUZZ_DIR "/media/camera.mkv", std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string mkv = bytes.str();
  FUZZ_CHECK(!mkv.empty(), "fuzz/media/camera.mkv is missing");
  std::promise<Status> done;
  auto session = ingest::PushSession::Start(
      store, std::move(options),
      {.on_ack = nullptr, .on_space = nullptr, .on_done = [&](Status s) { done.set_value(s); }});
  FUZZ_CHECK(session.ok(), session.status().ToString());
  (*session)->Feed(reinterpret_cast<const uint8_t*>(mkv.data()), mkv.size());
  (*session)->Finish();
  Status s = done.get_future().get();
  FUZZ_CHECK(s.ok(), s.ToString());
}

}  // namespace lastframe::fuzz
