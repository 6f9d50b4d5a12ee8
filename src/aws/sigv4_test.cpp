#include "aws/sigv4.h"

#include <gtest/gtest.h>

#include "core/time_format.h"

namespace lastframe::aws {
namespace {

// AWS's published example credentials and time (S3 API reference,
// "Authenticating Requests: Using Query Parameters" and "... Authorization Header").
const Credentials kExampleCredentials{"AKIAIOSFODNN7EXAMPLE",
                                      Secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), ""};
constexpr int64_t kExampleTime = 1369353600000;  // 20130524T000000Z

std::string Param(const QueryParams& q, const std::string& key) {
  for (const auto& [k, v] : q)
    if (k == key) return v;
  return "";
}

TEST(SigV4, AwsPublishedPresignedUrlExample) {
  ManualClock clock(kExampleTime);
  SigV4 signer(kExampleCredentials, "us-east-1", "s3", clock);
  std::string query =
      signer.PresignQuery("GET", "examplebucket.s3.amazonaws.com", "/test.txt", 86400);
  EXPECT_EQ(query,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(SigV4, AwsPublishedGetObjectHeaderExample) {
  ManualClock clock(kExampleTime);
  SigV4 signer(kExampleCredentials, "us-east-1", "s3", clock);
  CanonicalRequest req;
  req.method = "GET";
  req.path = "/test.txt";
  req.payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  req.headers = {{"host", "examplebucket.s3.amazonaws.com"},
                 {"range", "bytes=0-9"},
                 {"x-amz-content-sha256", req.payload_hash},
                 {"x-amz-date", "20130524T000000Z"}};
  EXPECT_EQ(req.SignedHeaders(), "host;range;x-amz-content-sha256;x-amz-date");
  EXPECT_EQ(signer.Sign(req, kExampleTime),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, AwsPublishedPutObjectHeaderExample) {
  ManualClock clock(kExampleTime);
  SigV4 signer(kExampleCredentials, "us-east-1", "s3", clock);
  CanonicalRequest req;
  req.method = "PUT";
  req.path = "/test$file.text";
  req.payload_hash = Sha256Hex("Welcome to Amazon S3.");
  EXPECT_EQ(req.payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  req.headers = {{"date", "Fri, 24 May 2013 00:00:00 GMT"},
                 {"host", "examplebucket.s3.amazonaws.com"},
                 {"x-amz-date", "20130524T000000Z"},
                 {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                 {"x-amz-content-sha256", req.payload_hash}};
  EXPECT_EQ(signer.Authorization(req, kExampleTime),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
            "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, AwsPublishedListObjectsHeaderExample) {
  ManualClock clock(kExampleTime);
  SigV4 signer(kExampleCredentials, "us-east-1", "s3", clock);
  CanonicalRequest req;
  req.method = "GET";
  req.path = "/";
  req.query = *ParseQuery("max-keys=2&prefix=J");
  req.payload_hash = Sha256Hex("");
  req.headers = {{"host", "examplebucket.s3.amazonaws.com"},
                 {"x-amz-content-sha256", req.payload_hash},
                 {"x-amz-date", "20130524T000000Z"}};
  EXPECT_EQ(signer.Sign(req, kExampleTime),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

// A request signed in its Authorization header, as the embedded store receives it.
HeaderList SignedHeaderList(const SigV4& signer, int64_t now_ms, const std::string& method,
                            const std::string& path, const std::string& body,
                            const std::string& token = "") {
  CanonicalRequest req;
  req.method = method;
  req.path = path;
  req.payload_hash = Sha256Hex(body);
  req.headers = {{"host", "127.0.0.1:8080"},
                 {"x-amz-content-sha256", req.payload_hash},
                 {"x-amz-date", FormatAmzDate(now_ms)}};
  if (!token.empty()) req.headers.emplace_back("x-amz-security-token", token);
  HeaderList out = req.headers;
  out.emplace_back("authorization", signer.Authorization(req, now_ms));
  out.emplace_back("user-agent", "unsigned  headers   are ignored");
  return out;
}

TEST(SigV4, HeaderAuthRoundTripAndRefusals) {
  ManualClock clock(1'764'000'000'000);
  SigV4 server({"LFKEY", Secret("s3cr3t"), ""}, "us-east-1", "s3", clock);
  SigV4 client({"LFKEY", Secret("s3cr3t"), ""}, "us-east-1", "s3", clock);
  HeaderList h = SignedHeaderList(client, clock.NowMs(), "PUT", "/b/a b+c.jpg", "body");
  auto ok = server.VerifyHeaderAuth("PUT", "/b/a b+c.jpg", {}, h);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, Sha256Hex("body"));  // the declared hash, for the caller to check
  EXPECT_EQ(server.VerifyHeaderAuth("PUT", "/b/other.jpg", {}, h).status().reason(),
            Reason::kSignatureDoesNotMatch);
  EXPECT_EQ(server.VerifyHeaderAuth("GET", "/b/a b+c.jpg", {}, h).status().reason(),
            Reason::kSignatureDoesNotMatch);
  EXPECT_EQ(server.VerifyHeaderAuth("PUT", "/b/a b+c.jpg", {{"x", "1"}}, h).status().reason(),
            Reason::kSignatureDoesNotMatch);
  clock.Advance(16 * 60'000);
  EXPECT_EQ(server.VerifyHeaderAuth("PUT", "/b/a b+c.jpg", {}, h).status().reason(),
            Reason::kRequestTimeTooSkewed);
  clock.Advance(-16 * 60'000);
  // A session token must match the server's; none may be sent when it has none.
  SigV4 with_token({"LFKEY", Secret("s3cr3t"), "tok3n"}, "us-east-1", "s3", clock);
  HeaderList t = SignedHeaderList(client, clock.NowMs(), "GET", "/b/k", "", "tok3n");
  EXPECT_TRUE(with_token.VerifyHeaderAuth("GET", "/b/k", {}, t).ok());
  EXPECT_EQ(server.VerifyHeaderAuth("GET", "/b/k", {}, t).status().reason(), Reason::kInvalidToken);
  HeaderList wrong = SignedHeaderList(client, clock.NowMs(), "GET", "/b/k", "", "other");
  EXPECT_EQ(with_token.VerifyHeaderAuth("GET", "/b/k", {}, wrong).status().reason(),
            Reason::kInvalidToken);
  // A signed header that is not in the request.
  HeaderList missing = h;
  missing.erase(missing.begin());  // host
  EXPECT_EQ(server.VerifyHeaderAuth("PUT", "/b/a b+c.jpg", {}, missing).status().reason(),
            Reason::kAuthorizationHeaderMalformed);
  EXPECT_EQ(CanonicalHeaderValue({{"a", "  x   y  "}, {"a", "z"}}, "a"), "x y,z");
}

TEST(SigV4, PresignCarriesTheSessionToken) {
  ManualClock clock(kExampleTime);
  SigV4 signer({"AKID", Secret("secret"), "session/token+="}, "us-east-1", "s3", clock);
  std::string q = signer.PresignQuery("GET", "h", "/b/k", 60);
  EXPECT_NE(q.find("X-Amz-Security-Token=session%2Ftoken%2B%3D"), std::string::npos) << q;
  EXPECT_TRUE(signer.VerifyPresigned("GET", "h", "/b/k", *ParseQuery(q)).ok());
}

class PresignRoundTrip : public ::testing::Test {
 protected:
  ManualClock clock_{1'764'000'000'000};
  SigV4 signer_{Credentials{"LFKEY", Secret("s3cr3t"), ""}, "us-east-1", "s3", clock_};
  const std::string host_ = "127.0.0.1:8080";
  const std::string path_ = "/lastframe/snapshots/cam 1/+x.jpg";

  Status Verify(const std::string& query, const std::string& path = "") {
    auto q = ParseQuery(query);
    EXPECT_TRUE(q);
    return signer_.VerifyPresigned("GET", host_, path.empty() ? path_ : path, *q);
  }
  std::string Replace(std::string s, const std::string& from, const std::string& to) {
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  }
};

TEST_F(PresignRoundTrip, SignedThenVerified) {
  std::string q = signer_.PresignQuery("GET", host_, path_, 600);
  EXPECT_TRUE(Verify(q).ok()) << Verify(q).ToString();
  clock_.Advance(600'999);
  EXPECT_TRUE(Verify(q).ok());  // the last valid second, to its end
}

TEST_F(PresignRoundTrip, TheHostIsSignedInItsCanonicalForm) {
  // Found by fuzz/sigv4: a host with blanks was signed as given but verified
  // trimmed and folded, so its URLs never verified.
  for (const std::string host : {"example.com ", " a  b "}) {
    std::string q = signer_.PresignQuery("GET", host, path_, 600);
    EXPECT_TRUE(signer_.VerifyPresigned("GET", host, path_, *ParseQuery(q)).ok()) << host;
  }
}

TEST_F(PresignRoundTrip, ValidForAtLeastTheSecondsAsked) {
  // Made at .900: the date says .000, yet the URL lives a full second and more.
  clock_.Set(1'764'000'000'900);
  std::string q = signer_.PresignQuery("GET", host_, path_, 1);
  EXPECT_TRUE(Verify(q).ok());
  clock_.Set(1'764'000'001'900);
  EXPECT_TRUE(Verify(q).ok()) << Verify(q).ToString();
  clock_.Set(1'764'000'001'999);
  EXPECT_TRUE(Verify(q).ok());
  clock_.Set(1'764'000'002'000);
  EXPECT_EQ(Verify(q).message(), "Request has expired");
  // Whatever the millisecond it was made at, the URL outlives what was asked
  // by less than a second.
  for (int64_t made :
       {1'764'000'000'000, 1'764'000'000'001, 1'764'000'000'500, 1'764'000'000'999}) {
    int64_t expires_at = PresignedUrlExpiresAtMs(made, 600);
    EXPECT_GE(expires_at - made, 600'000) << made;
    EXPECT_LE(expires_at - made, 601'000) << made;
    clock_.Set(made);
    q = signer_.PresignQuery("GET", host_, path_, 600);
    clock_.Set(expires_at - 1);
    EXPECT_TRUE(Verify(q).ok()) << made;
    clock_.Set(expires_at);
    EXPECT_EQ(Verify(q).reason(), Reason::kAccessDenied) << made;
  }
}

TEST_F(PresignRoundTrip, ExpiredIsAccessDenied) {
  std::string q = signer_.PresignQuery("GET", host_, path_, 600);
  clock_.Advance(601'000);
  Status s = Verify(q);
  EXPECT_EQ(s.reason(), Reason::kAccessDenied);
  EXPECT_EQ(s.message(), "Request has expired");
  EXPECT_EQ(s.code(), Code::kPermissionDenied);
}

TEST_F(PresignRoundTrip, TamperedSignatureKeyExpiryOrDateIsRejected) {
  std::string q = signer_.PresignQuery("GET", host_, path_, 600);
  std::string sig = q.substr(q.find("X-Amz-Signature=") + 16);
  std::string flipped = sig;
  flipped[0] = flipped[0] == 'a' ? 'b' : 'a';
  EXPECT_EQ(Verify(Replace(q, sig, flipped)).reason(), Reason::kSignatureDoesNotMatch);
  EXPECT_EQ(Verify(q, "/lastframe/snapshots/cam 1/other.jpg").reason(),
            Reason::kSignatureDoesNotMatch);
  EXPECT_EQ(Verify(Replace(q, "X-Amz-Expires=600", "X-Amz-Expires=6000")).reason(),
            Reason::kSignatureDoesNotMatch);
  std::string date = q.substr(q.find("X-Amz-Date=") + 11, 16);
  std::string later = date;
  later[15 - 1] = later[14] == '9' ? '8' : '9';  // change the seconds
  EXPECT_EQ(Verify(Replace(q, date, later)).reason(), Reason::kSignatureDoesNotMatch);
  EXPECT_EQ(Verify(Replace(q, "LFKEY", "OTHER")).reason(), Reason::kInvalidAccessKeyId);
  // A signature made with another secret.
  SigV4 other(Credentials{"LFKEY", Secret("wrong"), ""}, "us-east-1", "s3", clock_);
  EXPECT_EQ(Verify(other.PresignQuery("GET", host_, path_, 600)).reason(),
            Reason::kSignatureDoesNotMatch);
  // Another host (a URL replayed elsewhere).
  auto parsed = ParseQuery(q);
  EXPECT_EQ(signer_.VerifyPresigned("GET", "evil:80", path_, *parsed).reason(),
            Reason::kSignatureDoesNotMatch);
  EXPECT_EQ(signer_.VerifyPresigned("PUT", host_, path_, *parsed).reason(),
            Reason::kSignatureDoesNotMatch);
}

TEST_F(PresignRoundTrip, MalformedParametersAreQueryErrors) {
  std::string q = signer_.PresignQuery("GET", host_, path_, 600);
  EXPECT_EQ(Verify(Replace(q, "X-Amz-Expires=600", "X-Amz-Expires=604801")).reason(),
            Reason::kAuthorizationQueryParametersError);
  EXPECT_EQ(Verify(Replace(q, "X-Amz-Expires=600", "X-Amz-Expires=ten")).reason(),
            Reason::kAuthorizationQueryParametersError);
  EXPECT_EQ(Verify(Replace(q, "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")).reason(),
            Reason::kAuthorizationQueryParametersError);
  EXPECT_EQ(Verify("X-Amz-Algorithm=AWS4-HMAC-SHA256").reason(),
            Reason::kAuthorizationQueryParametersError);
  EXPECT_EQ(Verify(Replace(q, "X-Amz-Date=", "X-Amz-Date=x")).reason(),
            Reason::kAuthorizationQueryParametersError);
  EXPECT_EQ(Verify(Replace(q, "us-east-1", "eu-west-1")).reason(),
            Reason::kAuthorizationQueryParametersError);
}

TEST_F(PresignRoundTrip, FutureDatedBeyondSkewIsRejected) {
  clock_.Advance(3'600'000);
  std::string q = signer_.PresignQuery("GET", host_, path_, 600);
  clock_.Advance(-3'600'000);
  EXPECT_EQ(Verify(q).message(), "Request is not valid yet");
}

TEST_F(PresignRoundTrip, RepeatedAuthParametersAreQueryErrors) {
  SigV4 with_token{Credentials{"LFKEY", Secret("s3cr3t"), "tok"}, "us-east-1", "s3", clock_};
  std::string q = with_token.PresignQuery("GET", host_, path_, 600);
  auto parsed = ParseQuery(q);
  ASSERT_TRUE(parsed);
  ASSERT_TRUE(with_token.VerifyPresigned("GET", host_, path_, *parsed).ok());
  for (const char* name : {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                           "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}) {
    // The same value again, before and after the original: the URL is otherwise intact.
    for (bool first : {true, false}) {
      QueryParams twice = *parsed;
      auto pair = std::make_pair(std::string(name), Param(*parsed, name));
      ASSERT_FALSE(pair.second.empty()) << name;
      if (first)
        twice.insert(twice.begin(), pair);
      else
        twice.push_back(pair);
      Status s = with_token.VerifyPresigned("GET", host_, path_, twice);
      EXPECT_EQ(s.reason(), Reason::kAuthorizationQueryParametersError) << name;
      EXPECT_EQ(s.code(), Code::kInvalidArgument) << name;
      EXPECT_EQ(s.message(), std::string(name) + " must be given only once");
    }
  }
  // A forged signature beside the real one is refused whichever comes first.
  auto verify = [&](const std::string& query) {
    return with_token.VerifyPresigned("GET", host_, path_, *ParseQuery(query)).reason();
  };
  std::string forged = std::string(64, '0');
  EXPECT_EQ(verify(q + "&X-Amz-Signature=" + forged), Reason::kAuthorizationQueryParametersError);
  EXPECT_EQ(verify("X-Amz-Signature=" + forged + "&" + q),
            Reason::kAuthorizationQueryParametersError);
  // Parameters that are not SigV4's may repeat (they are signed as they come).
  EXPECT_EQ(verify(q + "&x=1&x=2"), Reason::kSignatureDoesNotMatch);
}

TEST(SigV4, RepeatedAuthorizationPartsAreMalformed) {
  ManualClock clock(1'764'000'000'000);
  SigV4 server({"LFKEY", Secret("s3cr3t"), ""}, "us-east-1", "s3", clock);
  HeaderList h = SignedHeaderList(server, clock.NowMs(), "GET", "/b/k", "");
  ASSERT_TRUE(server.VerifyHeaderAuth("GET", "/b/k", {}, h).ok());
  std::string auth = *CanonicalHeaderValue(h, "authorization");
  auto with_auth = [&](const std::vector<std::string>& values) {
    HeaderList out;
    for (const auto& [k, v] : h)
      if (k != "authorization") out.emplace_back(k, v);
    for (const auto& v : values) out.emplace_back("authorization", v);
    return server.VerifyHeaderAuth("GET", "/b/k", {}, out).status();
  };
  auto part = [&](const std::string& name) {
    size_t at = auth.find(name + "=");
    size_t end = auth.find(',', at);
    return auth.substr(at, end == std::string::npos ? std::string::npos : end - at);
  };
  for (const std::string name : {"Credential", "SignedHeaders", "Signature"}) {
    Status s = with_auth({auth + ", " + part(name)});
    EXPECT_EQ(s.reason(), Reason::kAuthorizationHeaderMalformed) << name;
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << name;
    EXPECT_NE(s.message().find("the " + name + " part is given twice"), std::string::npos)
        << s.message();
  }
  // A forged signature first, the real one after it.
  std::string forged = "AWS4-HMAC-SHA256 Signature=" + std::string(64, '0') + ", " +
                       auth.substr(std::string("AWS4-HMAC-SHA256 ").size());
  EXPECT_EQ(with_auth({forged}).reason(), Reason::kAuthorizationHeaderMalformed);
  EXPECT_EQ(with_auth({auth, auth}).reason(), Reason::kAuthorizationHeaderMalformed);
  EXPECT_EQ(with_auth({"AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=00"}).reason(),
            Reason::kAuthorizationHeaderMalformed);
  EXPECT_TRUE(with_auth({auth}).ok());
}

// A request signed in its Authorization header over |signed| (name, value),
// canonicalised in the order given, as a client that lists them so would.
HeaderList SignedOver(const SigV4& signer, int64_t now_ms, HeaderList signed_headers,
                      bool in_given_order = false) {
  CanonicalRequest req;
  req.method = "GET";
  req.path = "/b/k";
  req.payload_hash = Sha256Hex("");
  signed_headers.emplace_back("x-amz-content-sha256", req.payload_hash);
  req.headers = signed_headers;
  req.headers_in_given_order = in_given_order;
  HeaderList out = signed_headers;
  // Sent whether or not they are signed.
  if (!CanonicalHeaderValue(out, "x-amz-date"))
    out.emplace_back("x-amz-date", FormatAmzDate(now_ms));
  if (!CanonicalHeaderValue(out, "host")) out.emplace_back("host", "127.0.0.1:8080");
  out.emplace_back("authorization", signer.Authorization(req, now_ms));
  return out;
}

TEST(SigV4, SignedHeadersIsAListThatNamesHost) {
  ManualClock clock(1'764'000'000'000);
  SigV4 server({"LFKEY", Secret("s3cr3t"), ""}, "us-east-1", "s3", clock);
  const std::string date = FormatAmzDate(clock.NowMs());
  auto verify = [&](const HeaderList& h) {
    return server.VerifyHeaderAuth("GET", "/b/k", {}, h).status();
  };
  ASSERT_TRUE(
      verify(SignedOver(server, clock.NowMs(), {{"host", "127.0.0.1:8080"}, {"x-amz-date", date}}))
          .ok());
  // Correctly signed, but over no host header: "xhost" contains "host", it is not host.
  Status xhost = verify(SignedOver(server, clock.NowMs(), {{"x-amz-date", date}, {"xhost", "h"}}));
  EXPECT_EQ(xhost.reason(), Reason::kAuthorizationHeaderMalformed);
  EXPECT_NE(xhost.message().find("SignedHeaders must include host"), std::string::npos)
      << xhost.message();
  // Listed in another order than sorted: canonicalised in the order given, as S3 does.
  HeaderList unsorted =
      SignedOver(server, clock.NowMs(), {{"x-amz-date", date}, {"host", "127.0.0.1:8080"}}, true);
  EXPECT_NE(CanonicalHeaderValue(unsorted, "authorization")
                ->find("SignedHeaders=x-amz-date;host;x-amz-content-sha256,"),
            std::string::npos);
  EXPECT_TRUE(verify(unsorted).ok()) << verify(unsorted).ToString();
  // Empty, repeated and upper-case names are malformed lists, signed or not.
  HeaderList good =
      SignedOver(server, clock.NowMs(), {{"host", "127.0.0.1:8080"}, {"x-amz-date", date}});
  std::string auth = *CanonicalHeaderValue(good, "authorization");
  for (const std::string list :
       {"host;;x-amz-content-sha256;x-amz-date", "host;x-amz-content-sha256;x-amz-date;",
        ";host;x-amz-content-sha256;x-amz-date", "host;host;x-amz-content-sha256;x-amz-date",
        "host;x-amz-content-sha256;x-amz-date;x-amz-date", "Host;x-amz-content-sha256;x-amz-date",
        "xhost;x-amz-content-sha256;x-amz-date"}) {
    HeaderList h = good;
    for (auto& [k, v] : h) {
      if (k != "authorization") continue;
      size_t at = v.find("SignedHeaders=") + 14;
      v.replace(at, v.find(',', at) - at, list);
    }
    h.emplace_back("xhost", "h");
    Status s = verify(h);
    EXPECT_EQ(s.reason(), Reason::kAuthorizationHeaderMalformed) << list << ": " << s.ToString();
  }
}

TEST_F(PresignRoundTrip, SignedHeadersMustNameHost) {
  // A URL signed over a header other than host, as a client could sign it.
  auto presign = [&](const std::string& signed_headers, const HeaderList& headers) {
    CanonicalRequest req;
    req.method = "GET";
    req.path = path_;
    req.query = {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
                 {"X-Amz-Credential", "LFKEY/" + signer_.Scope(clock_.NowMs())},
                 {"X-Amz-Date", FormatAmzDate(clock_.NowMs())},
                 {"X-Amz-Expires", "600"},
                 {"X-Amz-SignedHeaders", signed_headers}};
    req.headers = headers;
    req.headers_in_given_order = true;
    req.payload_hash = "UNSIGNED-PAYLOAD";
    QueryParams q = req.query;
    q.emplace_back("X-Amz-Signature", signer_.Sign(req, clock_.NowMs()));
    return q;
  };
  HeaderList sent = {{"host", host_}, {"xhost", "x"}, {"range", "bytes=0-1"}};
  QueryParams good = presign("host", {{"host", host_}});
  ASSERT_TRUE(signer_.VerifyPresigned("GET", path_, good, sent).ok());
  QueryParams xhost = presign("xhost", {{"xhost", "x"}});
  Status s = signer_.VerifyPresigned("GET", path_, xhost, sent);
  EXPECT_EQ(s.reason(), Reason::kAuthorizationQueryParametersError);
  EXPECT_EQ(s.message(), "X-Amz-SignedHeaders: SignedHeaders must include host");
  QueryParams twice = presign("host;host", {{"host", host_}, {"host", host_}});
  EXPECT_EQ(signer_.VerifyPresigned("GET", path_, twice, sent).reason(),
            Reason::kAuthorizationQueryParametersError);
  QueryParams unsorted = presign("range;host", {{"range", "bytes=0-1"}, {"host", host_}});
  EXPECT_TRUE(signer_.VerifyPresigned("GET", path_, unsorted, sent).ok());
}

}  // namespace
}  // namespace lastframe::aws
