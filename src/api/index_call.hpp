#pragma once
// Index calls from the event loop: inline when the index answers from memory (LMDB: no hop, no
// allocation), on the work pool when its calls wait on the network (Index::blocks()), continuing on
// the loop with the result. The one place that turns an index failure into a 503 UNAVAILABLE.
#include <exception>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include <spdlog/spdlog.h>

#include "cache/index.hpp"
#include "src/api/respond.hpp"
#include "src/http/server.hpp"
#include "src/util/work_pool.hpp"

namespace wharf::api {

namespace detail {

template <class T>
struct UnwrapExpected {
  using type = T;
  static std::expected<T, std::string> wrap(T&& v) { return std::expected<T, std::string>(std::move(v)); }
};
template <class U>
struct UnwrapExpected<std::expected<U, std::string>> {
  using type = U;
  static std::expected<U, std::string> wrap(std::expected<U, std::string>&& v) { return std::move(v); }
};

// What `read(index, args...)` yields, with a std::expected<U, std::string> flattened to U.
template <class Read, class... Args>
using IndexValue = typename UnwrapExpected<std::invoke_result_t<Read&, cache::Index&, const Args&...>>::type;

// Calls `read(index, args...)`; an exception or an expected's error becomes the unexpected message.
template <class Read, class... Args>
std::expected<IndexValue<Read, Args...>, std::string> call_index(cache::Index& index, Read& read, const Args&... args) {
  using R = std::invoke_result_t<Read&, cache::Index&, const Args&...>;
  try {
    return UnwrapExpected<R>::wrap(read(index, args...));
  } catch (const std::exception& e) {
    return std::unexpected(std::string("index unavailable: ").append(e.what()));
  }
}

// call_index into `out`, for a worker (kept out of line: GCC 12 inlining it into the job's
// std::function reports a bogus -Wfree-nonheap-object).
template <class Out, class Read, class... Args>
[[gnu::noinline]] void call_index_into(Out& out, cache::Index& index, Read& read, const Args&... args) {
  out.emplace(call_index(index, read, args...));
}

}  // namespace detail

// Runs `read(index, args...)` (returning a value, or std::expected<U, std::string>) inline when the
// index does not block, else on `pool`; then `done(std::expected<U, std::string>, args...)` on the loop
// thread. Exceptions from `read` arrive as the error. `args` are passed by reference inline and copied
// only for the pool, so handlers carry their request data without copying it on the hot path. `read`
// and `done` must be copyable and, with a blocking index, own what they refer to (ctx outlives jobs).
template <class Read, class Done, class... Args>
void run_index(cache::Index& index, util::WorkPool& pool, Read read, Done done, const Args&... args) {
  using Result = std::expected<detail::IndexValue<Read, Args...>, std::string>;
  if (!index.blocks()) return done(detail::call_index(index, read, args...), args...);
  auto out = std::make_shared<std::optional<Result>>();
  auto carried = std::make_shared<std::tuple<std::decay_t<Args>...>>(args...);
  pool.submit(
      [&index, read, out, carried]() mutable {
        std::apply([&](const auto&... a) { detail::call_index_into(*out, index, read, a...); }, *carried);
      },
      [done, out, carried]() mutable {
        if (!*out) out->emplace(std::unexpect, "index call did not finish");
        std::apply([&](const auto&... a) { done(std::move(**out), a...); }, *carried);
      });
}

// Answers the index failure `error` on `ex`: 503 UNAVAILABLE naming it.
inline void fail_index(const http::ExchangePtr& ex, const std::string& error) {
  fail(ex, oci::ErrorCode::Unavailable, error);
}

// Logs `e`, which escaped a handler of `ex` (an index that cannot answer throws), and answers 503 if nothing
// was answered yet.
inline void fail_escaped(const http::ExchangePtr& ex, const std::exception& e) {
  spdlog::error("{} {}: {}", ex->req().method, ex->req().path, e.what());
  if (ex->alive() && !ex->responded()) fail_index(ex, "the index is unavailable, retry later");
}

// run_index for a request: `done(U, args...)` runs on the loop only while `ex`'s client is still there
// and unanswered; an index failure answers 503 UNAVAILABLE on `ex` instead of calling `done`.
template <class Read, class Done, class... Args>
void index_call(cache::Index& index, util::WorkPool& pool, const http::ExchangePtr& ex, Read read, Done done,
                const Args&... args) {
  if (!index.blocks()) {  // the hot path: no hop, no copy of args, nothing allocated here
    auto r = detail::call_index(index, read, args...);
    if (!r) return fail_index(ex, r.error());
    return done(std::move(*r), args...);
  }
  run_index(
      index, pool, std::move(read),
      [ex, done](auto r, const Args&... a) mutable {
        if (!ex->alive() || ex->responded()) return;  // the client went away (or was answered) meanwhile
        if (!r) return fail_index(ex, r.error());
        try {  // as the request handler's own call: a failure that escapes `done` is this request's 503
          done(std::move(*r), a...);
        } catch (const std::exception& e) {
          fail_escaped(ex, e);
        }
      },
      args...);
}

}  // namespace wharf::api
