#pragma once
// The request-body sink of blob uploads. The event loop gathers the body into blocks; for each block
// two jobs of the work pool run side by side, one appending it to the staged write and one feeding it
// to the session's running digest (the bytes are read once, from memory; nothing is re-read from disk),
// while the next block fills. When that one is full too, the body is paused (the socket is not read),
// so an upload holds at most two blocks and the loop never writes or hashes. Every few MiB the write
// job asks the kernel to start writing the staged bytes out, so the sync at publication is short.
#include <functional>
#include <memory>

#include "cache/blob_backend.hpp"
#include "src/api/upload_table.hpp"
#include "src/http/server.hpp"
#include "src/util/work_pool.hpp"

namespace wharf::api {

// Answers 416 RANGE_INVALID for session `s` with its Location and its Range (s.offset): a chunk that
// does not continue the upload where the store holds it.
void fail_upload_range(const http::ExchangePtr& ex, const UploadSession& s, std::string message);

// Bytes gathered on the loop before a block goes to a worker.
inline constexpr size_t kUploadBlock = 128 * 1024;

// The sink that stages `ex`'s body through `writer` for session `s`, which the caller marked busy.
// `done` runs on the loop once every byte is staged (s->offset is then final). If a write fails, the
// sink answers 503 UNAVAILABLE itself (416 with the store's Range if another front continued the upload
// first: BlobWriter::conflicted) and drops the running digest (the staged size stays truthful).
// If the request ends without its body staged, `dropped` (if any) runs and the session stops being
// busy, in both cases only after the last write job has finished.
std::unique_ptr<http::BodySink> make_upload_sink(util::WorkPool& pool, http::ExchangePtr ex,
                                                 std::shared_ptr<UploadSession> s,
                                                 std::unique_ptr<cache::BlobWriter> writer,
                                                 std::function<void()> done, std::function<void()> dropped);

}  // namespace wharf::api
