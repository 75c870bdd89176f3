// commit_lane_binding.cc — see commit_lane_binding.h; the lane itself is commit_lane.{h,cc}.
//
// One CommitLane object = one member. Its wake-ups reach its own environment through its own
// ThreadSafeFunction, referenced only while commits it submitted are unsettled (an idle member
// never keeps its thread alive). The member leaves the lane on leave(), when the object is
// collected, or, abandoned, in an environment cleanup hook (worker.terminate(), exit) registered
// after the ThreadSafeFunction so that it runs first: the lane never wakes a closed function.
// Page bytes are copied at submit into the commit's block (the caller may reuse its buffers at
// once) and at take() into one buffer of the leader's heap for everything taken: the caller's
// `into` (lane.ts recycles these: a fresh 256 KiB buffer per take cost ~50x its copy, in page
// faults of fresh memory, measured ~200 µs against ~4 µs) when everything fits, else a new one.
#include "commit_lane_binding.h"

#include <sys/stat.h>

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
#include "file.h"

namespace walnut::lane {
namespace {

// Outcome fields per successful commit in the Float64Array handed to JS: id, first, last, durable.
constexpr size_t kOkFields = 4;
// Per taken commit: id, pageCount, readCount, dbSize, hasConflict, mxFrame, salt1, salt2, member,
// byte offset of its block in take()'s buffer.
constexpr size_t kTakeFields = 10;
constexpr double kMaxSafe = 9007199254740991.0;

class Member;
void CallJs(Napi::Env env, Napi::Function callback, Member* member, void*);
using Wakeup = Napi::TypedThreadSafeFunction<Member, void, CallJs>;


// The native half of one member; the CommitLane object and its ThreadSafeFunction share it.
class Member : public Waker {
 public:
  // Any thread; after the member left (the lane may still hold a wake-up for it) nothing.
  void Wake() override {
    std::lock_guard<std::mutex> lock(wakeMutex);
    if (!closed) wakeup.NonBlockingCall(nullptr);
  }

  // Leaves the lane once (later calls do nothing) and releases the wake-up function.
  void LeaveOnce(bool abandoned) {
    if (lane == nullptr) return;
    std::shared_ptr<Lane> l = std::move(lane);
    LeaveLane(l, id, abandoned);
    {
      std::lock_guard<std::mutex> lock(wakeMutex);
      closed = true;
    }
    wakeup.Release();
  }

  static void OnEnvCleanup(void* arg) {
    auto* self = static_cast<Member*>(arg);
    self->hookArmed = false;
    self->LeaveOnce(true);
  }

  napi_env env = nullptr;
  std::shared_ptr<Lane> lane;
  uint32_t id = 0;
  Wakeup wakeup;
  size_t outstanding = 0;  // JS thread only: submitted by this member, not yet delivered settled
  bool hookArmed = false;
  std::mutex wakeMutex;  // guards closed against Wake from other threads
  bool closed = false;   // the wake-up function is released
};

// Empty when it could not be made (an environment that no longer runs JS: see CallJs).
Napi::Float64Array OkArray(Napi::Env env, const std::vector<const Outcome*>& ok) {
  Napi::Float64Array a = Napi::Float64Array::New(env, ok.size() * kOkFields);
  if (a.IsEmpty()) return a;
  for (size_t i = 0; i < ok.size(); i++) {
    a[i * kOkFields] = static_cast<double>(ok[i]->id);
    a[i * kOkFields + 1] = ok[i]->firstFrame;
    a[i * kOkFields + 2] = ok[i]->lastFrame;
    a[i * kOkFields + 3] = ok[i]->durable ? 1 : 0;
  }
  return a;
}

// A worker being terminated stops running JS while its loop may still deliver a wake-up: then
// every value made here comes back empty (no memory behind a typed array's data: writing the
// outcomes into it crashed the process), and nothing reaches JS any more.
void CallJs(Napi::Env env, Napi::Function callback, Member* member, void*) {
  if (env == nullptr || member->lane == nullptr) return;
  Napi::Array failed = Napi::Array::New(env);
  if (failed.IsEmpty()) return;
  Events ev = member->lane->Collect(member->id);
  std::vector<const Outcome*> ok;
  uint32_t nFailed = 0;
  for (const Outcome& o : ev.outcomes) {
    if (o.ok) {
      ok.push_back(&o);
      continue;
    }
    Napi::Array f = Napi::Array::New(env, 5);
    f.Set(0u, Napi::Number::New(env, static_cast<double>(o.id)));
    f.Set(1u, Napi::String::New(env, o.code));
    f.Set(2u, Napi::String::New(env, o.message));
    f.Set(3u, Napi::String::New(env, o.reason));
    f.Set(4u, Napi::Number::New(env, o.err));
    failed.Set(nFailed++, f);
  }
  size_t settled = ev.outcomes.size() < member->outstanding ? ev.outcomes.size() : member->outstanding;
  member->outstanding -= settled;
  if (settled > 0 && member->outstanding == 0) member->wakeup.Unref(env);
  if (ev.outcomes.empty() && !ev.lead && !ev.work && !ev.gathered) return;
  Napi::Float64Array okArray = OkArray(env, ok);
  if (okArray.IsEmpty()) return;
  // an exception thrown by the callback is the process's uncaught exception (lane.ts never throws)
  callback.Call({okArray, failed, Napi::Boolean::New(env, ev.lead), Napi::Boolean::New(env, ev.work),
                 Napi::Boolean::New(env, ev.gathered)});
}

class CommitLane : public Napi::ObjectWrap<CommitLane> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "CommitLane",
                       {InstanceAccessor<&CommitLane::GetMember>("member"),
                        InstanceAccessor<&CommitLane::GetLeader>("leader"),
                        InstanceAccessor<&CommitLane::GetAlone>("alone"),
                        InstanceMethod<&CommitLane::Submit>("submit"),
                        InstanceMethod<&CommitLane::Submitted>("submitted"),
                        InstanceMethod<&CommitLane::Take>("take"),
                        InstanceMethod<&CommitLane::Gather>("gather"),
                        InstanceMethod<&CommitLane::Rest>("rest"),
                        InstanceMethod<&CommitLane::Settle>("settle"),
                        InstanceMethod<&CommitLane::Resign>("resign"),
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
    m->env = env;
    // the function's queued calls may run after leave(): it keeps the Member alive until finalized
    m->wakeup = Wakeup::New(env, info[3].As<Napi::Function>(), "walnut-lane", 0, 1, m.get(),
                            [](Napi::Env, std::shared_ptr<Member>* keep, Member*) { delete keep; },
                            new std::shared_ptr<Member>(m));
    m->wakeup.Unref(env);
    m->lane = JoinLane(st.st_dev, st.st_ino, info[1].As<Napi::String>().Utf8Value(),
                       static_cast<uint32_t>(pageSize), m, &m->id, &leader_);
    // after the ThreadSafeFunction's own hook: cleanup hooks run in reverse order
    if (napi_add_env_cleanup_hook(env, Member::OnEnvCleanup, m.get()) == napi_ok) m->hookArmed = true;
    member_ = std::move(m);
  }

  ~CommitLane() override {
    if (member_ == nullptr) return;
    if (member_->hookArmed) napi_remove_env_cleanup_hook(member_->env, Member::OnEnvCleanup, member_.get());
    member_->LeaveOnce(true);  // collected without leave(): nobody waits for its commits
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

  // submit(pgnos: Uint32Array, pages: Uint8Array[], dbSize, conflict: null | [mxFrame, salt1, salt2, reads: Uint32Array]) -> id
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
    ByteSpan reads;
    if (info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined()) {
      Napi::Value c = info[3];
      if (!c.IsArray() || c.As<Napi::Array>().Length() != 4) return ThrowInvalid(env, "conflict must be [mxFrame, salt1, salt2, pgnos]");
      Napi::Array a = c.As<Napi::Array>();
      Napi::Object fields = Napi::Object::New(env);
      fields.Set("mxFrame", a.Get(0u));
      fields.Set("salt1", a.Get(1u));
      fields.Set("salt2", a.Get(2u));
      if (!GetU32Prop(env, fields, "mxFrame", &s.mxFrame) || !GetU32Prop(env, fields, "salt1", &s.salt1) ||
          !GetU32Prop(env, fields, "salt2", &s.salt2)) {
        return env.Undefined();
      }
      if (!TypedBytesOf(env, a.Get(3u), napi_uint32_array, &reads) ||
          reads.length / 4 > std::numeric_limits<uint32_t>::max()) {
        return ThrowInvalid(env, "conflict pgnos must be a Uint32Array");
      }
      s.hasConflict = true;
    }
    const size_t pageSize = lane->pageSize();
    // count < 2^32 and pageSize <= 2^16: no overflow in 64 bits
    const size_t pageBytes = count * pageSize;
    try {
      s.block = lane->NewBlock(pageBytes + pgnos.length + reads.length);
    } catch (const std::bad_alloc&) {
      MakeError(env, "WALNUT_IO", "WALNUT_IO: out of memory for a lane commit").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array pages = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < count; i++) {
      ByteSpan page;
      if (!TypedBytesOf(env, pages.Get(i), napi_uint8_array, &page) || page.length != pageSize) {
        return ThrowInvalid(env, "page " + std::to_string(i) + " must be a Uint8Array of the page size");
      }
      std::memcpy(s.block.data + static_cast<size_t>(i) * pageSize, page.data, pageSize);
    }
    std::memcpy(s.block.data + pageBytes, pgnos.data, pgnos.length);
    if (reads.length > 0) std::memcpy(s.block.data + pageBytes + pgnos.length, reads.data, reads.length);
    s.pageCount = static_cast<uint32_t>(count);
    s.readCount = static_cast<uint32_t>(reads.length / 4);
    s.dbSize = static_cast<uint32_t>(dbSize);
    if (member_->outstanding++ == 0) member_->wakeup.Ref(env);
    uint64_t id = lane->Submit(member_->id, std::move(s));
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
    Napi::Object result = Hand(env, lane, lane->Gather(member_->id, info[0].As<Napi::Boolean>().Value(), &waiting), into);
    result.Set("wait", Napi::Boolean::New(env, waiting));
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
    return Hand(env, lane, (lane->*taking)(member_->id), into);
  }

  // `into` is absent or a Uint8Array (checked before anything is taken: a refusal after the
  // take would strand the taken commits in flight).
  static bool IntoOk(Napi::Env env, const Napi::Value& into) {
    if (into.IsUndefined() || into.IsNull() || (into.IsTypedArray() && into.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array)) return true;
    ThrowInvalid(env, "into must be a Uint8Array");
    return false;
  }

  // submitted(): this member's turn of submits ended (Lane::Submitted)
  Napi::Value Submitted(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Lane* lane = Joined(env);
    if (lane == nullptr) return env.Undefined();
    lane->Submitted(member_->id);
    return env.Undefined();
  }

  // The taken commits for JS: { meta, buffer } as take() describes; buffer is `into` when it
  // holds them all (and its byte offset keeps the u32 views aligned).
  static Napi::Object Hand(Napi::Env env, Lane* lane, std::vector<Submission>&& taken, const Napi::Value& into) {
    size_t total = 0;
    for (const Submission& s : taken) total += s.block.size;  // each a multiple of 4: views stay aligned
    Napi::Float64Array meta = Napi::Float64Array::New(env, taken.size() * kTakeFields);
    Napi::Uint8Array buffer;
    uint8_t* out = nullptr;
    if (into.IsTypedArray()) {
      Napi::Uint8Array u = into.As<Napi::Uint8Array>();
      if (u.ByteLength() >= total && u.ByteOffset() % 4 == 0) {
        buffer = u;
        out = u.Data();
      }
    }
    if (out == nullptr) {
      // a Buffer's memory is not zero-filled first (an ArrayBuffer's is): every byte is copied over
      Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::New(env, total);
      buffer = b;
      out = b.Data();
    }
    size_t at = 0;
    for (size_t i = 0; i < taken.size(); i++) {
      Submission& s = taken[i];
      double* m = meta.Data() + i * kTakeFields;
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
      if (s.block.size > 0) std::memcpy(out + at, s.block.data, s.block.size);
      at += s.block.size;
    }
    lane->Recycle(std::move(taken));  // copied: the blocks serve the next submits
    Napi::Object result = Napi::Object::New(env);
    result.Set("meta", meta);
    result.Set("buffer", buffer);
    return result;
  }

  // settle(ok: Float64Array (id, first, last, durable)*, failed: [id, code, message, reason, errno][], own, batches = 1)
  // (batches > 1 only with no outcomes: that many batches of the leader's own commits, Lane::Settle)
  Napi::Value Settle(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Lane* lane = Joined(env);
    if (lane == nullptr) return env.Undefined();
    ByteSpan okBytes;
    if (!GetTypedBytes(info, 0, napi_float64_array, "ok", "a Float64Array", &okBytes)) return env.Undefined();
    if (okBytes.length % (kOkFields * 8) != 0) return ThrowInvalid(env, "ok must hold 4 numbers per commit");
    if (info.Length() < 2 || !info[1].IsArray()) return ThrowInvalid(env, "failed must be an array");
    uint64_t own;
    if (!GetUint(info, 2, "own", &own)) return env.Undefined();
    if (own > std::numeric_limits<uint32_t>::max()) return ThrowInvalid(env, "own must be below 2^32");
    uint64_t batches = 1;
    if (info.Length() > 3 && !info[3].IsUndefined() && !GetUint(info, 3, "batches", &batches)) return env.Undefined();
    if (batches < 1 || batches > std::numeric_limits<uint32_t>::max()) return ThrowInvalid(env, "batches must be in 1..2^32-1");
    std::vector<Outcome> outcomes;
    const double* ok = reinterpret_cast<const double*>(okBytes.data);
    size_t nOk = okBytes.length / (kOkFields * 8);
    for (size_t i = 0; i < nOk; i++) {
      const double* f = ok + i * kOkFields;
      if (!(f[0] >= 1 && f[0] <= kMaxSafe) || !(f[1] >= 0 && f[1] <= 4294967295.0) || !(f[2] >= 0 && f[2] <= 4294967295.0)) {
        return ThrowInvalid(env, "ok: id or frame out of range");
      }
      Outcome o;
      o.id = static_cast<uint64_t>(f[0]);
      o.ok = true;
      o.firstFrame = static_cast<uint32_t>(f[1]);
      o.lastFrame = static_cast<uint32_t>(f[2]);
      o.durable = f[3] != 0;
      outcomes.push_back(std::move(o));
    }
    Napi::Array failed = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < failed.Length(); i++) {
      Napi::Value v = failed.Get(i);
      if (!v.IsArray() || v.As<Napi::Array>().Length() != 5) return ThrowInvalid(env, "failed: [id, code, message, reason, errno] each");
      Napi::Array f = v.As<Napi::Array>();
      Napi::Value id = f.Get(0u), code = f.Get(1u), message = f.Get(2u), reason = f.Get(3u), err = f.Get(4u);
      if (!id.IsNumber() || !code.IsString() || !message.IsString() || !reason.IsString() || !err.IsNumber()) {
        return ThrowInvalid(env, "failed: [id, code, message, reason, errno] each");
      }
      double d = id.As<Napi::Number>().DoubleValue();
      if (!(d >= 1 && d <= kMaxSafe)) return ThrowInvalid(env, "failed: id out of range");
      Outcome o;
      o.id = static_cast<uint64_t>(d);
      o.code = code.As<Napi::String>().Utf8Value();
      o.message = message.As<Napi::String>().Utf8Value();
      o.reason = reason.As<Napi::String>().Utf8Value();
      o.err = err.As<Napi::Number>().Int32Value();
      outcomes.push_back(std::move(o));
    }
    if (batches > 1 && !outcomes.empty()) return ThrowInvalid(env, "batches > 1 is for the leader's own commits only (no outcomes)");
    lane->Settle(member_->id, std::move(outcomes), static_cast<uint32_t>(own), static_cast<uint32_t>(batches));
    return env.Undefined();
  }

  Napi::Value Resign(const Napi::CallbackInfo& info) {
    if (member_ != nullptr && member_->lane != nullptr) member_->lane->Resign(member_->id);
    return info.Env().Undefined();
  }

  Napi::Value Leave(const Napi::CallbackInfo& info) {
    if (member_ != nullptr) {
      if (member_->hookArmed) napi_remove_env_cleanup_hook(member_->env, Member::OnEnvCleanup, member_.get());
      member_->hookArmed = false;
      member_->LeaveOnce(false);
    }
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
