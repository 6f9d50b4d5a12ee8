#include "ingest/pull_policy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace lastframe::ingest {
namespace {

sockaddr_storage Address(const std::string& ip, uint16_t port = 80) {
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr), 1) << ip;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
  }
  return ss;
}

bool Allowed(const PullPolicy& p, const std::string& ip) {
  sockaddr_storage ss = Address(ip);
  return p.Check(reinterpret_cast<sockaddr*>(&ss)).ok();
}

TEST(PullPolicy, RefusesInsideAddressesByDefaultAndAllowsCameraNetworks) {
  PullPolicy p;
  for (const char* inside : {"127.0.0.1", "127.8.9.10", "169.254.169.254", "0.0.0.0", "224.0.0.1",
                             "255.255.255.255", "::1", "::", "fe80::1", "ff02::1", "fd00:ec2::254",
                             "::ffff:127.0.0.1", "::ffff:169.254.169.254"})
    EXPECT_FALSE(Allowed(p, inside)) << inside;
  for (const char* camera : {"192.168.1.20", "10.0.0.5", "172.16.3.4", "8.8.8.8", "fd12::5",
                             "2001:db8::1", "::ffff:192.168.1.20"})
    EXPECT_TRUE(Allowed(p, camera)) << camera;
  sockaddr_storage ss = Address("169.254.169.254");
  Status s = p.Check(reinterpret_cast<sockaddr*>(&ss));
  EXPECT_EQ(s.reason(), Reason::kPullAddressDenied);
  EXPECT_NE(s.message().find("169.254.169.254"), std::string::npos) << s.message();
}

TEST(PullPolicy, AllowOpensAndDenyWins) {
  auto loopback = ParseCidr("127.0.0.0/8");
  auto lab = ParseCidr("10.1.0.0/16");
  auto one = ParseCidr("127.0.0.7");
  ASSERT_TRUE(loopback.ok() && lab.ok() && one.ok());
  PullPolicy p({*loopback}, {*lab, *one});
  EXPECT_TRUE(Allowed(p, "127.0.0.1"));
  EXPECT_FALSE(Allowed(p, "127.0.0.7"));  // denied and allowed: deny wins
  EXPECT_FALSE(Allowed(p, "10.1.2.3"));
  EXPECT_TRUE(Allowed(p, "10.2.0.1"));
  EXPECT_FALSE(Allowed(p, "169.254.169.254"));
}

TEST(PullPolicy, CidrsAreValidated) {
  for (const char* bad :
       {"", "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/", "host/8", "1.2.3.4/-1"})
    EXPECT_FALSE(ParseCidr(bad).ok()) << bad;
  // Found by fuzz/cidr: the address was read as a C string, so a NUL cut it short.
  EXPECT_FALSE(ParseCidr(std::string("10.0.0.0\0junk/8", 15)).ok());
  auto v6 = ParseCidr("2001:db8::/32");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->prefix, 32);
}

TEST(PullPolicy, UrlsAreCheckedAfterResolution) {
  PullPolicy p;
  EXPECT_EQ(p.CheckUrl("rtsp://user:pw@localhost:554/x").reason(), Reason::kPullAddressDenied);
  EXPECT_EQ(p.CheckUrl("http://[::1]:8080/feed.ts").reason(), Reason::kPullAddressDenied);
  EXPECT_EQ(p.CheckUrl("http://169.254.169.254/latest").reason(), Reason::kPullAddressDenied);
  EXPECT_TRUE(p.CheckUrl("rtsp://192.168.1.20/stream1").ok());
  EXPECT_TRUE(p.CheckUrl("file:///tmp/x.mkv").ok());
  EXPECT_EQ(p.CheckUrl("rtsp://no-such-host.invalid/x").reason(), Reason::kInvalidSourceUrl);
}

// A guarded thread's sockets cannot reach a refused address: the listener
// sees no connection, and the refusal says where it was going.
TEST(ConnectGuard, RefusesConnectionsAndDatagramsOnItsThreadOnly) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  PullPolicy policy;
  {
    ConnectGuard guard(policy);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), -1);
    EXPECT_EQ(errno, EACCES);
    close(fd);
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    EXPECT_EQ(sendto(udp, "x", 1, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr), -1);
    close(udp);
    EXPECT_EQ(guard.refusal().reason(), Reason::kPullAddressDenied);
    EXPECT_NE(guard.refusal().message().find("127.0.0.1"), std::string::npos);
  }
  // Nothing reached the listener: a non-blocking accept finds no connection.
  fcntl(listener, F_SETFL, O_NONBLOCK);
  EXPECT_EQ(accept(listener, nullptr, nullptr), -1);
  // Unguarded, the same connect goes through.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  int accepted = accept(listener, nullptr, nullptr);
  EXPECT_GE(accepted, 0);
  close(accepted);
  close(fd);
  close(listener);
}

}  // namespace
}  // namespace lastframe::ingest
