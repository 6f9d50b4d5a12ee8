// LocalStore's multipart uploads: each upload a folder .uploads/ID/ under the
// store's root, holding upload.json (the object to be) and one object file per
// part (part-NNNNN), whose user metadata holds the part's checksums by
// algorithm name. CompleteMultipartUpload claims the folder by renaming it, so
// a second Complete, or a part arriving meanwhile, finds NoSuchUpload.

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "aws/checksums.h"
#include "core/atomic_file.h"
#include "objects/local_store.h"
#include "objects/object_file.h"
#include "objects/store_metrics.h"

namespace lastframe::objects {

namespace fs = std::filesystem;
using namespace object_file;

namespace {

constexpr uint64_t kMinPartBytes = 5ull << 20;  // S3's least part, the last excepted
constexpr const char* kUploadFile = "upload.json";

Status NoSuchUpload() {
  return NotFound(
      "The specified upload does not exist. The upload ID may be invalid, or the upload may have "
      "been aborted or completed.",
      Reason::kNoSuchUpload);
}

bool ValidUploadId(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string PartFileName(int number) {
  char name[16];
  std::snprintf(name, sizeof name, "part-%05d", number);
  return name;
}

const std::string* Lookup(const std::vector<std::pair<std::string, std::string>>& pairs,
                          std::string_view name) {
  for (const auto& [k, v] : pairs)
    if (k == name) return &v;
  return nullptr;
}

nlohmann::json MetaJson(const ObjectMeta& meta) {
  nlohmann::json user = nlohmann::json::array();
  for (const auto& [k, v] : meta.user) user.push_back({k, v});
  return {{"content_type", meta.content_type},
          {"cache_control", meta.cache_control},
          {"user", user},
          {"checksum_algorithm", meta.checksum_algorithm},
          {"checksum_type", meta.checksum_type}};
}

Result<MultipartUpload> ReadUpload(const fs::path& dir, const std::string& id) {
  std::ifstream in(dir / kUploadFile);
  if (!in) return NoSuchUpload();
  std::stringstream text;
  text << in.rdbuf();
  auto corrupt = [&] { return Internal("multipart upload " + id + " has a corrupt record"); };
  auto j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt();
  // Read by hand, never by j.value(): a wrong type would throw on a worker thread.
  auto text_of = [](const nlohmann::json& o, const char* name) -> std::optional<std::string> {
    auto it = o.find(name);
    if (it == o.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto meta = j.find("meta");
  auto initiated = j.find("initiated_ms");
  if (meta == j.end() || !meta->is_object() || initiated == j.end() ||
      !initiated->is_number_integer())
    return corrupt();
  MultipartUpload up;
  up.upload_id = id;
  up.initiated_ms = initiated->get<int64_t>();
  auto key = text_of(j, "key");
  auto content_type = text_of(*meta, "content_type");
  auto cache_control = text_of(*meta, "cache_control");
  auto algorithm = text_of(*meta, "checksum_algorithm");
  auto type = text_of(*meta, "checksum_type");
  if (!key || !content_type || !cache_control || !algorithm || !type) return corrupt();
  if (!algorithm->empty() && !aws::ParseChecksumAlgorithm(*algorithm)) return corrupt();
  up.key = *key;
  up.meta.content_type = *content_type;
  up.meta.cache_control = *cache_control;
  up.meta.checksum_algorithm = *algorithm;
  up.meta.checksum_type = *type;
  if (auto u = meta->find("user"); u != meta->end() && u->is_array())
    for (const auto& pair : *u)
      if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string())
        up.meta.user.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
  return up;
}

PartInfo PartOf(const ObjectInfo& info, int number) {
  PartInfo part;
  part.number = number;
  part.size = info.size;
  part.last_modified_ms = info.last_modified_ms;
  part.etag = info.meta.etag;
  part.checksums = info.meta.user;
  return part;
}

}  // namespace

fs::path LocalStore::UploadDir(const std::string& upload_id) const {
  return options_.root / ".uploads" / upload_id;
}

Result<MultipartUpload> LocalStore::CreateMultipartUpload(const std::string& key, ObjectMeta meta) {
  LF_RETURN_IF_ERROR(ValidateObjectKey(key));
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return Internal("no randomness for an upload ID");
  MultipartUpload up;
  up.upload_id = HexEncode(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
  up.key = key;
  up.initiated_ms = clock_.NowMs();
  up.meta = std::move(meta);
  std::error_code ec;
  fs::create_directories(UploadDir(up.upload_id), ec);
  if (ec) return Status(Code::kUnavailable, "cannot create the upload's folder: " + ec.message());
  nlohmann::json j = {{"key", key}, {"initiated_ms", up.initiated_ms}, {"meta", MetaJson(up.meta)}};
  Status written;
  try {
    written = WriteFileAtomically(UploadDir(up.upload_id) / kUploadFile, j.dump() + "\n");
  } catch (const nlohmann::json::exception&) {  // metadata that is not UTF-8
    written = InvalidArgument("Content-Type, Cache-Control and x-amz-meta-* values must be UTF-8",
                              Reason::kInvalidArgument);
  }
  if (!written.ok()) {
    fs::remove_all(UploadDir(up.upload_id), ec);
    return written;
  }
  return up;
}

Result<MultipartUpload> LocalStore::FindMultipartUpload(const std::string& upload_id,
                                                        const std::string& key) const {
  if (!ValidUploadId(upload_id)) return NoSuchUpload();
  auto up = ReadUpload(UploadDir(upload_id), upload_id);
  if (!up.ok()) return up.status();
  if (up->key != key) return NoSuchUpload();
  return up;
}

Result<PartInfo> LocalStore::CommitPart(std::unique_ptr<ObjectWriter> writer,
                                        const MultipartUpload& upload, PartInfo part) {
  if (part.number < 1 || part.number > 10000)
    return InvalidArgument("Part number must be an integer between 1 and 10000, inclusive",
                           Reason::kInvalidArgument);
  if (writer->size() > options_.max_object_bytes)
    return Status(Code::kTooLarge,
                  "Your proposed upload exceeds the maximum allowed size of " +
                      std::to_string(options_.max_object_bytes) + " bytes",
                  Reason::kEntityTooLarge);
  // The parts of one upload can never hold more than the object they make may: a
  // complete would refuse it, so the disk is not filled first.
  auto others = ListParts(upload);
  if (!others.ok()) return others.status();
  uint64_t total = writer->size();
  for (const PartInfo& p : *others)
    if (p.number != part.number) total += p.size;
  if (total > options_.max_object_bytes)
    return Status(Code::kTooLarge,
                  "Your proposed upload exceeds the maximum allowed size of " +
                      std::to_string(options_.max_object_bytes) + " bytes, its parts together",
                  Reason::kEntityTooLarge);
  ObjectMeta meta;
  meta.content_type = "application/octet-stream";
  meta.etag = part.etag;
  meta.user = part.checksums;
  fs::path dir = UploadDir(upload.upload_id);
  // The folder goes (renamed away) when the upload completes, is aborted or
  // expires; a part is renamed into it without making it again, so a part
  // arriving after that finds no folder.
  Status committed = Commit(*writer, meta, dir / PartFileName(part.number), upload.key,
                            /*make_folders=*/false);
  if (committed.code() == Code::kNotFound) return NoSuchUpload();
  if (!committed.ok()) return committed;
  part.size = writer->size();
  part.last_modified_ms = clock_.NowMs();
  return part;
}

Result<std::vector<PartInfo>> LocalStore::ListParts(const MultipartUpload& upload) const {
  fs::path dir = UploadDir(upload.upload_id);
  std::vector<PartInfo> parts;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.rfind("part-", 0) != 0 || name.size() != 10) continue;
    int number = std::atoi(name.c_str() + 5);
    auto opened = OpenObject(it->path(), name);
    if (!opened.ok()) continue;  // replaced or removed meanwhile
    parts.push_back(PartOf(opened->info, number));
  }
  if (ec) return NoSuchUpload();
  std::sort(parts.begin(), parts.end(),
            [](const PartInfo& a, const PartInfo& b) { return a.number < b.number; });
  return parts;
}

std::vector<MultipartUpload> LocalStore::ListMultipartUploads() const {
  std::vector<MultipartUpload> out;
  std::error_code ec;
  for (fs::directory_iterator it(options_.root / ".uploads", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string id = it->path().filename().string();
    if (!ValidUploadId(id)) continue;
    if (auto up = ReadUpload(it->path(), id); up.ok()) out.push_back(std::move(*up));
  }
  std::sort(out.begin(), out.end(), [](const MultipartUpload& a, const MultipartUpload& b) {
    return a.key != b.key ? a.key < b.key : a.upload_id < b.upload_id;
  });
  return out;
}

Status LocalStore::AbortMultipartUpload(const MultipartUpload& upload) {
  fs::path dir = UploadDir(upload.upload_id);
  // Renamed first, so a part being committed meanwhile finds no upload.
  fs::path gone = options_.root / ".uploads" / (upload.upload_id + ".aborted");
  if (std::rename(dir.c_str(), gone.c_str()) != 0) return NoSuchUpload();
  std::error_code ec;
  fs::remove_all(gone, ec);
  return Status::Ok();
}

Result<ObjectInfo> LocalStore::CompleteMultipartUpload(const MultipartUpload& upload,
                                                       const std::vector<CompletedPart>& listed,
                                                       const std::string& full_object_checksum) {
  const auto start = std::chrono::steady_clock::now();
  if (listed.empty())
    return InvalidArgument(
        "The XML you provided was not well-formed or did not validate against our published "
        "schema: it lists no part",
        Reason::kMalformedXML);
  for (size_t i = 1; i < listed.size(); ++i)
    if (listed[i].number <= listed[i - 1].number)
      return InvalidArgument(
          "The list of parts was not in ascending order. Parts must be ordered "
          "by part number.",
          Reason::kInvalidPartOrder);
  const std::string& algorithm_name = upload.meta.checksum_algorithm;
  auto algorithm =
      aws::ParseChecksumAlgorithm(algorithm_name.empty() ? "CRC64NVME" : algorithm_name);
  if (!algorithm) return Internal("multipart upload " + upload.upload_id + " has a corrupt record");
  const bool full_object = algorithm_name.empty() || upload.meta.checksum_type == "FULL_OBJECT";
  fs::path dir = UploadDir(upload.upload_id);
  struct Opened {
    OpenedObject object;
    PartInfo part;
  };
  std::vector<Opened> parts;
  uint64_t total = 0;
  auto invalid_part = [](int number, const std::string& why) {
    return InvalidArgument(
        "One or more of the specified parts could not be found. The part may "
        "not have been uploaded, or the specified entity tag may not match the "
        "part's entity tag: part " +
            std::to_string(number) + " " + why,
        Reason::kInvalidPart);
  };
  for (size_t i = 0; i < listed.size(); ++i) {
    const CompletedPart& want = listed[i];
    if (want.number < 1 || want.number > 10000) return invalid_part(want.number, "is out of range");
    auto opened = OpenObject(dir / PartFileName(want.number), upload.key);
    if (!opened.ok()) {
      struct stat st {};
      if (::stat((dir / kUploadFile).c_str(), &st) != 0) return NoSuchUpload();
      return invalid_part(want.number, "was not uploaded");
    }
    PartInfo part = PartOf(opened->info, want.number);
    if (want.etag != part.etag) return invalid_part(want.number, "has another ETag");
    for (const auto& [name, value] : want.checksums) {
      const std::string* kept = Lookup(part.checksums, name);
      if (kept && *kept != value)
        return invalid_part(want.number, "has another " + name + " checksum");
      if (!kept && name == algorithm_name)
        return invalid_part(want.number, "was uploaded without a " + name + " checksum");
    }
    if (i + 1 < listed.size() && part.size < kMinPartBytes)
      return InvalidArgument(
          "Your proposed upload is smaller than the minimum allowed size: part " +
              std::to_string(want.number) + " is " + std::to_string(part.size) +
              " bytes, and every part but the last must be at least 5 MiB",
          Reason::kEntityTooSmall);
    if (algorithm && !Lookup(part.checksums, aws::ChecksumName(*algorithm)))
      return invalid_part(want.number,
                          "has no " + std::string(aws::ChecksumName(*algorithm)) + " checksum");
    total += part.size;
    // Checked as parts are opened, so a long list holds few descriptors before it is refused.
    if (total > options_.max_object_bytes)
      return Status(Code::kTooLarge,
                    "Your proposed upload exceeds the maximum allowed size of " +
                        std::to_string(options_.max_object_bytes) + " bytes",
                    Reason::kEntityTooLarge);
    parts.push_back({std::move(*opened), std::move(part)});
  }
  // The object's ETag and checksum come from the parts' own.
  std::string md5s, checksums, combined;
  for (size_t i = 0; i < parts.size(); ++i) {
    const PartInfo& part = parts[i].part;
    auto md5 = HexDecode(part.etag);
    if (!md5) return Internal("part " + std::to_string(part.number) + " has a corrupt ETag");
    md5s += *md5;
    auto raw = aws::DecodeChecksumValue(*algorithm,
                                        *Lookup(part.checksums, aws::ChecksumName(*algorithm)));
    if (!raw) return Internal("part " + std::to_string(part.number) + " has a corrupt checksum");
    if (!full_object)
      checksums += *raw;
    else
      combined = i == 0 ? *raw : aws::CombineCrc(*algorithm, combined, *raw, part.size);
  }
  ObjectMeta meta = upload.meta;
  meta.etag = Md5Hex(md5s) + "-" + std::to_string(parts.size());
  meta.checksum_algorithm = std::string(aws::ChecksumName(*algorithm));
  meta.checksum_type = full_object ? "FULL_OBJECT" : "COMPOSITE";
  meta.checksum = full_object ? Base64Encode(combined)
                              : Base64Encode(aws::ChecksumOf(*algorithm, checksums)) + "-" +
                                    std::to_string(parts.size());
  if (!full_object_checksum.empty() && full_object && full_object_checksum != meta.checksum)
    return InvalidArgument(
        "The " + meta.checksum_algorithm + " you specified did not match the calculated checksum.",
        Reason::kBadDigest);
  // Claimed: from here, another Complete, an Abort or a late part finds no upload.
  fs::path claimed = options_.root / ".uploads" / (upload.upload_id + ".completing");
  if (std::rename(dir.c_str(), claimed.c_str()) != 0) return NoSuchUpload();
  auto assemble = [&]() -> Result<ObjectInfo> {
    auto writer = BeginWrite(meta);
    if (!writer.ok()) return writer.status();
    for (const Opened& p : parts)
      LF_RETURN_IF_ERROR(
          (*writer)->AppendFrom(p.object.fd->get(), p.object.body_offset, p.object.info.size));
    if ((*writer)->size() != total)
      return Status(Code::kUnavailable, "a part changed while the object was assembled");
    LF_RETURN_IF_ERROR(Commit(**writer, meta, PathOf(upload.key), upload.key));
    ObjectInfo info;
    info.key = upload.key;
    info.size = total;
    info.last_modified_ms = clock_.NowMs();
    info.meta = meta;
    return info;
  };
  Result<ObjectInfo> done = assemble();
  std::error_code ec;
  if (done.ok()) {
    fs::remove_all(claimed, ec);
  } else {
    // Not completed (our failure, or a key in the way): the client may try again. No part can
    // have made the folder again meanwhile (CommitPart makes no folders), so this restores it.
    std::rename(claimed.c_str(), dir.c_str());
  }
  EmbeddedStoreMetrics().CountUpload(done.status(), start);
  if (done.ok()) {
    uint64_t since = bytes_since_sweep_.fetch_add(total) + total;
    if (last_total_bytes_.load() + since > options_.max_total_bytes) Sweep();
  }
  return done;
}

void LocalStore::SweepUploads(int64_t now_ms) {
  const int64_t cutoff = now_ms - options_.multipart_expiry_s * 1000;
  std::error_code ec;
  std::vector<fs::path> expired;
  for (fs::directory_iterator it(options_.root / ".uploads", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    int64_t initiated = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000;
    if (ValidUploadId(name)) {
      auto up = ReadUpload(it->path(), name);
      if (up.ok()) initiated = up->initiated_ms;
    }
    if (initiated < cutoff) expired.push_back(it->path());
  }
  for (const fs::path& dir : expired) {
    // Renamed first, as an abort does: a part arriving meanwhile is refused.
    fs::path gone = dir;
    gone += ".expired";
    if (std::rename(dir.c_str(), gone.c_str()) == 0) fs::remove_all(gone, ec);
  }
}

}  // namespace lastframe::objects
