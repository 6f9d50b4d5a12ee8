#include "ingest/byte_pipe.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace lastframe::ingest {
namespace {

std::string ReadAll(BytePipe& pipe) {
  std::string out;
  uint8_t buf[7];
  int n;
  while ((n = pipe.Read(buf, sizeof buf)) > 0) out.append(reinterpret_cast<char*>(buf), n);
  return out;
}

// Waits until |pipe| has a reader blocked in Read (yielding, bounded): the
// tests below must see a reader that is already waiting when bytes arrive.
bool ReaderBlocks(const BytePipe& pipe) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pipe.blocked_readers() == 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(BytePipe, DeliversBytesInOrderThenEnd) {
  BytePipe pipe(1024, nullptr);
  std::string a = "hello, ", b = "matroska world";
  pipe.Write(reinterpret_cast<const uint8_t*>(a.data()), a.size());
  pipe.Write(reinterpret_cast<const uint8_t*>(b.data()), b.size());
  pipe.Close();
  EXPECT_EQ(ReadAll(pipe), a + b);
}

TEST(BytePipe, ReaderBlocksUntilBytesArrive) {
  BytePipe pipe(1024, nullptr);
  std::string got;
  std::thread reader([&] { got = ReadAll(pipe); });
  EXPECT_TRUE(ReaderBlocks(pipe)) << "the reader did not wait for bytes";
  std::string data(5000, 'x');
  for (size_t i = 0; i < data.size(); i += 100)
    pipe.Write(reinterpret_cast<const uint8_t*>(data.data() + i), 100);
  pipe.Close();
  reader.join();
  EXPECT_EQ(got, data);
}

TEST(BytePipe, SignalsSpaceAfterBackpressure) {
  std::atomic<int> spaces{0};
  BytePipe pipe(100, [&] { ++spaces; });
  std::string data(60, 'x');
  EXPECT_TRUE(pipe.Write(reinterpret_cast<const uint8_t*>(data.data()), 60));
  EXPECT_FALSE(pipe.Write(reinterpret_cast<const uint8_t*>(data.data()), 60));  // 120 >= 100
  uint8_t buf[30];
  EXPECT_EQ(pipe.Read(buf, 30), 30);  // 90 left: still above half
  EXPECT_EQ(spaces.load(), 0);
  EXPECT_EQ(pipe.Read(buf, 30), 30);  // 60 left
  EXPECT_EQ(pipe.Read(buf, 30), 30);  // 30 left: below half
  EXPECT_EQ(spaces.load(), 1);
}

TEST(BytePipe, AbortWakesTheReader) {
  BytePipe pipe(100, nullptr);
  int result = 0;
  std::thread reader([&] {
    uint8_t buf[10];
    result = pipe.Read(buf, 10);
  });
  EXPECT_TRUE(ReaderBlocks(pipe)) << "the reader did not wait for bytes";
  pipe.Abort();
  reader.join();
  EXPECT_EQ(result, -1);
  EXPECT_TRUE(pipe.aborted());
  EXPECT_FALSE(pipe.WaitForSpace());
}

}  // namespace
}  // namespace lastframe::ingest
