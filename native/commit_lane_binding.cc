// commit_lane_binding.cc — see commit_lane_binding.h; the lane itself is commit_lane.{h,cc}.
//
// One CommitLane object = one member. Its wake-ups reach its own environment's event loop through
// its own uv_async_t, referenced only while commits it submitted are unsettled (an idle member
// never keeps its thread alive); the end of each turn of its submits is seen natively (class
// Member). The member leaves the lane on leave() or, abandoned, in an async environment cleanup
// hook (worker.terminate(), exit), which closes its handles: the lane never wakes a closed one (a
// member whose hook cannot be added is refused: it could never be left). An exception thrown in
// the callback's turn is uncaught (napi_fatal_exception), as Node treats its own callbacks'.
// Page bytes are copied at submit into the commit's block (the caller may reuse its buffers at
// once; the block from the member's own BlockCache, kept on its thread, refilled with the blocks
// the leader returns: commit_lane.h), the commit kept in the member's own buffer (`submitted`:
// no lock per commit) and published into the lane at the end of the turn (OnCheck, one lock for
// the turn's commits); and at take() into one buffer of the leader's heap for everything taken: the caller's
// `into` (lane.ts recycles these: a fresh 256 KiB buffer per take cost ~50x its copy, in page
// faults of fresh memory, measured ~200 µs against ~4 µs) when everything fits, else a new one.
#include "commit_lane_binding.h"

#include <sys/stat.h>
#include <uv.h>

#include <array>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "args.h"
#include "commit_lane.h"
#include "errors.h"
#include "faults.h"
#include "file.h"
#include "js_value.h"

namespace walnut::lane {
namespace {

// Outcome fields per successful commit in the Float64Array handed to JS: id, first, last, durable.
constexpr size_t kOkFields = 4;
// Per successful commit in settle()'s Float64Array: id, member (its submitter), first, last, durable.
constexpr size_t kSettleOkFields = 5;
// Blocks the leader copied and holds until its next settle() returns them (beyond: freed).
constexpr size_t kSpentBytes = 8u << 20;
// Per taken commit: id, pageCount, readCount, dbSize, hasConflict, mxFrame, salt1, salt2, member,
// byte offset of its block in take()'s buffer, read-lock slot of its snapshot (-1: none).
constexpr size_t kTakeFields = 11;
constexpr double kMaxSafe = 9007199254740991.0;

// The native half of one member, owned by its CommitLane object and, while its libuv handles are
// open, by itself (`self`): a handle's memory must outlive its close callback.
//
// Wake-ups: the lane's Wake (any thread) is one uv_async_send on the member's own handle (the
// lane coalesces wake-ups, so no queue and no lock of the handle's own: a ThreadSafeFunction's
// call took a mutex, a queue node and a condition-variable signal on the waker's thread, the
// leader's, for each member). The async callback delivers everything collected in one call.
// End of a turn: the first submit of a turn starts a uv_check_t (run after the loop's poll
// phase, i.e. after every callback of this turn and its microtasks, in which committers
// resubmit) and a uv_idle_t (so the loop does not sleep in between); the check publishes the
// turn's commits (Lane::Publish: queued, the leader woken, this member no longer awaited)
// without entering JS (it was a setImmediate and a native call per turn). So a commit enters
// the lane when its member's code returns to the event loop: a member that submits and then
// runs synchronous code for a while holds its commits back for that long.
// Teardown: an async cleanup hook (worker.terminate(), exit) leaves the lane, abandoned, and
// closes the handles; Node keeps the loop running until their close callbacks removed the hook.
// Wake takes wakeMutex and checks `closed` (set before the handles close): the lane may still
// hold a wake-up for a member that left.
class Member : public Waker {
 public:
  // JS thread: the handles on the environment's loop, the callback, the cleanup hook.
  bool Init(Napi::Env env, Napi::Function onEvents, std::shared_ptr<Member> owner) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return false;
    // the cleanup hook before any handle: a member without it is never left when its environment
    // ends, and its open handles (and `self`) would outlive it (a worker's loop cannot close)
    if (faults::FailLaneCleanupHook() || napi_add_async_cleanup_hook(env, OnEnvCleanup, this, &hook) != napi_ok) {
      hook = nullptr;
      return false;
    }
    if (napi_async_init(env, nullptr, Napi::String::New(env, "walnut-lane"), &context) != napi_ok) {
      RemoveHook();
      return false;
    }
    this->env = env;
    if (uv_async_init(loop, &async, OnAsync) != 0) {
      napi_async_destroy(env, context);
      RemoveHook();
      return false;
    }
    callback = Napi::Persistent(onEvents);
    uv_check_init(loop, &check);  // (these two cannot fail)
    uv_idle_init(loop, &idle);
    for (uv_handle_t* h : Handles()) {
      h->data = this;
      uv_unref(h);  // an idle member never keeps its thread alive (Queued refs async while commits are out)
    }
    self = std::move(owner);
    return true;
  }

  // Any thread; after the member left nothing.
  void Wake() override {
    std::lock_guard<std::mutex> lock(wakeMutex);
    if (!closed) uv_async_send(&async);
  }

  // JS thread: a commit of this member was submitted: it is awaited until it settles (the loop
  // stays alive for its outcome), and the end of this turn is due (OnCheck).
  void Queued() {
    if (outstanding++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(&async));
    if (turnDue) return;
    turnDue = true;
    uv_check_start(&check, OnCheck);
    uv_idle_start(&idle, [](uv_idle_t*) {});
  }

  // JS thread: leaves the lane once (later calls do nothing) and closes the handles.
  // `abandoned`: the environment is being torn down (no JS, no N-API references to release).
  void LeaveOnce(bool abandoned) {
    if (lane == nullptr) return;
    std::shared_ptr<Lane> l = std::move(lane);
    LeaveLane(l, id, abandoned);
    {
      std::lock_guard<std::mutex> lock(wakeMutex);
      closed = true;
    }
    submitted.clear();  // never published: nobody is left to hear of them (commit_lane.h)
    if (abandoned) {
      callback.SuppressDestruct();
    } else {
      callback.Reset();
    }
    // also when abandoned (io_thread.cc OnEnvCleanup does the same): left to the environment's
    // end, every terminated worker's context leaked; no destroy hook runs in an environment that
    // runs no JS any more
    napi_async_destroy(env, context);
    context = nullptr;
    for (uv_handle_t* h : Handles()) uv_close(h, OnClosed);
  }

  std::shared_ptr<Lane> lane;
  uint32_t id = 0;
  // JS thread only: this turn's commits, not yet published (OnCheck); the member's blocks
  BlockCache cache;
  std::vector<Submission> submitted;
  // JS thread only, reused: what Collect gives, settle()'s outcomes, the blocks taken and copied
  // since the last settle() (the leader's; returned to their members by it)
  Events events;
  std::vector<Outcome> outcomes;
  std::vector<Submission> spent;
  size_t spentBytes = 0;

 private:
  std::array<uv_handle_t*, 3> Handles() {
    return {reinterpret_cast<uv_handle_t*>(&async), reinterpret_cast<uv_handle_t*>(&check), reinterpret_cast<uv_handle_t*>(&idle)};
  }

  static void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
    // the hook is removed once the handles closed (OnClosed); a member that left already is
    // closing them
    static_cast<Member*>(arg)->LeaveOnce(true);
  }

  static void OnClosed(uv_handle_t* h) {
    auto* m = static_cast<Member*>(h->data);
    if (++m->closedHandles < 3) return;
    m->RemoveHook();
    std::shared_ptr<Member> keep = std::move(m->self);  // may be the last owner: released last
  }

  void RemoveHook() {
    if (hook != nullptr) napi_remove_async_cleanup_hook(hook);
    hook = nullptr;
  }

  static void OnCheck(uv_check_t* h) {
    auto* m = static_cast<Member*>(h->data);
    m->turnDue = false;
    uv_check_stop(&m->check);
    uv_idle_stop(&m->idle);
    if (m->lane == nullptr) return;
    if (!m->RunsJs()) {
      // worker.terminate() stopped its JS mid-turn (the loop ends this iteration before the
      // cleanup hook leaves the lane): the turn never ended, so its commits never enter the lane
      m->submitted.clear();
      return;
    }
    m->lane->Publish(m->id, m->submitted, m->returned);
    if (!m->returned.empty()) m->cache.Keep(std::move(m->returned));
  }

  static void OnAsync(uv_async_t* h) {
    auto* m = static_cast<Member*>(h->data);
    if (m->lane == nullptr) return;
    // raw N-API throughout the delivery (Deliver's comment): a worker being terminated stops
    // running JS while its loop may still deliver a wake-up
    napi_env env = m->env;
    napi_handle_scope scope = nullptr;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    const bool called = m->Deliver(env);
    bool pending = false;
    napi_value e = nullptr;
    const bool caught = napi_is_exception_pending(env, &pending) == napi_ok && pending &&
                        napi_get_and_clear_last_exception(env, &e) == napi_ok;
    // an exception from the callback's turn (lane.ts catches its own; what the turn ran as its
    // scope closed, a process.nextTick callback of a commit's handler, is the user's) is uncaught,
    // as after any callback Node makes: never dropped. A value that could not be made (the
    // environment stopped running JS) leaves its failure pending: nothing must see it later
    // (napi_fatal_exception does nothing in an environment that no longer runs JS).
    if (caught && called) napi_fatal_exception(env, e);
    napi_close_handle_scope(env, scope);
  }

  // True when the callback was called (or tried: an environment that runs no JS refuses it).
  bool Deliver(napi_env env);

  // Whether this environment still runs JS: napi_strict_equals is refused, like any call that
  // may run JS, once it is being torn down (io_thread.cc OnAsync checks the same way).
  bool RunsJs() {
    napi_handle_scope scope = nullptr;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
    napi_value v = nullptr;
    bool same = false;
    const bool runs = napi_get_boolean(env, true, &v) == napi_ok && napi_strict_equals(env, v, v, &same) == napi_ok;
    napi_close_handle_scope(env, scope);
    return runs;
  }

  napi_env env = nullptr;
  Napi::FunctionReference callback;
  napi_async_context context = nullptr;
  uv_async_t async;
  uv_check_t check;
  uv_idle_t idle;
  int closedHandles = 0;
  napi_async_cleanup_hook_handle hook = nullptr;
  std::shared_ptr<Member> self;  // set while the handles are open
  std::vector<Block> returned;  // JS thread only: Publish's blocks, for the cache
  size_t outstanding = 0;  // JS thread only: submitted by this member, not yet delivered settled
  bool turnDue = false;    // JS thread only: OnCheck is armed
  std::mutex wakeMutex;    // guards closed against Wake from other threads
  bool closed = false;     // the handles are closing
};

// The ok outcomes as one Float64Array of kOkFields per commit; false when it could not be made.
bool OkArray(napi_env env, const std::vector<const Outcome*>& ok, napi_value* out) {
  const size_t n = ok.size() * kOkFields;
  void* data = nullptr;
  napi_value buffer = nullptr;
  if (napi_create_arraybuffer(env, n * sizeof(double), &data, &buffer) != napi_ok || (n > 0 && data == nullptr)) return false;
  double* a = static_cast<double*>(data);
  for (size_t i = 0; i < ok.size(); i++) {
    a[i * kOkFields] = static_cast<double>(ok[i]->id);
    a[i * kOkFields + 1] = ok[i]->firstFrame;
    a[i * kOkFields + 2] = ok[i]->lastFrame;
    a[i * kOkFields + 3] = ok[i]->durable ? 1 : 0;
  }
  return napi_create_typedarray(env, napi_float64_array, n, buffer, 0, out) == napi_ok;
}

bool SetNumber(napi_env env, napi_value array, uint32_t i, double v) {
  napi_value n = nullptr;
  return napi_create_double(env, v, &n) == napi_ok && napi_set_element(env, array, i, n) == napi_ok;
}

bool SetString(napi_env env, napi_value array, uint32_t i, const std::string& v) {
  napi_value s = nullptr;
  return napi_create_string_utf8(env, v.data(), v.size(), &s) == napi_ok && napi_set_element(env, array, i, s) == napi_ok;
}

// A failed commit as JS sees it: [id, code, message, reason, errno].
bool FailedEntry(napi_env env, const Outcome& o, napi_value* out) {
  return napi_create_array_with_length(env, 5, out) == napi_ok && SetNumber(env, *out, 0, static_cast<double>(o.id)) &&
         SetString(env, *out, 1, o.code) && SetString(env, *out, 2, o.message) && SetString(env, *out, 3, o.reason) &&
         SetNumber(env, *out, 4, o.err);
}

// What woke this member, to JS (lane.ts #onEvents). Raw N-API only, every status checked: a
// worker being terminated stops running JS while its loop may still deliver a wake-up, and from
// then (the termination lands from another thread, at any point) values fail to be made.
// node-addon-api turns such a failure into a thrown Napi::Error, and throwing (or wrapping the
// pending termination value) in an environment that runs no JS is a fatal error of the process;
// here a failure ends the delivery (nothing reaches JS any more), the bookkeeping done first.
bool Member::Deliver(napi_env env) {
  lane->Collect(id, events);
  const Events& ev = events;
  size_t settled = ev.outcomes.size() < outstanding ? ev.outcomes.size() : outstanding;
  outstanding -= settled;
  if (settled > 0 && outstanding == 0) uv_unref(reinterpret_cast<uv_handle_t*>(&async));
  if (ev.outcomes.empty() && !ev.lead && !ev.work && !ev.gathered && !ev.closing) return false;
  napi_value failed = nullptr;
  if (napi_create_array(env, &failed) != napi_ok) return false;
  std::vector<const Outcome*> ok;
  uint32_t nFailed = 0;
  for (const Outcome& o : ev.outcomes) {
    if (o.ok) {
      ok.push_back(&o);
      continue;
    }
    napi_value f = nullptr;
    if (!FailedEntry(env, o, &f) || napi_set_element(env, failed, nFailed++, f) != napi_ok) return false;
  }
  napi_value argv[6] = {};
  argv[1] = failed;
  napi_value global = nullptr, fn = nullptr, result = nullptr;
  if (!OkArray(env, ok, &argv[0]) || napi_get_boolean(env, ev.lead, &argv[2]) != napi_ok ||
      napi_get_boolean(env, ev.work, &argv[3]) != napi_ok || napi_get_boolean(env, ev.gathered, &argv[4]) != napi_ok ||
      napi_get_boolean(env, ev.closing, &argv[5]) != napi_ok ||
      napi_get_global(env, &global) != napi_ok || napi_get_reference_value(env, static_cast<napi_ref>(callback), &fn) != napi_ok ||
      fn == nullptr)
    return false;
  // the callback's microtasks and nextTicks run as the scope closes; lane.ts never throws (the
  // receiver must be an object for napi_make_callback; lane.ts's callback is an arrow function)
  napi_make_callback(env, context, global, fn, 6, argv, &result);
  return true;
}

class CommitLane : public Napi::ObjectWrap<CommitLane> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CommitLane",
                       {InstanceAccessor<&CommitLane::GetMember>("member"),
                        InstanceAccessor<&CommitLane::GetLeader>("leader"),
                        InstanceAccessor<&CommitLane::GetAlone>("alone"),
                        InstanceMethod<&CommitLane::Submit>("submit"),
                        InstanceMethod<&CommitLane::Take>("take"),
                        InstanceMethod<&CommitLane::Gather>("gather"),
                        InstanceMethod<&CommitLane::Rest>("rest"),
                        InstanceMethod<&CommitLane::Settle>("settle"),
                        InstanceMethod<&CommitLane::Resign>("resign"),
                        InstanceMethod<&CommitLane::Closing>("closing"),
                        InstanceMethod<&CommitLane::ClosingMembers>("closingMembers"),
                        InstanceMethod<&CommitLane::Leave>("leave"),
                        InstanceMethod<&CommitLane::Metrics>("metrics"),
                        StaticMethod<&CommitLane::Count>("count")});
  }

  // new CommitLane(dbFile, key, pageSize, onEvents)
  explicit CommitLane(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CommitLane>(info) {
    Napi::Env env = info.Env();
    std::shared_ptr<FileState> file = NativeFile::StateOf(env, info[0]);
    if (file == nullptr) return;
    uint64_t pageSize;
    if (info.Length() < 4 || !info[1].IsString() || !info[3].IsFunction()) {
      ThrowInvalid(env, "CommitLane(dbFile, key, pageSize, onEvents)");
      return;
    }
    if (!GetUint(info, 2, "pageSize", &pageSize)) return;
    if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) != 0) {
      ThrowInvalid(env, "pageSize must be a power of two in 512..65536");
      return;
    }
    struct stat st;
    if (::fstat(file->fd, &st) != 0) {
      MakeOsError(env, OsFailure{errno, "fstat"}, file->path).ThrowAsJavaScriptException();
      return;
    }
    auto m = std::make_shared<Member>();
    if (!m->Init(env, info[3].As<Napi::Function>(), m)) {
      MakeError(env, "WALNUT_IO", "WALNUT_IO: the commit lane could not attach to this thread's event loop").ThrowAsJavaScriptException();
      return;
    }
    m->lane = JoinLane(st.st_dev, st.st_ino, info[1].As<Napi::String>().Utf8Value(),
                       static_cast<uint32_t>(pageSize), m, &m->id, &leader_);
    member_ = std::move(m);
  }

  ~CommitLane() override {
    // (a member is collected only once it left: its lane's callback reference keeps it alive)
    if (member_ != nullptr) member_->LeaveOnce(true);
  }

 private:
  Lane* Joined(Napi::Env env) {
    if (member_ == nullptr || member_->lane == nullptr) {
      MakeError(env, "WALNUT_CLOSED", "WALNUT_CLOSED: the store left its commit lane").ThrowAsJavaScriptException();
      return nullptr;
    }
    return member_->lane.get();
  }

  Napi::Value GetMember(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), member_ == nullptr ? 0 : member_->id);
  }
  Napi::Value GetLeader(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), member_ != nullptr && member_->lane != nullptr && member_->lane->IsLeader(member_->id));
  }

  // alone: this member is the lane's only one (Lane::Members; false once it left)
  Napi::Value GetAlone(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), member_ != nullptr && member_->lane != nullptr && member_->lane->Members() == 1);
  }

  // submit(pgnos: Uint32Array, pages: Uint8Array[], dbSize, conflict: null | [mxFrame, salt1, salt2, reads: Uint32Array, readLock?]) -> id
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Lane* lane = Joined(env);
    if (lane == nullptr) return env.Undefined();
    ByteSpan pgnos;
    if (!GetTypedBytes(info, 0, napi_uint32_array, "pgnos", "a Uint32Array", &pgnos)) return env.Undefined();
    size_t count = pgnos.length / 4;
    if (info.Length() < 2 || !info[1].IsArray() || info[1].As<Napi::Array>().Length() != count || count == 0 ||
        count > std::numeric_limits<uint32_t>::max()) {
      return ThrowInvalid(env, "pages must be a non-empty array with one buffer per page number");
    }
    uint64_t dbSize;
    if (!GetUint(info, 2, "dbSize", &dbSize) ) return env.Undefined();
    if (dbSize > std::numeric_limits<uint32_t>::max()) return ThrowInvalid(env, "dbSize must be below 2^32");
    Submission s;
    Member& member = *member_;
    ByteSpan reads;
    if (info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined()) {
      Napi::Value c = info[3];
      const uint32_t fieldCount = c.IsArray() ? c.As<Napi::Array>().Length() : 0;
      if (fieldCount != 4 && fieldCount != 5) return ThrowInvalid(env, "conflict must be [mxFrame, salt1, salt2, pgnos, readLock?]");
      // (elements read with raw N-API, args.h GetElement: a worker.terminate() landing here is
      // no fatal error of the process)
      napi_value a = c;
      if (!GetU32Element(env, a, 0, "mxFrame", &s.mxFrame) || !GetU32Element(env, a, 1, "salt1", &s.salt1) ||
          !GetU32Element(env, a, 2, "salt2", &s.salt2)) {
        return env.Undefined();
      }
      if (fieldCount == 5) {
        if (!GetU32Element(env, a, 4, "readLock", &s.readLock)) return env.Undefined();
        if (s.readLock > 4) return ThrowInvalid(env, "conflict readLock must be a read-lock slot (0..4)");
      }
      Napi::Value readPgnos;
      if (!GetElement(env, a, 3, &readPgnos)) return env.Undefined();
      if (!TypedBytesOf(env, readPgnos, napi_uint32_array, &reads) ||
          reads.length / 4 > std::numeric_limits<uint32_t>::max()) {
        return ThrowInvalid(env, "conflict pgnos must be a Uint32Array");
      }
      s.hasConflict = true;
    }
    const size_t pageSize = lane->pageSize();
    // count < 2^32 and pageSize <= 2^16: no overflow in 64 bits
    const size_t pageBytes = count * pageSize;
    try {
      s.block = member.cache.Get(pageBytes + pgnos.length + reads.length);
    } catch (const std::bad_alloc&) {
      MakeError(env, "WALNUT_IO", "WALNUT_IO: out of memory for a lane commit").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    napi_value pages = info[1];
    for (uint32_t i = 0; i < count; i++) {
      ByteSpan page;
      Napi::Value element;
      if (!GetElement(env, pages, i, &element)) return env.Undefined();
      if (!TypedBytesOf(env, element, napi_uint8_array, &page) || page.length != pageSize) {
        return ThrowInvalid(env, "page " + std::to_string(i) + " must be a Uint8Array of the page size");
      }
      std::memcpy(s.block.data + static_cast<size_t>(i) * pageSize, page.data, pageSize);
    }
    std::memcpy(s.block.data + pageBytes, pgnos.data, pgnos.length);
    if (reads.length > 0) std::memcpy(s.block.data + pageBytes + pgnos.length, reads.data, reads.length);
    s.pageCount = static_cast<uint32_t>(count);
    s.readCount = static_cast<uint32_t>(reads.length / 4);
    s.dbSize = static_cast<uint32_t>(dbSize);
    const uint64_t id = lane->NextId();
    s.id = id;
    s.member = member.id;
    member.submitted.push_back(std::move(s));
    member.Queued();  // published at the end of this turn (Member::OnCheck)
    return Napi::Number::New(env, static_cast<double>(id));
  }

  // take(into?: Uint8Array) -> { meta: Float64Array (kTakeFields per commit), buffer: Uint8Array
  // holding every taken commit's block at its meta offset (from its byteOffset): `into` when they
  // fit, else a new Buffer }. One V8-owned buffer per take: an external ArrayBuffer per commit
  // (no copy) cost more in finalizers and GC than this memcpy (4 KiB per page, ~0.3 µs).
  Napi::Value Take(const Napi::CallbackInfo& info) { return TakeBy(info, &Lane::Take); }

  // gather(wait: boolean, into?: Uint8Array) -> take()'s object plus wait: boolean (Lane::Gather)
  Napi::Value Gather(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Lane* lane = Joined(env);
    if (lane == nullptr) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsBoolean()) return ThrowInvalid(env, "gather(wait: boolean, into?)");
    Napi::Value into = info[1];
    if (!IntoOk(env, into)) return env.Undefined();
    bool waiting = false;
    Napi::Value result = Hand(env, *member_, lane->Gather(member_->id, info[0].As<Napi::Boolean>().Value(), &waiting), into);
    if (result.IsEmpty() || !js::SetBool(env, result, "wait", waiting)) return Napi::Value();
    return result;
  }

  // rest(into?: Uint8Array) -> take()'s object (Lane::Rest)
  Napi::Value Rest(const Napi::CallbackInfo& info) { return TakeBy(info, &Lane::Rest); }

  // take() and rest(): what `taking` (Lane::Take or Lane::Rest) hands this member, for JS
  Napi::Value TakeBy(const Napi::CallbackInfo& info, std::vector<Submission> (Lane::*taking)(uint32_t)) {
    Napi::Env env = info.Env();
    Lane* lane = Joined(env);
    Napi::Value into = info[0];
    if (lane == nullptr || !IntoOk(env, into)) return env.Undefined();
    return Hand(env, *member_, (lane->*taking)(member_->id), into);
  }

  // `into` is absent or a Uint8Array (checked before anything is taken: a refusal after the
  // take would strand the taken commits in flight).
  static bool IntoOk(Napi::Env env, const Napi::Value& into) {
    if (into.IsUndefined() || into.IsNull() || (into.IsTypedArray() && into.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array)) return true;
    ThrowInvalid(env, "into must be a Uint8Array");
    return false;
  }

  // The taken commits for JS: { meta, buffer } as take() describes; buffer is `into` when it
  // holds them all (and its byte offset keeps the u32 views aligned). Made with raw N-API
  // (js_value.h): under a worker.terminate() the arrays cannot be made, and node-addon-api's
  // then empty ones were written through null (SIGSEGV). Empty then, nothing reaches JS; the
  // taken commits stay this leader's in flight, failed LeaderExited as its environment ends.
  static Napi::Value Hand(Napi::Env env, Member& member, std::vector<Submission>&& taken, const Napi::Value& into) {
    size_t total = 0;
    for (const Submission& s : taken) total += s.block.size;  // each a multiple of 4: views stay aligned
    const size_t metaCount = taken.size() * kTakeFields;
    napi_value metaBuffer = nullptr, meta = nullptr;
    void* metaData = nullptr;
    if (napi_create_arraybuffer(env, metaCount * sizeof(double), &metaData, &metaBuffer) != napi_ok ||
        napi_create_typedarray(env, napi_float64_array, metaCount, metaBuffer, 0, &meta) != napi_ok ||
        (metaCount > 0 && metaData == nullptr)) {
      return Napi::Value();
    }
    napi_value buffer = nullptr;
    uint8_t* out = nullptr;
    if (into.IsTypedArray()) {
      Napi::Uint8Array u = into.As<Napi::Uint8Array>();
      if (u.ByteLength() >= total && u.ByteOffset() % 4 == 0 && u.Data() != nullptr) {
        buffer = u;
        out = u.Data();
      }
    }
    if (out == nullptr) {
      // a Buffer's memory is not zero-filled first (an ArrayBuffer's is): every byte is copied over
      void* data = nullptr;
      if (napi_create_buffer(env, total, &data, &buffer) != napi_ok || (total > 0 && data == nullptr)) return Napi::Value();
      out = static_cast<uint8_t*>(data);
    }
    size_t at = 0;
    for (size_t i = 0; i < taken.size(); i++) {
      Submission& s = taken[i];
      double* m = static_cast<double*>(metaData) + i * kTakeFields;
      m[0] = static_cast<double>(s.id);
      m[1] = s.pageCount;
      m[2] = s.readCount;
      m[3] = s.dbSize;
      m[4] = s.hasConflict ? 1 : 0;
      m[5] = s.mxFrame;
      m[6] = s.salt1;
      m[7] = s.salt2;
      m[8] = s.member;
      m[9] = static_cast<double>(at);
      m[10] = s.readLock == 0xffffffffu ? -1.0 : static_cast<double>(s.readLock);
      if (s.block.size > 0) std::memcpy(out + at, s.block.data, s.block.size);
      at += s.block.size;
    }
    // copied: the blocks go back to their members with the next settle() (Lane::Settle)
    for (Submission& s : taken) {
      if (member.spentBytes + s.block.capacity > kSpentBytes) continue;  // freed with `taken`
      member.spentBytes += s.block.capacity;
      member.spent.push_back(std::move(s));
    }
    napi_value result = nullptr;
    if (!js::ObjectBuilder(env).Value("meta", meta).Value("buffer", buffer).Done(&result)) return Napi::Value();
    return Napi::Value(env, result);
  }

  // settle(ok: Float64Array (id, member, first, last, durable)*, failed: [id, member, code, message, reason, errno][], own, batches = 1)
  // (batches > 1 only with no outcomes: that many batches of the leader's own commits, Lane::Settle)
  Napi::Value Settle(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Lane* lane = Joined(env);
    if (lane == nullptr) return env.Undefined();
    ByteSpan okBytes;
    if (!GetTypedBytes(info, 0, napi_float64_array, "ok", "a Float64Array", &okBytes)) return env.Undefined();
    if (okBytes.length % (kSettleOkFields * 8) != 0) return ThrowInvalid(env, "ok must hold 5 numbers per commit");
    if (info.Length() < 2 || !info[1].IsArray()) return ThrowInvalid(env, "failed must be an array");
    uint64_t own;
    if (!GetUint(info, 2, "own", &own)) return env.Undefined();
    if (own > std::numeric_limits<uint32_t>::max()) return ThrowInvalid(env, "own must be below 2^32");
    uint64_t batches = 1;
    if (info.Length() > 3 && !info[3].IsUndefined() && !GetUint(info, 3, "batches", &batches)) return env.Undefined();
    if (batches < 1 || batches > std::numeric_limits<uint32_t>::max()) return ThrowInvalid(env, "batches must be in 1..2^32-1");
    std::vector<Outcome>& outcomes = member_->outcomes;
    outcomes.clear();
    const double* ok = reinterpret_cast<const double*>(okBytes.data);
    size_t nOk = okBytes.length / (kSettleOkFields * 8);
    constexpr double kMaxU32 = 4294967295.0;
    for (size_t i = 0; i < nOk; i++) {
      const double* f = ok + i * kSettleOkFields;
      if (!(f[0] >= 1 && f[0] <= kMaxSafe) || !(f[1] >= 1 && f[1] <= kMaxU32) || !(f[2] >= 0 && f[2] <= kMaxU32) ||
          !(f[3] >= 0 && f[3] <= kMaxU32)) {
        return ThrowInvalid(env, "ok: id, member or frame out of range");
      }
      Outcome o;
      o.id = static_cast<uint64_t>(f[0]);
      o.member = static_cast<uint32_t>(f[1]);
      o.ok = true;
      o.firstFrame = static_cast<uint32_t>(f[2]);
      o.lastFrame = static_cast<uint32_t>(f[3]);
      o.durable = f[4] != 0;
      outcomes.push_back(std::move(o));
    }
    Napi::Array failed = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < failed.Length(); i++) {
      Napi::Value v;
      if (!GetElement(env, failed, i, &v)) return env.Undefined();  // (raw N-API: args.h GetElement)
      if (!v.IsArray() || v.As<Napi::Array>().Length() != 6) return ThrowInvalid(env, "failed: [id, member, code, message, reason, errno] each");
      Napi::Value id, who, code, message, reason, err;
      if (!GetElement(env, v, 0, &id) || !GetElement(env, v, 1, &who) || !GetElement(env, v, 2, &code) ||
          !GetElement(env, v, 3, &message) || !GetElement(env, v, 4, &reason) || !GetElement(env, v, 5, &err)) {
        return env.Undefined();
      }
      if (!id.IsNumber() || !who.IsNumber() || !code.IsString() || !message.IsString() || !reason.IsString() || !err.IsNumber()) {
        return ThrowInvalid(env, "failed: [id, member, code, message, reason, errno] each");
      }
      double d = id.As<Napi::Number>().DoubleValue();
      double w = who.As<Napi::Number>().DoubleValue();
      if (!(d >= 1 && d <= kMaxSafe) || !(w >= 1 && w <= kMaxU32)) return ThrowInvalid(env, "failed: id or member out of range");
      Outcome o;
      o.id = static_cast<uint64_t>(d);
      o.member = static_cast<uint32_t>(w);
      o.code = code.As<Napi::String>().Utf8Value();
      o.message = message.As<Napi::String>().Utf8Value();
      o.reason = reason.As<Napi::String>().Utf8Value();
      o.err = err.As<Napi::Number>().Int32Value();
      outcomes.push_back(std::move(o));
    }
    if (batches > 1 && !outcomes.empty()) return ThrowInvalid(env, "batches > 1 is for the leader's own commits only (no outcomes)");
    lane->Settle(member_->id, outcomes, static_cast<uint32_t>(own), static_cast<uint32_t>(batches), &member_->spent);
    member_->spentBytes = 0;
    return env.Undefined();
  }

  Napi::Value Resign(const Napi::CallbackInfo& info) {
    if (member_ != nullptr && member_->lane != nullptr) member_->lane->Resign(member_->id);
    return info.Env().Undefined();
  }

  // closing(): this member's store is closing (Lane::Closing); after leave() nothing
  Napi::Value Closing(const Napi::CallbackInfo& info) {
    if (member_ != nullptr && member_->lane != nullptr) member_->lane->Closing(member_->id);
    return info.Env().Undefined();
  }

  // closingMembers() -> Uint32Array of the members whose store is closing (Lane::ClosingMembers)
  Napi::Value ClosingMembers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Lane* lane = Joined(env);
    if (lane == nullptr) return env.Undefined();
    std::vector<uint32_t> closing = lane->ClosingMembers();
    Napi::Uint32Array out = Napi::Uint32Array::New(env, closing.size());
    for (size_t i = 0; i < closing.size(); i++) out[i] = closing[i];
    return out;
  }

  Napi::Value Leave(const Napi::CallbackInfo& info) {
    if (member_ != nullptr) member_->LeaveOnce(false);
    return info.Env().Undefined();
  }

  Napi::Value Metrics(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Lane* lane = Joined(env);
    if (lane == nullptr) return env.Undefined();
    LaneMetrics m = lane->Metrics();
    Napi::Object o = Napi::Object::New(env);
    o.Set("batches", static_cast<double>(m.batches));
    o.Set("commits", static_cast<double>(m.commits));
    o.Set("crossMemberBatches", static_cast<double>(m.crossMemberBatches));
    o.Set("memberSlotsInBatches", static_cast<double>(m.memberSlotsInBatches));
    o.Set("leaderChanges", static_cast<double>(m.leaderChanges));
    o.Set("abandonedCommits", static_cast<double>(m.abandonedCommits));
    o.Set("publishes", static_cast<double>(m.publishes));
    o.Set("wakeups", static_cast<double>(m.wakeups));
    o.Set("leaderWakeups", static_cast<double>(m.leaderWakeups));
    o.Set("members", m.members);
    o.Set("leader", m.leader);
    Napi::Array per = Napi::Array::New(env, m.perMember.size());
    for (size_t i = 0; i < m.perMember.size(); i++) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("member", m.perMember[i].member);
      p.Set("commits", static_cast<double>(m.perMember[i].commits));
      p.Set("batches", static_cast<double>(m.perMember[i].batches));
      per.Set(static_cast<uint32_t>(i), p);
    }
    o.Set("perMember", per);
    return o;
  }

  static Napi::Value Count(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(LaneCount()));
  }

  std::shared_ptr<Member> member_;
  bool leader_ = false;
};

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("CommitLane", CommitLane::Define(env));
}

}  // namespace walnut::lane
