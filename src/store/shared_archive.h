#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "objects/object_store.h"
#include "store/fragment.h"

namespace lastframe::store {

struct SharedArchiveOptions {
  // Objects one listing reads at most (ListObjectsV2 pages of 1000): what a
  // range read may cost. Past it the listing ends with the oldest ones.
  size_t max_listed_objects = 50'000;
  // An object larger than this is never fetched (a fragment file is at most
  // 256 MiB, as the local archive writes them).
  uint64_t max_object_bytes = 256ull << 20;
};

// The shared archive (`--archive s3://BUCKET/PREFIX`): every completed
// fragment, once durable in the local files, is also an object of a store
// every node reaches, so that any node answers range reads of a stream whose
// node died, and a node's death loses no PERSISTED fragment. The object store
// is the distributed engine, as Kinesis Video keeps its fragments.
//
// One object per fragment, the bytes of its local file (one Matroska
// document), named so that a listing alone gives the fragment's index:
//   PREFIX/<stream segment>/<server ms, 15 digits>-<number>-<producer ms>-
//       <frames>-<duration ms>-<bytes>-<timecode ms>.mkv
// The segment is the stream's name ([a-zA-Z0-9_.-]), with "~" before a name
// that begins with '.', a character no name has, so the mapping is one to one.
// Keys sort by arrival. Fragment numbers are the nodes' own (clock ms * 1000
// at start, counting up), so numbers of different nodes do not collide in
// practice; a listing keeps the first of a number it meets.
//
// Thread-safe. Uploads run on the object store's threads (PutAsync); reads
// block on the network and are for threads that may wait (ArchivedSource's).
class SharedArchive {
 public:
  // |objects| (the archive's bucket and prefix) must outlive it.
  SharedArchive(objects::ObjectStore& objects, SharedArchiveOptions options = {});
  // Finishes the uploads under way (objects.Shutdown(): their dones run).
  ~SharedArchive();
  SharedArchive(const SharedArchive&) = delete;
  SharedArchive& operator=(const SharedArchive&) = delete;

  // The folder of |stream|'s objects: "<segment>/".
  static std::string FolderOf(std::string_view stream);
  // The object key of fragment |f| of |stream| (its frame count: frame_count,
  // else frames.size()).
  static std::string KeyOf(std::string_view stream, const FragmentView& f);
  // The index an object's name (the part after the folder) carries: number,
  // times, frame count, bytes; complete, no frames. nullopt if |name| is not
  // one KeyOf makes (junk under the prefix).
  static std::optional<FragmentView> ParseName(std::string_view name);

  // Stores |bytes| (the fragment's file) as fragment |index| of |stream|, on
  // the object store's own threads with its retries, then calls |done|: Ok
  // once the object is stored; Unavailable ("ArchivalError") naming what the
  // store said otherwise. For one stream, |done|s run in the order of the
  // calls, whichever upload ends first. Never blocks.
  void UploadAsync(const std::string& stream, const FragmentView& index,
                   std::shared_ptr<const std::string> bytes, std::function<void(Status)> done);
  // Calls |done| with |status| (a fragment refused before any upload: its
  // local write failed) in its turn among |stream|'s UploadAsync dones.
  void PassAsync(const std::string& stream, Status status, std::function<void(Status)> done);
  // The same, waiting for it.
  Status Upload(const std::string& stream, const FragmentView& index, std::string_view bytes);

  // |stream|'s fragments that arrived at |since_ms| or later, oldest first
  // (by arrival, then number), without frames (codec null). Objects whose
  // names do not parse are left out; none for a name no stream may have.
  // Errors: the object store's.
  Result<std::vector<FragmentView>> List(std::string_view stream, int64_t since_ms) const;
  // Fragment |index| of |stream| (as List gave it) with its frames, read back
  // as the local files are (fragment_file::ReadFragmentBytes). NotFound
  // ("FragmentNotFound") when its object is gone; MediaError when it does not
  // read back whole.
  Result<FragmentView> Read(std::string_view stream, const FragmentView& index) const;

 private:
  // The sequence |stream|'s next done takes.
  uint64_t NextSeq(const std::string& stream);
  // |done| of upload |seq| of |stream| ended in |status|: runs it, and those
  // after it that ended, once every earlier one has run.
  void Finish(const std::string& stream, uint64_t seq, Status status,
              std::function<void(Status)> done);

  objects::ObjectStore& objects_;
  const SharedArchiveOptions options_;
  struct Order {
    uint64_t next = 0;      // the sequence the next upload gets
    uint64_t released = 0;  // dones run (or being run) up to here
    bool draining = false;  // a thread is running dones
    std::map<uint64_t, std::pair<Status, std::function<void(Status)>>> ended;
  };
  Mutex mu_;
  std::map<std::string, Order, std::less<>> orders_ LF_GUARDED_BY(mu_);
};

}  // namespace lastframe::store
