// commit_lane.h — one commit lane per database file per process, shared by every JS environment
// (the main thread and each worker_thread) that opens a store on that file (issue #21).
//
// A lane has members (one per store that joined it) and at most one leader. The leader is the
// member whose JS GroupCommitter writes the lane's commits: other members Submit their commits
// (page bytes copied into one block per commit, owned here until the leader Takes it; blocks
// are recycled once copied: NewBlock/Recycle), the leader Takes everything queued into its own
// batches (as it forms each; its event loop is woken (Waker) for it only when idle), then
// Settles each commit with its outcome, which is queued for the submitting member and wakes it.
// So one batch, one pwritev and one fdatasync serve the commits of every member.
//
// Invariants the lane owns:
//  - A commit is in exactly one place: queued (Submit..Take), in flight (Take..Settle, recorded
//    with the member that took it), or settled (its outcome queued for its submitter). Ids are
//    lane-wide and ascending in submission order; Take hands them out in that order.
//  - At most one leader; it is an eligible member (one that has not Resigned). When the leader
//    Resigns or Leaves, the oldest eligible member becomes leader and is woken with `lead`; when
//    no member is eligible the lane has no leader and the next Submit makes its submitter leader.
//  - A member that Leaves abandoned (its environment is being torn down: worker.terminate(),
//    exit) loses its queued commits (never written: nobody is left to tell); the commits it had
//    taken as leader and not settled fail with WALNUT_CLOSED (reason LeaderExited) for their
//    submitters. Its batch may have reached the WAL and been published before the environment
//    stopped, so such a failure means "not acknowledged", as a lost connection does (README).
//  - The leader is woken for queued commits only when it would not take them anyway. While its
//    committer is busy (from a Take, Gather or Rest that handed it commits until a Rest that
//    found the queue empty) it takes the queue at each batch's formation (Gather) and at its
//    end (Rest), so a Submit meanwhile wakes nobody. A member whose commits a batch settled is
//    awaited: the leader's Gather before its next batch waits (up to a time bound kept by the
//    binding's user) until every awaited member ended the turn in which it resubmitted
//    (Submitted), and is woken once (`gathered`), by the last of them. So a batch carries every member's
//    whole turn of commits (not the first of each), and one wake-up serves them all.
//  - A member's Waker is called at most once between two Collects of that member (wake-ups
//    coalesce), and outside the lane's mutex (a wake-up is a system call: a thread preempted
//    inside it must not hold up every other member). So a Wake may come just after the member
//    left: the lane holds its Waker by shared_ptr, and a Waker ignores Wakes once closed.
//  - The registry holds a lane while it has members; the last LeaveLane removes it. A member's file
//    stays open while it is in the lane, so (device, inode) cannot name another file meanwhile.
// Lock order: the registry's mutex before a lane's; a lane's spare-block mutex is never held
// with another. No N-API here (the binding is
// commit_lane_binding.cc): the engine can be linked and tested alone.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace walnut::lane {

// A block of malloc'd memory with one owner: `size` bytes in use of `capacity`.
struct Block {
  Block() = default;
  explicit Block(size_t n);
  ~Block();
  Block(Block&& o) noexcept : data(o.data), size(o.size), capacity(o.capacity) { o.data = nullptr, o.size = o.capacity = 0; }
  Block& operator=(Block&& o) noexcept;
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  uint8_t* data = nullptr;
  size_t size = 0;
  size_t capacity = 0;
};

// One commit as submitted. `block` holds, in this order: the pages (pageCount * pageSize bytes,
// in the order of `pgnos`), the page numbers (pageCount u32), the conflict set's page numbers
// (readCount u32). The page size is a multiple of 4, so the u32 arrays are aligned.
struct Submission {
  uint64_t id = 0;
  uint32_t member = 0;
  uint32_t pageCount = 0;
  uint32_t readCount = 0;
  uint32_t dbSize = 0;  // 0: the committer's default
  bool hasConflict = false;
  uint32_t mxFrame = 0, salt1 = 0, salt2 = 0;  // the snapshot the conflict set was read in
  Block block;
};

// A settled commit: success (frames) or a WalnutError's fields.
struct Outcome {
  uint64_t id = 0;
  bool ok = false;
  uint32_t firstFrame = 0, lastFrame = 0;
  bool durable = false;
  std::string code, message, reason;
  int32_t err = 0;  // errno, 0 when none
};

// What a member's event loop is woken for.
struct Events {
  std::vector<Outcome> outcomes;  // its commits, settled, in settlement order
  bool lead = false;              // it became the leader
  bool work = false;              // (leader) commits are queued
  bool gathered = false;          // (leader) its Gather awaits nobody any longer
};

// Wakes a member's event loop. Called without the lane's mutex, possibly after the member left
// (then it must do nothing); must not block.
class Waker {
 public:
  virtual ~Waker() = default;
  virtual void Wake() = 0;
};

struct MemberMetrics {
  uint32_t member = 0;
  uint64_t commits = 0;        // commits of this member in the lane's batches
  uint64_t batches = 0;        // batches with at least one of them
};

struct LaneMetrics {
  uint64_t batches = 0;             // batches settled (the leader's batches with any lane commit)
  uint64_t commits = 0;             // commits in them (the leader's own included)
  uint64_t crossMemberBatches = 0;  // batches with commits of two or more members
  uint64_t memberSlotsInBatches = 0;  // sum over batches of the members in it
  uint64_t leaderChanges = 0;
  uint64_t abandonedCommits = 0;    // failed with WALNUT_CLOSED because their leader exited
  uint32_t members = 0;
  uint32_t leader = 0;              // 0: none
  std::vector<MemberMetrics> perMember;
};

class Lane {
 public:
  explicit Lane(uint32_t pageSize) : pageSize_(pageSize) {}
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  uint32_t pageSize() const { return pageSize_; }

  // A block of n bytes for a Submission: a spare one when one is big enough, else new (throws
  // std::bad_alloc). Spares are blocks whose commits were taken and copied (Recycle): a member
  // allocates them and the leader's thread would free them, and that churn (the member's malloc
  // arena shrinking and growing again) cost page faults on every commit.
  Block NewBlock(size_t n);
  // Keeps the blocks of `taken` (their bytes were copied) as spares, up to a bound.
  void Recycle(std::vector<Submission>&& taken);

  // Adds a member; it is the leader when the lane had none. (Through JoinLane.)
  uint32_t Join(std::shared_ptr<Waker> waker, bool* leader);
  // Queues a commit of `member` (its id is set here) and wakes the leader; with no leader the
  // submitter becomes leader (and is woken with `lead`).
  uint64_t Submit(uint32_t member, Submission&& s);
  // Leader only (anyone else gets nothing): every queued commit, in submission order, now in
  // flight under `member`; when there were any, its committer is busy from here (header comment).
  std::vector<Submission> Take(uint32_t member);
  // `member` ended the event-loop turn in which it submitted: it is no longer awaited; the
  // last awaited member wakes a gathering leader.
  void Submitted(uint32_t member);
  // Leader, before its committer forms a batch: Take, and when `wait` and a member is awaited,
  // sets *waiting (the leader is woken with `gathered` once none is); without `wait` (its time
  // bound passed) no member is awaited any longer.
  std::vector<Submission> Gather(uint32_t member, bool wait, bool* waiting);
  // Leader, its committer idle: Take when commits are queued, else the leader is no longer busy
  // (the next Submit wakes it).
  std::vector<Submission> Rest(uint32_t member);
  // The outcomes of one batch, taken by any member earlier (an id not in flight, one whose
  // submitter left, is only counted in the lane's commits when written); `leader` also counts
  // `ownCommits` of its own in the batch.
  // With no outcomes, `ownBatches` batches of the leader's own commits only (a leader alone in
  // the lane reports those in arrears: the binding's user); else it must be 1.
  void Settle(uint32_t leader, std::vector<Outcome>&& outcomes, uint32_t ownCommits, uint32_t ownBatches = 1);
  // Members now (read without the mutex: a leader alone in the lane skips Gather and Settle per
  // batch; a member joining meanwhile is seen at the next batch, and its Submit wakes an idle
  // leader as ever).
  size_t Members() const { return members_.load(std::memory_order_relaxed); }
  // What woke `member` (and clears it).
  Events Collect(uint32_t member);
  // `member` will not lead again; if it leads, the oldest eligible member takes over.
  void Resign(uint32_t member);
  // Removes `member` (invariants in the header comment); returns the members left. (Through
  // LeaveLane.)
  size_t Leave(uint32_t member, bool abandoned);
  bool IsLeader(uint32_t member);
  LaneMetrics Metrics();

 private:
  using Wakes = std::vector<std::shared_ptr<Waker>>;
  struct Slot {
    std::shared_ptr<Waker> waker;
    bool eligible = true;
    bool wakePending = false;
    bool awaited = false;  // a batch settled its commits; it has not ended a turn of submits since
    Events events;
    uint64_t commits = 0, batches = 0;
  };
  struct InFlight {
    uint32_t submitter;
    uint32_t taker;
  };
  // Marks the wake-up due and adds the Waker to `wakes` (called once the mutex is released).
  static void WakeLocked(Slot& slot, Wakes& wakes);
  static void Wake(const Wakes& wakes);
  void HandOverLocked(Wakes& wakes);
  std::vector<Submission> TakeLocked(uint32_t member);
  // No member is awaited any longer (leaderless, or the gather's time bound passed).
  void ForgetAwaitedLocked();
  // One awaited member fewer: a gathering leader is woken when it was the last.
  void UnawaitLocked(Slot& slot, Wakes& wakes);
  // A gathering leader that awaits nobody now is woken with `work`.
  void WakeGatheredLocked(Wakes& wakes);

  const uint32_t pageSize_;
  std::mutex mutex_;
  std::map<uint32_t, Slot> slots_;  // ordered by join: the oldest eligible member leads next
  std::atomic<size_t> members_{0};  // slots_.size(), for Members()
  uint32_t nextMember_ = 1;
  uint32_t leader_ = 0;
  bool leaderBusy_ = false;  // the leader takes the queue by itself (header comment)
  bool gathering_ = false;   // the leader waits for awaited members (Gather)
  uint32_t awaited_ = 0;     // slots with `awaited`
  uint64_t nextId_ = 1;
  std::deque<Submission> queue_;
  std::mutex spareMutex_;  // guards spare_ only (no lock order with mutex_: never held together)
  std::vector<Block> spare_;
  size_t spareBytes_ = 0;
  std::unordered_map<uint64_t, InFlight> inFlight_;
  LaneMetrics metrics_;
};

// The process-wide registry: joins `waker` to the lane of the file (device, inode) for stores
// whose options `key` (what the leader's committer must agree on: synchronous mode and the like)
// match, creating it on first use; LeaveLane removes the member and, with it the last, the lane.
// Both run under the registry's mutex, so a join never finds a lane that is being dropped.
// `pageSize` is part of the key too (one file has one page size; a lane never mixes two).
std::shared_ptr<Lane> JoinLane(dev_t dev, ino_t ino, const std::string& key, uint32_t pageSize,
                               std::shared_ptr<Waker> waker, uint32_t* member, bool* leader);
void LeaveLane(const std::shared_ptr<Lane>& lane, uint32_t member, bool abandoned);
// Lanes in the registry (tests: no lane is leaked).
size_t LaneCount();

}  // namespace walnut::lane
