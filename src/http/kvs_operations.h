#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"
#include "http/errors.h"
#include "http/server.h"
#include "kvs/kvs_service.h"

// Kinesis Video's JSON operations, for KvsApi: each parses its body into the
// service's request (errors naming the field, as Kinesis Video's do), calls
// kvs::KvsService, and renders the result as Kinesis Video's JSON, or the
// error through KvsErrorOf. The ones that read media answer through |respond|.
namespace lastframe::http::kvs_ops {

Response CreateStream(kvs::KvsService& kvs, const nlohmann::json& body);
Response DescribeStream(kvs::KvsService& kvs, const nlohmann::json& body);
Response ListStreams(kvs::KvsService& kvs, const nlohmann::json& body);
Response DeleteStream(kvs::KvsService& kvs, const nlohmann::json& body);
Response UpdateDataRetention(kvs::KvsService& kvs, const nlohmann::json& body);
Response GetDataEndpoint(kvs::KvsService& kvs, const nlohmann::json& body);
Response UpdateImageGeneration(kvs::KvsService& kvs, const nlohmann::json& body);
Response DescribeImageGeneration(kvs::KvsService& kvs, const nlohmann::json& body);
void ListFragments(kvs::KvsService& kvs, const nlohmann::json& body, Respond respond);
void GetMediaForFragmentList(kvs::KvsService& kvs, const nlohmann::json& body, Respond respond);
void GetClip(kvs::KvsService& kvs, const nlohmann::json& body, Respond respond);
void GetImages(kvs::KvsService& kvs, const nlohmann::json& body, Respond respond);

// GetMedia's request (StreamName or StreamARN, StartSelector); KvsApi streams the answer.
Result<kvs::GetMediaRequest> ParseGetMedia(const nlohmann::json& body);

// A fresh x-amzn-RequestId.
std::string RequestId();

}  // namespace lastframe::http::kvs_ops
