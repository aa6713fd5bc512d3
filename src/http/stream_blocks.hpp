#pragma once
// Bytes of a streamed response (an object-store GET passed on as it arrives) copied into pooled blocks and
// queued on the connection's output by reference. Consecutive pieces fill the same block; a block goes
// back to the pool once the last byte queued from it is written. So a stream reuses a few warm blocks
// instead of allocating fresh evbuffer chains, whose pages the allocator trims and the kernel faults in
// again on every refill.
#include <string_view>

#include "src/http/buffer_pool.hpp"

struct evbuffer;

namespace wharf::http {

class StreamBlocks {
 public:
  // Takes blocks from `pool`, which must outlive every byte queued from them (the server's pool does).
  explicit StreamBlocks(BufferPool& pool) : pool_(pool) {}
  // Lets go of the block being filled (it returns to the pool once its queued bytes are written).
  ~StreamBlocks() { retire(); }
  StreamBlocks(const StreamBlocks&) = delete;
  StreamBlocks& operator=(const StreamBlocks&) = delete;

  // Copies `bytes` into blocks and queues them on `out`; false if the output refused them.
  bool add(evbuffer* out, std::string_view bytes);
  // Lets go of the block being filled (end of a stream: an idle connection holds no block).
  void retire();

 private:
  // Sits at the start of each block in use.
  struct Header {
    BufferPool* pool;
    size_t used;  // bytes of the block taken, header included
    size_t refs;  // queued pieces, plus one while it is the block being filled
  };
  static void unref(const void* data, size_t len, void* header);

  BufferPool& pool_;
  Header* cur_ = nullptr;
};

}  // namespace wharf::http
