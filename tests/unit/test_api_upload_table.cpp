#include <doctest/doctest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "cache/fs/fs_store.hpp"
#include "src/api/upload_table.hpp"

using namespace wharf::api;

namespace {

std::shared_ptr<UploadSession> session(const std::string& id, const std::string& client,
                                       UploadSession::Kind kind = UploadSession::Kind::Resumable) {
  auto s = std::make_shared<UploadSession>();
  s->id = id;
  s->client = client;
  s->kind = kind;
  return s;
}

}  // namespace

TEST_CASE("UploadTable::admit") {
  UploadTable t;
  t.set_limits(5, 2);
  SUBCASE("per client, then in total") {
    CHECK(t.admit("a") == UploadTable::Admit::Ok);
    t.put(session("1", "a"));
    t.put(session("2", "a"));
    CHECK(t.admit("a") == UploadTable::Admit::ClientFull);
    CHECK(t.admit("b") == UploadTable::Admit::Ok);
    t.put(session("3", "b"));
    t.put(session("4", "c"));
    t.put(session("5", "d"));
    CHECK(t.admit("e") == UploadTable::Admit::TotalFull);
    CHECK(t.refused() == 2);
  }
  SUBCASE("at a cap, the least recently used idle session makes room") {
    auto old1 = session("1", "a");
    old1->started = 100;
    auto old2 = session("2", "a");
    old2->started = 50;
    old2->touched = 150;  // written to after 1 was started: 1 is the least recently used
    t.put(old1);
    t.put(old2);
    std::string evicted;
    // Nothing idle long enough: refused, nothing taken.
    CHECK(t.admit("a", &evicted, 90) == UploadTable::Admit::ClientFull);
    CHECK(evicted.empty());
    // Another client's idle session never makes room at the per-client cap.
    t.put(session("3", "b"));
    CHECK(t.admit("b", &evicted, 1000) == UploadTable::Admit::Ok);
    CHECK(evicted.empty());
    // A session in use is never taken.
    old1->busy = true;
    CHECK(t.admit("a", &evicted, 120) == UploadTable::Admit::ClientFull);
    old1->busy = false;
    CHECK(t.admit("a", &evicted, 1000) == UploadTable::Admit::Ok);
    CHECK(evicted == "1");
    CHECK(t.held_by("a") == 1);
    CHECK(t.evicted() == 1);
    // Monolithic uploads (a body in flight) are never taken, even at the total cap.
    UploadTable full;
    full.set_limits(1, 1);
    auto mono = session("m", "c", UploadSession::Kind::Monolithic);
    full.put(mono);
    evicted.clear();
    CHECK(full.admit("d", &evicted, 1000) == UploadTable::Admit::TotalFull);
    CHECK(evicted.empty());
  }
  SUBCASE("erasing frees the client's slot") {
    t.put(session("1", "a"));
    t.put(session("2", "a"));
    t.erase("1");
    CHECK(t.held_by("a") == 1);
    CHECK(t.admit("a") == UploadTable::Admit::Ok);
    t.erase("2");
    t.erase("2");  // twice: ignored
    CHECK(t.held_by("a") == 0);
    CHECK(t.size() == 0);
  }
  SUBCASE("replacing a session moves its slot") {
    t.put(session("1", "a"));
    t.put(session("1", ""));
    CHECK(t.held_by("a") == 0);
    CHECK(t.held_by("") == 1);
    CHECK(t.size() == 1);
  }
}

TEST_CASE("UploadTable::find") {
  UploadTable t;
  t.put(session("r", "a"));
  t.put(session("m", "a", UploadSession::Kind::Monolithic));
  CHECK(t.find("r"));
  CHECK_FALSE(t.find("m"));  // a monolithic upload's id is nobody's to PATCH
  CHECK_FALSE(t.find("x"));
}

TEST_CASE("UploadSession::~UploadSession") {
  std::string tmpl = (std::filesystem::temp_directory_path() / "wharf-upload-XXXXXX").string();
  REQUIRE(mkdtemp(tmpl.data()) != nullptr);
  const std::filesystem::path dir = tmpl;
  std::ofstream(dir / "mono") << "data";
  std::ofstream(dir / "resumable") << "data";
  auto store = wharf::cache::FsBlobStore::open(dir / "store");
  REQUIRE(store.has_value());
  {
    auto m = session("m", "a", UploadSession::Kind::Monolithic);
    m->path = dir / "mono";
    m->store = &*store;  // the backend that discards its staged data
    auto r = session("r", "a");
    r->path = dir / "resumable";
  }
  CHECK_FALSE(std::filesystem::exists(dir / "mono"));  // an unpublished monolithic upload leaves nothing
  CHECK(std::filesystem::exists(dir / "resumable"));   // a resumable one lives on for PATCH after a restart
  std::filesystem::remove_all(dir);
}

TEST_CASE("UploadTable::ended remembers removed resumable sessions") {
  UploadTable t;
  t.set_limits(10, 1);
  t.put(session("r", "a"));
  t.put(session("m", "a", UploadSession::Kind::Monolithic));
  CHECK_FALSE(t.ended("r"));
  t.erase("r");
  CHECK(t.find("r") == nullptr);
  CHECK(t.ended("r"));  // a restore that read its record before the removal must not bring it back
  t.erase("m");
  CHECK_FALSE(t.ended("m"));  // monolithic sessions are never looked up by id
  t.erase("never-there");
  CHECK_FALSE(t.ended("never-there"));
  // A session taken out to make room has ended too.
  auto idle = session("idle", "b");
  idle->started = 1;
  t.put(idle);
  std::string evicted;
  CHECK(t.admit("b", &evicted, 100) == UploadTable::Admit::Ok);
  CHECK(evicted == "idle");
  CHECK(t.ended("idle"));
}
