// StreamBlocks: streamed bytes reach the output intact, fill blocks in turn, and every block goes back to
// the pool once its bytes are drained (so a long stream reuses a few blocks).
#include <doctest/doctest.h>
#include <event2/buffer.h>

#include <string>

#include "src/http/stream_blocks.hpp"

using namespace wharf::http;

TEST_CASE("StreamBlocks queues copies of the pieces and gives blocks back once drained") {
  BufferPool pool(4096, 4);
  evbuffer* out = evbuffer_new();
  REQUIRE(out != nullptr);
  std::string sent;
  {
    StreamBlocks blocks(pool);
    for (int round = 0; round < 50; ++round) {
      for (size_t n : {1u, 700u, 3000u, 4096u, 9000u}) {  // pieces smaller and larger than a block
        std::string piece(n, char('a' + (round + n) % 26));
        REQUIRE(blocks.add(out, piece));
        sent += piece;
        piece.assign(n, '#');  // the output holds a copy
      }
      std::string got(evbuffer_get_length(out), '\0');
      REQUIRE(evbuffer_remove(out, got.data(), got.size()) == int(got.size()));
      CHECK(got == sent);
      sent.clear();
      CHECK(pool.in_use() == 1);  // only the block being filled
    }
    CHECK(pool.allocated() <= 16);  // reused: ~250 blocks were filled in all
    REQUIRE(blocks.add(out, "tail"));
    blocks.retire();
    CHECK(pool.in_use() == 1);  // still referenced by the queued tail
    evbuffer_drain(out, evbuffer_get_length(out));
    CHECK(pool.in_use() == 0);
  }
  evbuffer_free(out);
}
