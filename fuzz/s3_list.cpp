// S3 list parameters, through S3Api::Handle as the server calls it: list-type,
// prefix, delimiter, max-keys, start-after, marker, continuation-token,
// encoding-type, and the bucket sub-resources answered 501.
//
// Input lines: the query string as sent; optionally the method (GET). The
// request is signed here (SigV4 header auth, the store's key pair, pinned
// clock), so every input reaches the listing. The store holds a fixed tree of
// keys. Invariants: one answer, with a status S3 uses (never 500); a listing
// is sorted, within its prefix, at most max-keys long; and pages followed by
// their continuation tokens (or LocalStore::List pages by their last key) add
// up to the one-page listing: nothing lost, nothing twice.

#include <future>

#include "aws/sigv4.h"
#include "core/clock.h"
#include "core/encoding.h"
#include "core/time_format.h"
#include "core/worker_pool.h"
#include "fuzz_support.h"
#include "http/s3_api.h"
#include "objects/local_store.h"

using namespace lastframe;
namespace bhttp = boost::beast::http;

namespace {

constexpr int64_t kNowMs = 1'795'617'013'000;
const char* const kKeys[] = {"a.txt",
                             "a/b",
                             "a/c/d",
                             "a/c/e",
                             "a-b",
                             "b/x.jpg",
                             "snapshots/cam/1.jpg",
                             "snapshots/cam/2.jpg",
                             "snapshots/cam2/1.jpg",
                             "z%20",
                             "\xc3\xbc/\xc3\xa9",
                             "a b/c",
                             "~/~",
                             "images/cam/2026/11/25/1.jpg",
                             "images/cam/2026/11/25/2.jpg"};

struct World {
  ManualClock clock{kNowMs};
  fuzz::ScratchDir dir;
  WorkerPool workers{1, 16};
  std::unique_ptr<objects::LocalStore> store;
  std::unique_ptr<http::S3Api> api;
};
World* world = nullptr;

struct Listing {
  unsigned status = 0;
  std::string body;
  std::vector<std::string> entries;  // keys and common prefixes, as the XML has them
  bool listing = false;              // a ListBucketResult (not ?location)
  bool truncated = false;
  std::string next_token;
};

std::vector<std::string> Elements(const std::string& xml, const std::string& name) {
  std::vector<std::string> out;
  const std::string open = "<" + name + ">", close = "</" + name + ">";
  for (size_t at = xml.find(open); at != std::string::npos; at = xml.find(open, at)) {
    at += open.size();
    size_t end = xml.find(close, at);
    if (end == std::string::npos) break;
    out.push_back(xml.substr(at, end - at));
  }
  return out;
}

Listing Call(const std::string& method, const std::string& raw_query) {
  http::Request req;
  req.header.method_string(method);
  req.header.target("/lastframe" + (raw_query.empty() ? "" : "?" + raw_query));
  req.path = req.raw_path = "/lastframe";
  req.raw_query = raw_query;
  req.header.set(bhttp::field::host, "127.0.0.1:8080");
  req.header.set("x-amz-date", FormatAmzDate(kNowMs));
  req.header.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
  if (auto query = ParseQuery(raw_query)) {
    aws::CanonicalRequest c;
    c.method = method;
    c.path = "/lastframe";
    c.query = *query;
    c.headers = {{"host", "127.0.0.1:8080"},
                 {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
                 {"x-amz-date", FormatAmzDate(kNowMs)}};
    c.payload_hash = "UNSIGNED-PAYLOAD";
    req.header.set(bhttp::field::authorization, world->store->signer().Authorization(c, kNowMs));
  }
  std::promise<http::Response> answered;
  std::atomic<int> answers{0};
  world->api->Handle(std::move(req), [&](http::Response res) {
    FUZZ_CHECK(answers.fetch_add(1) == 0, "answered twice");
    answered.set_value(std::move(res));
  });
  http::Response res = answered.get_future().get();
  Listing out;
  out.status = res.result_int();
  out.body = res.body();
  for (unsigned ok : {200u, 400u, 403u, 404u, 405u, 409u, 501u, 503u})
    if (out.status == ok)
      break;
    else if (ok == 503u)
      FUZZ_CHECK(false, "status " + std::to_string(out.status) + ": " + out.body);
  if (out.status != 200 || method != "GET") return out;
  out.listing = out.body.find("<ListBucketResult") != std::string::npos;
  if (!out.listing) return out;  // ?location
  for (const std::string& contents : Elements(out.body, "Contents"))
    for (const std::string& key : Elements(contents, "Key")) out.entries.push_back(key);
  for (const std::string& cp : Elements(out.body, "CommonPrefixes"))
    for (const std::string& p : Elements(cp, "Prefix")) out.entries.push_back(p);
  auto truncated = Elements(out.body, "IsTruncated");
  out.truncated = !truncated.empty() && truncated[0] == "true";
  auto token = Elements(out.body, "NextContinuationToken");
  if (!token.empty()) out.next_token = token[0];
  return out;
}

// |query| with the first |name| set to |value|, other parameters kept in their
// order (a repeated parameter means its first value, so order matters).
std::string With(const QueryParams& query, const std::string& name, const std::string& value) {
  QueryParams q = query;
  auto it = std::find_if(q.begin(), q.end(), [&](const auto& kv) { return kv.first == name; });
  if (it != q.end())
    it->second = value;
  else
    q.emplace_back(name, value);
  std::string out;
  for (const auto& [k, v] : q)
    out += (out.empty() ? "" : "&") + UriEncode(k, true) + "=" + UriEncode(v, true);
  return out;
}

// LocalStore::List paged by |max_keys| adds up to the one-page listing.
void CheckStorePages(const objects::ListRequest& request) {
  auto whole = world->store->List({.prefix = request.prefix,
                                   .delimiter = request.delimiter,
                                   .start_after = request.start_after,
                                   .max_keys = 100000});
  FUZZ_CHECK(whole.ok() && !whole->truncated, "the whole listing");
  std::vector<std::string> all, paged;
  for (const auto& o : whole->objects) all.push_back(o.key);
  for (const auto& p : whole->common_prefixes) all.push_back(p);
  std::sort(all.begin(), all.end());
  objects::ListRequest page = request;
  for (int i = 0; i < 100; ++i) {
    auto got = world->store->List(page);
    FUZZ_CHECK(got.ok(), got.status().ToString());
    FUZZ_CHECK(got->objects.size() + got->common_prefixes.size() <= page.max_keys, "too many");
    for (const auto& o : got->objects) {
      FUZZ_CHECK(o.key.rfind(page.prefix, 0) == 0, "a key outside the prefix: " + o.key);
      paged.push_back(o.key);
    }
    for (const auto& p : got->common_prefixes) paged.push_back(p);
    if (!got->truncated) break;
    FUZZ_CHECK(!got->last.empty(), "a truncated page that says nothing of where to go on");
    page.start_after = got->last;
  }
  std::sort(paged.begin(), paged.end());
  FUZZ_CHECK(paged == all, "pages of " + std::to_string(request.max_keys) + " under '" +
                               request.prefix + "' / '" + request.delimiter +
                               "' do not add up to the whole listing");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  world = new World();
  objects::LocalStoreOptions o;
  o.root = world->dir.path() / "objects";
  o.public_url = "http://127.0.0.1:8080";
  o.credentials = {"AKIDEXAMPLE", Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), ""};
  auto opened = objects::LocalStore::Open(o, world->clock);
  FUZZ_CHECK(opened.ok(), opened.status().ToString());
  world->store = std::move(*opened);
  for (const char* key : kKeys)
    FUZZ_CHECK(world->store->PutObject(key, key, {}).ok(), std::string("put ") + key);
  world->api = std::make_unique<http::S3Api>(*world->store, world->workers);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto fields = fuzz::Fields(fuzz::AsText(data, size), 2);
  const std::string raw_query = fuzz::Field(fields, 0);
  std::string method = fields.size() > 1 && !fields[1].empty() ? fuzz::Field(fields, 1) : "GET";
  if (bhttp::string_to_verb(method) == bhttp::verb::unknown) method = "GET";
  Listing first = Call(method, raw_query);
  if (first.status != 200 || !first.listing) return 0;
  auto query = ParseQuery(raw_query);
  FUZZ_CHECK(query, "a listing answered for a query that does not parse");
  auto param = [&](const char* name) -> const std::string* {
    for (const auto& kv : *query)
      if (kv.first == name) return &kv.second;
    return nullptr;
  };
  const bool url = param("encoding-type") != nullptr;
  std::vector<std::string> decoded;
  for (const std::string& e : first.entries) {
    auto d = url ? UriDecode(e) : std::optional<std::string>(e);
    FUZZ_CHECK(d, "an entry that does not decode: " + e);
    decoded.push_back(*d);
  }
  size_t max_keys = 1000;
  if (const std::string* m = param("max-keys")) max_keys = std::min<size_t>(std::stoull(*m), 1000);
  FUZZ_CHECK(first.entries.size() <= max_keys, "more entries than max-keys");

  // The store's own pages, for the same parameters.
  objects::ListRequest request;
  if (const std::string* p = param("prefix")) request.prefix = *p;
  if (const std::string* d = param("delimiter")) request.delimiter = *d;
  if (const std::string* s = param("start-after")) request.start_after = *s;
  if (max_keys > 0) {
    request.max_keys = max_keys;
    CheckStorePages(request);
  }

  // ListObjectsV2 pages followed by their tokens add up to one page of 1000.
  if (param("list-type") && !param("continuation-token") && max_keys > 0) {
    std::vector<std::string> paged = first.entries;
    Listing page = first;
    for (int i = 0; page.truncated && i < 100; ++i) {
      FUZZ_CHECK(!page.next_token.empty(), "a truncated page without NextContinuationToken");
      page = Call("GET", With(*query, "continuation-token", page.next_token));
      FUZZ_CHECK(page.status == 200, "following a token: " + page.body);
      paged.insert(paged.end(), page.entries.begin(), page.entries.end());
    }
    Listing whole = Call("GET", With(*query, "max-keys", "1000"));
    auto a = paged, b = whole.entries;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    FUZZ_CHECK(a == b, "ListObjectsV2 pages do not add up to the whole listing: " + raw_query);
  }
  return 0;
}
