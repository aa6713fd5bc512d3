// The S3 operations: each builds a Call and turns the answer (headers or XML) into its result.
#include <algorithm>

#include "src/s3/client.hpp"
#include "src/s3/client_call.hpp"
#include "src/s3/xml.hpp"
#include "src/util/number.hpp"

namespace wharf::s3 {

namespace {

using Response = Client::Response;
using Call = Client::Call;

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// The answer's XML root, or an S3Error naming what was expected.
std::expected<XmlNode, S3Error> answer_xml(const Response& r, std::string_view root) {
  auto doc = parse_xml(r.body);
  if (!doc || doc->name != root) {
    S3Error e = error_from_response(r.status, "");
    e.code = "MalformedResponse";
    e.message = "expected <" + std::string(root) + ">: " + (doc ? "got <" + doc->name + ">" : doc.error());
    return std::unexpected(e);
  }
  return std::move(*doc);
}

ObjectInfo info_from(const proxy::HttpHead& head) {
  ObjectInfo info;
  info.size = util::parse_u64_trimmed(head.header("content-length")).value_or(0);
  info.total_size = info.size;
  // "bytes a-b/total" on a ranged answer.
  const std::string_view cr = head.header("content-range");
  if (const size_t slash = cr.rfind('/'); slash != std::string_view::npos) {
    if (auto total = util::parse_u64(cr.substr(slash + 1))) info.total_size = *total;
  }
  info.etag = head.header("etag");
  info.last_modified = head.header("last-modified");
  info.content_type = head.header("content-type");
  return info;
}

// Adapts a Response callback into a Done<T> through `convert`.
template <typename T, typename F>
std::function<void(std::expected<Response, S3Error>)> then(Done<T> done, F convert) {
  return [done = std::move(done), convert = std::move(convert)](std::expected<Response, S3Error> r) {
    if (!done) return;
    if (!r) return done(std::unexpected(std::move(r.error())));
    done(convert(*r));
  };
}

std::function<void(std::expected<Response, S3Error>)> then_void(Done<void> done) {
  return [done = std::move(done)](std::expected<Response, S3Error> r) {
    if (!done) return;
    if (!r) return done(std::unexpected(std::move(r.error())));
    done({});
  };
}

std::string range_header(const ByteRange& r) {
  return "bytes=" + std::to_string(r.first) + "-" + std::to_string(r.last);
}

std::string strip_root(const std::string& full, const std::string& root) {
  return full.starts_with(root) ? full.substr(root.size()) : full;
}

}  // namespace

namespace detail {

// Headers of object-creating calls: content type, encryption and storage class from the config.
void write_headers(const ClientConfig& cfg, const PutOptions& opts, Call& call, bool content_type) {
  if (content_type) {
    call.headers.emplace_back("content-type", opts.content_type.empty() ? "application/octet-stream" : opts.content_type);
  }
  if (!cfg.encrypt.empty()) {
    call.headers.emplace_back("x-amz-server-side-encryption", cfg.encrypt);
    if (cfg.encrypt == "aws:kms" && !cfg.kms_key_id.empty()) {
      call.headers.emplace_back("x-amz-server-side-encryption-aws-kms-key-id", cfg.kms_key_id);
    }
  }
  if (!cfg.storage_class.empty() && cfg.storage_class != "NONE") call.headers.emplace_back("x-amz-storage-class", cfg.storage_class);
}

}  // namespace detail

uint64_t Client::create_bucket(Done<void> done) {
  Call call;
  call.op = "CreateBucket";
  call.method = "PUT";
  call.not_found_code = "NoSuchBucket";
  if (config().region != "us-east-1") {
    call.body = proxy::RequestBody::from_string(
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>" +
        xml_escape(config().region) + "</LocationConstraint></CreateBucketConfiguration>");
  }
  call.done = [done = std::move(done)](std::expected<Response, S3Error> r) {
    if (!done) return;
    if (!r && r.error().code != "BucketAlreadyOwnedByYou") return done(std::unexpected(std::move(r.error())));
    done({});
  };
  return execute(std::move(call));
}

uint64_t Client::head_bucket(Done<void> done) {
  Call call;
  call.op = "HeadBucket";
  call.method = "HEAD";
  call.not_found_code = "NoSuchBucket";
  call.done = then_void(std::move(done));
  return execute(std::move(call));
}

uint64_t Client::put_object(const std::string& key, proxy::RequestBody body, const PutOptions& opts, Done<std::string> done) {
  Call call;
  call.op = "PutObject";
  call.method = "PUT";
  call.key = key;
  call.body = std::move(body);
  detail::write_headers(config(), opts, call, true);
  if (opts.if_none_match) call.headers.emplace_back("if-none-match", "*");
  call.done = then<std::string>(std::move(done), [](const Response& r) { return std::string(r.head.header("etag")); });
  return execute(std::move(call));
}

uint64_t Client::get_object(const std::string& key, std::optional<ByteRange> range, GetHandlers handlers) {
  auto shared = std::make_shared<GetHandlers>(std::move(handlers));
  Call call;
  call.op = "GetObject";
  call.key = key;
  if (range) call.headers.emplace_back("range", range_header(*range));
  call.on_head = [shared](const proxy::HttpHead& head) {
    if (shared->on_head) shared->on_head(info_from(head));
  };
  call.on_data = [shared](const char* p, size_t n) { return shared->on_data ? shared->on_data(p, n) : true; };
  if (shared->hold) call.hold = [shared] { return shared->hold(); };
  call.done = [shared](std::expected<Response, S3Error> r) {
    if (!shared->on_done) return;
    if (!r) return shared->on_done(std::unexpected(std::move(r.error())));
    shared->on_done({});
  };
  return execute(std::move(call));
}

uint64_t Client::head_object(const std::string& key, Done<ObjectInfo> done) {
  Call call;
  call.op = "HeadObject";
  call.method = "HEAD";
  call.key = key;
  call.done = then<ObjectInfo>(std::move(done), [](const Response& r) { return info_from(r.head); });
  return execute(std::move(call));
}

uint64_t Client::delete_object(const std::string& key, Done<void> done) {
  Call call;
  call.op = "DeleteObject";
  call.method = "DELETE";
  call.key = key;
  call.done = then_void(std::move(done));
  return execute(std::move(call));
}

uint64_t Client::list_objects(const ListRequest& req, Done<ListPage> done) {
  Call call;
  call.op = "ListObjectsV2";
  call.not_found_code = "NoSuchBucket";
  call.query.emplace_back("list-type", "2");
  call.query.emplace_back("prefix", full_key(req.prefix));
  call.query.emplace_back("max-keys", std::to_string(std::clamp(req.max_keys, 1, 1000)));
  if (!req.delimiter.empty()) call.query.emplace_back("delimiter", req.delimiter);
  if (!req.continuation_token.empty()) call.query.emplace_back("continuation-token", req.continuation_token);
  const std::string root = full_key("");
  call.done = [done = std::move(done), root](std::expected<Response, S3Error> r) {
    if (!done) return;
    if (!r) return done(std::unexpected(std::move(r.error())));
    auto doc = answer_xml(*r, "ListBucketResult");
    if (!doc) return done(std::unexpected(doc.error()));
    ListPage page;
    for (const XmlNode* c : doc->all("Contents")) {
      ObjectEntry e;
      e.key = strip_root(std::string(c->child_text("Key")), root);
      e.size = util::parse_u64(c->child_text("Size")).value_or(0);
      e.etag = c->child_text("ETag");
      e.last_modified = c->child_text("LastModified");
      page.objects.push_back(std::move(e));
    }
    for (const XmlNode* p : doc->all("CommonPrefixes")) page.common_prefixes.push_back(strip_root(std::string(p->child_text("Prefix")), root));
    page.truncated = doc->child_text("IsTruncated") == "true";
    page.next_token = doc->child_text("NextContinuationToken");
    if (page.truncated && page.next_token.empty()) {
      S3Error e = error_from_response(r->status, "");
      e.code = "MalformedResponse";
      e.message = "a truncated listing without NextContinuationToken";
      return done(std::unexpected(e));
    }
    done(std::move(page));
  };
  return execute(std::move(call));
}

uint64_t Client::copy_object(const std::string& src_key, const std::string& dst_key, const PutOptions& opts,
                             Done<std::string> done) {
  Call call;
  call.op = "CopyObject";
  call.method = "PUT";
  call.key = dst_key;
  call.error_in_200 = true;
  call.headers.emplace_back("x-amz-copy-source", uri_encode("/" + config().bucket + "/" + full_key(src_key), false));
  call.headers.emplace_back("x-amz-metadata-directive", "COPY");
  detail::write_headers(config(), opts, call, false);
  if (opts.if_none_match) call.headers.emplace_back("if-none-match", "*");
  call.done = [done = std::move(done)](std::expected<Response, S3Error> r) {
    if (!done) return;
    if (!r) return done(std::unexpected(std::move(r.error())));
    auto doc = answer_xml(*r, "CopyObjectResult");
    if (!doc) return done(std::unexpected(doc.error()));
    done(std::string(doc->child_text("ETag")));
  };
  return execute(std::move(call));
}

uint64_t Client::create_multipart_upload(const std::string& key, const PutOptions& opts, Done<std::string> done) {
  Call call;
  call.op = "CreateMultipartUpload";
  call.method = "POST";
  call.key = key;
  call.idempotent = false;
  call.query.emplace_back("uploads", "");
  detail::write_headers(config(), opts, call, true);
  call.done = [done = std::move(done)](std::expected<Response, S3Error> r) {
    if (!done) return;
    if (!r) return done(std::unexpected(std::move(r.error())));
    auto doc = answer_xml(*r, "InitiateMultipartUploadResult");
    if (!doc) return done(std::unexpected(doc.error()));
    std::string id(doc->child_text("UploadId"));
    if (id.empty()) {
      S3Error e = error_from_response(r->status, "");
      e.code = "MalformedResponse";
      e.message = "no UploadId";
      return done(std::unexpected(e));
    }
    done(std::move(id));
  };
  return execute(std::move(call));
}

uint64_t Client::upload_part(const std::string& key, const std::string& upload_id, int number, proxy::RequestBody body,
                             Done<std::string> done) {
  Call call;
  call.op = "UploadPart";
  call.method = "PUT";
  call.key = key;
  call.not_found_code = "NoSuchUpload";
  call.query.emplace_back("partNumber", std::to_string(number));
  call.query.emplace_back("uploadId", upload_id);
  call.body = std::move(body);
  call.done = then<std::string>(std::move(done), [](const Response& r) { return std::string(r.head.header("etag")); });
  return execute(std::move(call));
}

uint64_t Client::upload_part_copy(const std::string& key, const std::string& upload_id, int number,
                                  const std::string& src_key, std::optional<ByteRange> range, Done<std::string> done) {
  Call call;
  call.op = "UploadPartCopy";
  call.method = "PUT";
  call.key = key;
  call.not_found_code = "NoSuchUpload";
  call.error_in_200 = true;
  call.query.emplace_back("partNumber", std::to_string(number));
  call.query.emplace_back("uploadId", upload_id);
  call.headers.emplace_back("x-amz-copy-source", uri_encode("/" + config().bucket + "/" + full_key(src_key), false));
  if (range) call.headers.emplace_back("x-amz-copy-source-range", range_header(*range));
  call.done = [done = std::move(done)](std::expected<Response, S3Error> r) {
    if (!done) return;
    if (!r) return done(std::unexpected(std::move(r.error())));
    auto doc = answer_xml(*r, "CopyPartResult");
    if (!doc) return done(std::unexpected(doc.error()));
    done(std::string(doc->child_text("ETag")));
  };
  return execute(std::move(call));
}

uint64_t Client::complete_multipart_upload(const std::string& key, const std::string& upload_id,
                                           const std::vector<Part>& parts, Done<std::string> done) {
  std::string xml = "<CompleteMultipartUpload>";
  for (const Part& p : parts) {
    xml.append("<Part><PartNumber>").append(std::to_string(p.number)).append("</PartNumber><ETag>");
    xml.append(xml_escape(p.etag)).append("</ETag></Part>");
  }
  xml += "</CompleteMultipartUpload>";
  Call call;
  call.op = "CompleteMultipartUpload";
  call.method = "POST";
  call.key = key;
  call.idempotent = false;
  call.error_in_200 = true;
  call.not_found_code = "NoSuchUpload";
  call.query.emplace_back("uploadId", upload_id);
  call.headers.emplace_back("content-type", "application/xml");
  call.body = proxy::RequestBody::from_string(std::move(xml));
  call.done = [done = std::move(done)](std::expected<Response, S3Error> r) {
    if (!done) return;
    if (!r) return done(std::unexpected(std::move(r.error())));
    auto doc = answer_xml(*r, "CompleteMultipartUploadResult");
    if (!doc) return done(std::unexpected(doc.error()));
    done(std::string(doc->child_text("ETag")));
  };
  return execute(std::move(call));
}

uint64_t Client::abort_multipart_upload(const std::string& key, const std::string& upload_id, Done<void> done) {
  Call call;
  call.op = "AbortMultipartUpload";
  call.method = "DELETE";
  call.key = key;
  call.not_found_code = "NoSuchUpload";
  call.query.emplace_back("uploadId", upload_id);
  call.done = then_void(std::move(done));
  return execute(std::move(call));
}

uint64_t Client::list_multipart_uploads(const std::string& prefix, const std::string& key_marker,
                                        const std::string& upload_id_marker, Done<UploadsPage> done) {
  Call call;
  call.op = "ListMultipartUploads";
  call.not_found_code = "NoSuchBucket";
  call.query.emplace_back("uploads", "");
  call.query.emplace_back("prefix", full_key(prefix));
  if (!key_marker.empty()) call.query.emplace_back("key-marker", full_key(key_marker));
  if (!upload_id_marker.empty()) call.query.emplace_back("upload-id-marker", upload_id_marker);
  const std::string root = full_key("");
  call.done = [done = std::move(done), root](std::expected<Response, S3Error> r) {
    if (!done) return;
    if (!r) return done(std::unexpected(std::move(r.error())));
    auto doc = answer_xml(*r, "ListMultipartUploadsResult");
    if (!doc) return done(std::unexpected(doc.error()));
    UploadsPage page;
    for (const XmlNode* u : doc->all("Upload")) {
      page.uploads.push_back({strip_root(std::string(u->child_text("Key")), root), std::string(u->child_text("UploadId")),
                              std::string(u->child_text("Initiated"))});
    }
    page.truncated = doc->child_text("IsTruncated") == "true";
    page.next_key_marker = strip_root(std::string(doc->child_text("NextKeyMarker")), root);
    page.next_upload_id_marker = doc->child_text("NextUploadIdMarker");
    done(std::move(page));
  };
  return execute(std::move(call));
}

uint64_t Client::list_parts(const std::string& key, const std::string& upload_id, int part_number_marker,
                            Done<PartsPage> done) {
  Call call;
  call.op = "ListParts";
  call.key = key;
  call.not_found_code = "NoSuchUpload";
  call.query.emplace_back("uploadId", upload_id);
  if (part_number_marker > 0) call.query.emplace_back("part-number-marker", std::to_string(part_number_marker));
  call.done = [done = std::move(done)](std::expected<Response, S3Error> r) {
    if (!done) return;
    if (!r) return done(std::unexpected(std::move(r.error())));
    auto doc = answer_xml(*r, "ListPartsResult");
    if (!doc) return done(std::unexpected(doc.error()));
    PartsPage page;
    for (const XmlNode* p : doc->all("Part")) {
      auto number = util::parse_u64(p->child_text("PartNumber"), 10'000);
      auto size = util::parse_u64(p->child_text("Size"));
      if (!number || *number == 0 || !size) {
        S3Error e = error_from_response(r->status, "");
        e.code = "MalformedResponse";
        e.message = "a ListParts <Part> without a valid PartNumber or Size";
        return done(std::unexpected(e));
      }
      page.parts.push_back(PartEntry{.number = int(*number), .etag = std::string(p->child_text("ETag")), .size = *size});
    }
    page.truncated = doc->child_text("IsTruncated") == "true";
    page.next_part_number_marker = int(util::parse_u64(doc->child_text("NextPartNumberMarker"), 10'000).value_or(0));
    if (page.truncated && page.next_part_number_marker == 0) {
      S3Error e = error_from_response(r->status, "");
      e.code = "MalformedResponse";
      e.message = "a truncated ListParts without NextPartNumberMarker";
      return done(std::unexpected(e));
    }
    done(std::move(page));
  };
  return execute(std::move(call));
}

}  // namespace wharf::s3
