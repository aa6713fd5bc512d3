// StreamBlocks: pooled, reference-counted blocks behind evbuffer_add_reference (see stream_blocks.hpp).
#include "src/http/stream_blocks.hpp"

#include <event2/buffer.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace wharf::http {

namespace {
constexpr size_t kHeaderSpace = 64;  // keeps the data cache-line aligned
}  // namespace

void StreamBlocks::unref(const void*, size_t, void* header) {
  auto* h = static_cast<Header*>(header);
  if (--h->refs == 0) h->pool->release(reinterpret_cast<char*>(h));
}

void StreamBlocks::retire() {
  if (cur_ == nullptr) return;
  unref(nullptr, 0, cur_);
  cur_ = nullptr;
}

bool StreamBlocks::add(evbuffer* out, std::string_view bytes) {
  static_assert(sizeof(Header) <= kHeaderSpace);
  while (!bytes.empty()) {
    if (cur_ == nullptr || cur_->used == pool_.block_size()) {
      retire();
      cur_ = new (pool_.acquire()) Header{&pool_, kHeaderSpace, 1};
    }
    const size_t n = std::min(bytes.size(), pool_.block_size() - cur_->used);
    char* dst = reinterpret_cast<char*>(cur_) + cur_->used;
    std::memcpy(dst, bytes.data(), n);
    ++cur_->refs;
    if (evbuffer_add_reference(out, dst, n, &StreamBlocks::unref, cur_) != 0) {
      --cur_->refs;
      return false;
    }
    cur_->used += n;
    bytes.remove_prefix(n);
  }
  return true;
}

}  // namespace wharf::http
