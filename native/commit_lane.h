// commit_lane.h — one commit lane per database file per process, shared by every JS environment
// (the main thread and each worker_thread) that opens a store on that file (issue #21).
//
// A lane has members (one per store that joined it) and at most one leader. The leader is the
// member whose JS GroupCommitter writes the lane's commits. Other members submit their commits
// into a buffer of their own (page bytes copied into one block per commit, from the member's own
// cache of blocks: no lock, no allocation in steady state) and Publish that buffer into the lane
// once per event-loop turn, when the member's code returns to its event loop: one acquisition of
// the lane's mutex per member per turn, not one per commit. The leader Takes everything
// published into its own batches (as it forms each; its event loop is woken (Waker) for it only
// when idle), then Settles each commit with its outcome, which is queued for the submitting
// member and wakes it; the blocks it copied go back to their members' caches with that Settle.
// So one batch, one pwritev and one fdatasync serve the commits of every member.
//
// Invariants the lane owns:
//  - A commit is in exactly one place: in its member's buffer (submitted, not yet published: the
//    binding's), queued (Publish..Take), in flight (Take..Settle, recorded in its submitter's
//    slot with the member that took it), or settled (its outcome queued for its submitter).
//    Ids are lane-wide and unique, ascending in each member's submission order (NextId); the
//    queue is in publish order, each member's commits in its own order, and Take hands them out
//    in queue order. So a member's commit enters the lane (and its place in the lane's order)
//    when its code returns to the event loop, not when commit() is called.
//  - At most one leader; it is an eligible member (one that has not Resigned). When the leader
//    Resigns or Leaves, the oldest eligible member becomes leader and is woken with `lead`; when
//    no member is eligible the lane has no leader and the next Publish makes its member leader.
//  - A member that Leaves abandoned (its environment is being torn down: worker.terminate(),
//    exit) loses its queued commits and its unpublished ones (never written: nobody is left to
//    tell); the commits it had taken as leader and not settled fail with WALNUT_CLOSED (reason
//    LeaderExited) for their submitters. Its batch may have reached the WAL and been published
//    before the environment stopped, so such a failure means "not acknowledged", as a lost
//    connection does (README).
//  - The leader is woken for queued commits only when it would not take them anyway. While its
//    committer is busy (from a Take, Gather or Rest that handed it commits until a Rest that
//    found the queue empty) it takes the queue at each batch's formation (Gather) and at its
//    end (Rest), so a Publish meanwhile wakes nobody. A member whose commits a batch settled is
//    awaited: the leader's Gather before its next batch waits (up to a time bound kept by the
//    binding's user) until every awaited member ended the turn in which it resubmitted (its
//    Publish), and is woken once (`gathered`), by the last of them. So a batch carries every
//    member's whole turn of commits (not the first of each), and one wake-up serves them all.
//  - A member's Waker is called at most once between two Collects of that member (wake-ups
//    coalesce), and outside the lane's mutex (a wake-up is a system call: a thread preempted
//    inside it must not hold up every other member). So a Wake may come just after the member
//    left: the lane holds its Waker by shared_ptr, and a Waker ignores Wakes once closed.
//  - Closing members (Closing): a member whose store is closing is marked so until it leaves;
//    every other member is woken with `closing` then and as it leaves, so whichever committer
//    holds its commits (the leader's, or a resigned leader finishing its batch, on any thread)
//    withdraws those waiting for another connection's WRITE (lane.ts; the lane only tells).
//  - Blocks: a member's spare blocks total at most kMemberSpareBytes (its cache plus those the
//    leader returned to its slot); a block whose member left is freed.
//  - The registry holds a lane while it has members; the last LeaveLane removes it. A member's file
//    stays open while it is in the lane, so (device, inode) cannot name another file meanwhile.
// Lock order: the registry's mutex before a lane's. No N-API here (the binding is
// commit_lane_binding.cc): the engine can be linked and tested alone.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
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
  // the read-lock slot (0..4) that snapshot holds in its member's connection until the commit
  // settles (0xffffffff: none): the leader's own checkpoint must not wait for it under WRITE
  uint32_t readLock = 0xffffffffu;
  Block block;
};

// A settled commit: success (frames) or a WalnutError's fields. `member`: its submitter (the
// leader hands it back from Take's Submission: Settle finds the commit's slot without a map).
struct Outcome {
  uint64_t id = 0;
  uint32_t member = 0;
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
  bool closing = false;           // the set of closing members changed (Closing, a closing member left)
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
  uint64_t publishes = 0;           // member turns published with commits (one lane lock each)
  uint64_t wakeups = 0;             // Waker calls (each one uv_async_send: a thread woken)
  uint64_t leaderWakeups = 0;       // of them, the leader's (lead, work, gathered)
  uint32_t members = 0;
  uint32_t leader = 0;              // 0: none
  std::vector<MemberMetrics> perMember;
};

// Spare blocks kept per member, at most (its cache plus those returned to its slot).
constexpr size_t kMemberSpareBytes = 1u << 20;

// One member's blocks for its Submissions, used on its own thread only (no lock): blocks whose
// commits the leader copied come back to it through its slot (Lane::Publish). Reusing them, not
// malloc per commit, matters: the member allocates and the leader's thread would free, and that
// churn (the member's malloc arena shrinking and growing again) cost page faults on every commit.
class BlockCache {
 public:
  // A block of n bytes: a spare one when one fits (no more than twice n), else new (throws
  // std::bad_alloc).
  Block Get(size_t n);
  // Keeps `blocks` as spares while the cache holds at most kMemberSpareBytes; frees the rest.
  void Keep(std::vector<Block>&& blocks);
  size_t bytes() const { return bytes_; }

 private:
  std::vector<Block> spare_;
  size_t bytes_ = 0;
};

class Lane {
 public:
  explicit Lane(uint32_t pageSize) : pageSize_(pageSize) {}
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  uint32_t pageSize() const { return pageSize_; }

  // Adds a member; it is the leader when the lane had none. (Through JoinLane.)
  uint32_t Join(std::shared_ptr<Waker> waker, bool* leader);
  // A commit's id (lane-wide, unique; ascending per member, as each member calls it in order).
  uint64_t NextId() { return nextId_.fetch_add(1, std::memory_order_relaxed); }
  // `member` ended an event-loop turn: its submissions of the turn (ids from NextId, in its
  // order) are queued, emptied from `submitted` (which keeps its capacity), and the leader is
  // woken (with no leader, `member` leads and is woken with `lead`); it is no longer awaited
  // (the last awaited member wakes a gathering leader); the blocks the leader returned to it
  // are moved into `spares` (its BlockCache). One acquisition of the mutex for all of it.
  void Publish(uint32_t member, std::vector<Submission>& submitted, std::vector<Block>& spares);
  // Leader only (anyone else gets nothing): every queued commit, in submission order, now in
  // flight under `member`; when there were any, its committer is busy from here (header comment).
  std::vector<Submission> Take(uint32_t member);
  // Leader, before its committer forms a batch: Take, and when `wait` and a member is awaited,
  // sets *waiting (the leader is woken with `gathered` once none is); without `wait` (its time
  // bound passed) no member is awaited any longer.
  std::vector<Submission> Gather(uint32_t member, bool wait, bool* waiting);
  // Leader, its committer idle: Take when commits are queued, else the leader is no longer busy
  // (the next Publish wakes it).
  std::vector<Submission> Rest(uint32_t member);
  // The outcomes of one batch, taken by any member earlier, each with its submitter (an outcome
  // not in flight, one whose submitter left, is only counted in the lane's commits when
  // written); `leader` also counts `ownCommits` of its own in the batch.
  // With no outcomes, `ownBatches` batches of the leader's own commits only (a leader alone in
  // the lane reports those in arrears: the binding's user); else it must be 1.
  // `spent`: Submissions the leader took and copied since; their blocks go back to their
  // members' slots (Publish hands them on), and `spent` is emptied. No map is built: an
  // outcome finds its slot by its member (once for a run of one member's), and its commit in
  // that slot's in-flight list, which is in take order (the head, but for failures and orphans).
  void Settle(uint32_t leader, std::vector<Outcome>& outcomes, uint32_t ownCommits, uint32_t ownBatches = 1,
              std::vector<Submission>* spent = nullptr);
  // Members now (read without the mutex: a leader alone in the lane skips Gather and Settle per
  // batch; a member joining meanwhile is seen at the next batch, and its Publish wakes an idle
  // leader as ever).
  size_t Members() const { return members_.load(std::memory_order_relaxed); }
  // What woke `member` into `out` (its vectors are reused; the slot's are cleared).
  void Collect(uint32_t member, Events& out);
  // `member` will not lead again; if it leads, the oldest eligible member takes over.
  void Resign(uint32_t member);
  // `member`'s store is closing: its commits that a committer holds while it waits for WRITE
  // held by another connection are withdrawn by that committer (lane.ts). Every other member is
  // woken with `closing` (whoever holds them: the leader, or a resigned one finishing its
  // batch), and again when a closing member leaves (the set shrank).
  void Closing(uint32_t member);
  // The members whose store is closing (Closing), in join order.
  std::vector<uint32_t> ClosingMembers();
  // Removes `member` (invariants in the header comment); returns the members left. (Through
  // LeaveLane.)
  size_t Leave(uint32_t member, bool abandoned);
  bool IsLeader(uint32_t member);
  LaneMetrics Metrics();

 private:
  using Wakes = std::vector<std::shared_ptr<Waker>>;
  struct InFlight {
    uint64_t id;
    uint32_t taker;
  };
  struct Slot {
    std::shared_ptr<Waker> waker;
    bool eligible = true;
    bool wakePending = false;
    bool awaited = false;  // a batch settled its commits; it has not ended a turn of submits since
    bool closing = false;  // its store is closing (Closing)
    Events events;
    uint64_t commits = 0, batches = 0;
    uint64_t lastBatch = 0;  // the batch (batchSeq_) that last counted it
    // its commits taken and not settled, in take order (from inFlightHead)
    std::vector<InFlight> inFlight;
    size_t inFlightHead = 0;
    std::vector<Block> returned;  // blocks the leader copied, for Publish to hand back
    size_t returnedBytes = 0;
    // Drops `id` from inFlight: false when it is not there.
    bool Settled(uint64_t id);
  };
  // Marks the wake-up due and adds the Waker to `wakes` (called once the mutex is released).
  void WakeLocked(Slot& slot, Wakes& wakes);
  static void Wake(const Wakes& wakes);
  void HandOverLocked(Wakes& wakes);
  std::vector<Submission> TakeLocked(uint32_t member);
  // Counts `n` commits of `slot` in the batch being settled (batchSeq_).
  void CountLocked(Slot& slot, uint64_t n, uint32_t batches, uint32_t* membersInBatch);
  // No member is awaited any longer (leaderless, or the gather's time bound passed).
  void ForgetAwaitedLocked();
  // One awaited member fewer: a gathering leader is woken when it was the last.
  void UnawaitLocked(Slot& slot, Wakes& wakes);
  // A gathering leader that awaits nobody now is woken with `work`.
  void WakeGatheredLocked(Wakes& wakes);
  // Every member but `except` is woken with `closing`.
  void WakeClosingLocked(uint32_t except, Wakes& wakes);

  const uint32_t pageSize_;
  std::mutex mutex_;
  std::map<uint32_t, Slot> slots_;  // ordered by join: the oldest eligible member leads next
  std::atomic<size_t> members_{0};  // slots_.size(), for Members()
  uint32_t nextMember_ = 1;
  uint32_t leader_ = 0;
  bool leaderBusy_ = false;  // the leader takes the queue by itself (header comment)
  bool gathering_ = false;   // the leader waits for awaited members (Gather)
  uint32_t awaited_ = 0;     // slots with `awaited`
  std::atomic<uint64_t> nextId_{1};
  std::vector<Submission> queue_;  // published, in publish order
  uint64_t batchSeq_ = 0;          // batches settled, for Slot::lastBatch
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
