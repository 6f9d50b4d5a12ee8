#include "core/log.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>

namespace lastframe::log {
namespace {

class LogPayload : public ::testing::Test {
 protected:
  void TearDown() override { SetFormat(Format::kText); }
};

TEST_F(LogPayload, TextIsMessageThenKeyValuesQuotedWhereNeeded) {
  SetFormat(Format::kText);
  EXPECT_EQ(Payload("request", {{"route", "api"},
                                {"path", "/v1/streams/a b"},
                                {"status", 404},
                                {"bytes", uint64_t{18446744073709551615u}},
                                {"ms", 1.5},
                                {"empty", ""}}),
            "request route=api path=\"/v1/streams/a b\" status=404 bytes=18446744073709551615 "
            "ms=1.5 empty=\"\"");
}

TEST_F(LogPayload, JsonIsMarkedMembersThenTheMessage) {
  SetFormat(Format::kJson);
  EXPECT_EQ(Payload("request", {{"path", "/a\"b\\"}, {"status", -1}, {"ratio", 0.25}}),
            std::string(1, kFieldsMarker) + R"("path":"/a\"b\\","status":-1,"ratio":0.25)" +
                kFieldsMarker + "request");
}

TEST_F(LogPayload, ACopiedNumberKeepsItsTextAfterTheOriginalIsGone) {
  SetFormat(Format::kText);
  auto original = std::make_unique<Field>("n", int64_t{1234567});
  std::optional<Field> copy(*original);
  original.reset();
  EXPECT_EQ(copy->text(), "1234567");
  EXPECT_EQ(Payload("m", {*copy}), "m n=1234567");
}

}  // namespace
}  // namespace lastframe::log
