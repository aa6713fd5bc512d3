#pragma once
// What every streamer of a shared upstream download (proxy::BlobFetch) to one client has in common: the
// download's events and the client's connection drive it, and it lets go of both exactly once.
#include <cstdint>
#include <memory>
#include <string>

#include "proxy/blob_fetch.hpp"
#include "src/http/server.hpp"

namespace wharf::api {

// The state a streamer keeps about its download and its client.
struct FetchFollower {
  http::ExchangePtr ex;
  std::shared_ptr<proxy::BlobFetch> fetch;
  uint64_t listener = 0;
  bool done = false;

  // Stops listening to the download and to the connection (idempotent).
  void detach() {
    if (done) return;
    done = true;
    fetch->remove_listener(listener);
    ex->on_drain(nullptr);
    ex->on_close(nullptr);
  }
};

// Starts `s` (a FetchFollower with progress(), drained() and fail(status, body, type)) following its
// download: the download's head and progress call progress(), the client's drain calls drained(), a failed
// download calls fail(); the connection keeps `s` alive until it closes. Then runs progress() once.
template <class S>
void follow_fetch(const std::shared_ptr<S>& s) {
  std::weak_ptr<S> weak = s;
  proxy::FetchListener l;
  l.on_head = [weak] {
    if (auto p = weak.lock()) p->progress();
  };
  l.on_progress = l.on_head;
  l.on_fail = [weak](int status, const std::string& body, const std::string& type) {
    if (auto p = weak.lock()) p->fail(status, body, type);
  };
  s->listener = s->fetch->add_listener(std::move(l));
  s->ex->on_drain([weak] {
    if (auto p = weak.lock()) p->drained();
  });
  s->ex->on_close([s] { s->detach(); });
  s->progress();
}

}  // namespace wharf::api
