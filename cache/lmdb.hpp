#pragma once
// Move-only owners for LMDB handles (MDB_env, MDB_txn, MDB_cursor) and small typed helpers.
// Failures throw lmdb::Error carrying the LMDB code and the operation; a missing key is `false`.
#include <lmdb.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace wharf::cache::lmdb {

// An LMDB call failed; what() reads "<op>: <mdb_strerror>".
class Error : public std::runtime_error {
 public:
  Error(std::string_view op, int rc)
      : std::runtime_error(std::string(op) + ": " + mdb_strerror(rc)), rc_(rc) {}
  int code() const { return rc_; }

 private:
  int rc_;
};

// Throws Error(op, rc) unless rc is MDB_SUCCESS.
inline void check(int rc, std::string_view op) {
  if (rc != MDB_SUCCESS) throw Error(op, rc);
}

inline MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
// A view into the map: valid only while its transaction lives.
inline std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

// Owns an MDB_env; closes it in the destructor.
class Env {
 public:
  // Creates an unopened environment; throws Error on failure.
  static Env create() {
    MDB_env* e = nullptr;
    check(mdb_env_create(&e), "mdb_env_create");
    return Env(e);
  }
  Env() = default;
  Env(Env&& o) noexcept : env_(std::exchange(o.env_, nullptr)) {}
  Env& operator=(Env&& o) noexcept {
    if (this != &o) {
      reset();
      env_ = std::exchange(o.env_, nullptr);
    }
    return *this;
  }
  ~Env() { reset(); }
  MDB_env* get() const { return env_; }

 private:
  explicit Env(MDB_env* e) : env_(e) {}
  void reset() {
    if (env_) mdb_env_close(env_);
    env_ = nullptr;
  }
  MDB_env* env_ = nullptr;
};

// Owns an MDB_txn; aborts it in the destructor unless committed or released.
class Txn {
 public:
  // Begins a transaction (flags: 0 or MDB_RDONLY); throws Error on failure.
  static Txn begin(MDB_env* env, unsigned flags) {
    MDB_txn* t = nullptr;
    check(mdb_txn_begin(env, nullptr, flags, &t), "mdb_txn_begin");
    return Txn(t);
  }
  Txn() = default;
  Txn(Txn&& o) noexcept : txn_(std::exchange(o.txn_, nullptr)) {}
  Txn& operator=(Txn&& o) noexcept {
    if (this != &o) {
      abort();
      txn_ = std::exchange(o.txn_, nullptr);
    }
    return *this;
  }
  ~Txn() { abort(); }
  MDB_txn* get() const { return txn_; }
  // Commits (durably, unless the env says otherwise); throws Error on failure (the txn is gone either way).
  void commit() {
    int rc = mdb_txn_commit(std::exchange(txn_, nullptr));
    check(rc, "mdb_txn_commit");
  }
  void abort() {
    if (txn_) mdb_txn_abort(std::exchange(txn_, nullptr));
  }
  // Gives up ownership (the caller must end the transaction).
  MDB_txn* release() { return std::exchange(txn_, nullptr); }

 private:
  explicit Txn(MDB_txn* t) : txn_(t) {}
  MDB_txn* txn_ = nullptr;
};

// Owns an MDB_cursor; closes it in the destructor. Must not outlive its transaction.
class Cursor {
 public:
  // Opens a cursor on `dbi`; throws Error on failure.
  Cursor(MDB_txn* txn, MDB_dbi dbi) { check(mdb_cursor_open(txn, dbi, &cur_), "mdb_cursor_open"); }
  Cursor(Cursor&& o) noexcept : cur_(std::exchange(o.cur_, nullptr)) {}
  Cursor& operator=(Cursor&&) = delete;
  ~Cursor() {
    if (cur_) mdb_cursor_close(cur_);
  }
  // Positions the cursor; false on MDB_NOTFOUND, throws Error on other failures.
  bool get(MDB_val& key, MDB_val& data, MDB_cursor_op op) {
    int rc = mdb_cursor_get(cur_, &key, &data, op);
    if (rc == MDB_NOTFOUND) return false;
    check(rc, "mdb_cursor_get");
    return true;
  }
  // Moves to the first key >= `key`; false if there is none.
  bool seek(std::string_view key, MDB_val& k, MDB_val& data) {
    k = val(key);
    return get(k, data, MDB_SET_RANGE);
  }

 private:
  MDB_cursor* cur_ = nullptr;
};

// Reads `key`; false if absent, throws Error on failure. `out` is valid only inside the transaction.
inline bool get(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view* out) {
  MDB_val k = val(key), v{};
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND || rc == MDB_BAD_VALSIZE) return false;  // a key that cannot be stored is absent
  check(rc, "mdb_get");
  if (out) *out = view(v);
  return true;
}

// Stores key → value; with MDB_NOOVERWRITE returns false if the key exists. Throws Error on failure.
inline bool put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0) {
  MDB_val k = val(key), v = val(value);
  int rc = mdb_put(txn, dbi, &k, &v, flags);
  if (rc == MDB_KEYEXIST) return false;
  check(rc, "mdb_put");
  return true;
}

// Deletes `key`; false if absent, throws Error on failure.
inline bool del(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
  MDB_val k = val(key);
  int rc = mdb_del(txn, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND || rc == MDB_BAD_VALSIZE) return false;
  check(rc, "mdb_del");
  return true;
}

}  // namespace wharf::cache::lmdb
