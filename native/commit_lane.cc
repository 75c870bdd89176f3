// commit_lane.cc — see commit_lane.h.
#include "commit_lane.h"

#include <cstdlib>
#include <new>
#include <tuple>

namespace walnut::lane {

Block::Block(size_t n) : data(static_cast<uint8_t*>(std::malloc(n == 0 ? 1 : n))), size(n), capacity(n) {
  if (data == nullptr) throw std::bad_alloc();
}

Block::~Block() { std::free(data); }

Block& Block::operator=(Block&& o) noexcept {
  if (this != &o) {
    std::free(data);
    data = o.data, size = o.size, capacity = o.capacity;
    o.data = nullptr, o.size = o.capacity = 0;
  }
  return *this;
}

Block BlockCache::Get(size_t n) {
  // newest first; a spare more than twice the size would waste what another commit could use
  for (size_t i = spare_.size(); i-- > 0;) {
    if (spare_[i].capacity < n || spare_[i].capacity / 2 > n) continue;
    Block b = std::move(spare_[i]);
    spare_[i] = std::move(spare_.back());
    spare_.pop_back();
    bytes_ -= b.capacity;
    b.size = n;
    return b;
  }
  return Block(n);
}

void BlockCache::Keep(std::vector<Block>&& blocks) {
  for (Block& b : blocks) {
    if (b.data == nullptr || bytes_ + b.capacity > kMemberSpareBytes) continue;  // freed with `blocks`
    bytes_ += b.capacity;
    spare_.push_back(std::move(b));
  }
  blocks.clear();
}

bool Lane::Slot::Settled(uint64_t id) {
  // a batch settles in take order: the head, unless a failure or an orphan came out of order
  size_t i = inFlightHead;
  while (i < inFlight.size() && inFlight[i].id != id) i++;
  if (i == inFlight.size()) return false;
  if (i == inFlightHead) {
    inFlightHead++;
  } else {
    inFlight.erase(inFlight.begin() + static_cast<std::ptrdiff_t>(i));
  }
  if (inFlightHead == inFlight.size()) {
    inFlight.clear();  // keeps its capacity
    inFlightHead = 0;
  }
  return true;
}

void Lane::WakeLocked(Slot& slot, Wakes& wakes) {
  if (slot.wakePending || slot.waker == nullptr) return;
  slot.wakePending = true;
  metrics_.wakeups++;
  if (slot.events.lead || slot.events.work || slot.events.gathered) metrics_.leaderWakeups++;
  wakes.push_back(slot.waker);
}

void Lane::Wake(const Wakes& wakes) {
  for (const auto& w : wakes) w->Wake();
}

void Lane::ForgetAwaitedLocked() {
  for (auto& [id, slot] : slots_) slot.awaited = false;
  awaited_ = 0;
  gathering_ = false;
}

void Lane::UnawaitLocked(Slot& slot, Wakes& wakes) {
  if (!slot.awaited) return;
  slot.awaited = false;
  awaited_--;
  WakeGatheredLocked(wakes);
}

void Lane::WakeGatheredLocked(Wakes& wakes) {
  if (awaited_ > 0 || !gathering_) return;
  gathering_ = false;
  auto it = slots_.find(leader_);
  if (it == slots_.end()) return;
  it->second.events.gathered = true;
  WakeLocked(it->second, wakes);
}

void Lane::WakeClosingLocked(uint32_t except, Wakes& wakes) {
  for (auto& [id, slot] : slots_) {
    if (id == except) continue;
    slot.events.closing = true;
    WakeLocked(slot, wakes);
  }
}

void Lane::HandOverLocked(Wakes& wakes) {
  uint32_t previous = leader_;
  leader_ = 0;
  // the new leader starts from its wake-up (lead, work), its committer not yet busy
  leaderBusy_ = false;
  ForgetAwaitedLocked();
  for (auto& [id, slot] : slots_) {
    if (!slot.eligible) continue;
    leader_ = id;
    slot.events.lead = true;
    if (!queue_.empty()) slot.events.work = true;
    WakeLocked(slot, wakes);
    break;
  }
  if (leader_ != previous && leader_ != 0) metrics_.leaderChanges++;
}

uint32_t Lane::Join(std::shared_ptr<Waker> waker, bool* leader) {
  std::lock_guard<std::mutex> lock(mutex_);
  uint32_t id = nextMember_++;
  Slot& slot = slots_[id];
  members_.store(slots_.size(), std::memory_order_relaxed);
  slot.waker = std::move(waker);
  *leader = leader_ == 0;
  if (*leader) leader_ = id;
  return id;
}

void Lane::Publish(uint32_t member, std::vector<Submission>& submitted, std::vector<Block>& spares) {
  Wakes wakes;
  std::unique_lock<std::mutex> lock(mutex_);
  auto self = slots_.find(member);
  if (self == slots_.end()) {  // it left: nobody would hear of these
    submitted.clear();
    return;
  }
  if (!submitted.empty()) {
    metrics_.publishes++;
    for (Submission& s : submitted) {
      s.member = member;
      queue_.push_back(std::move(s));
    }
    submitted.clear();
    if (leader_ == 0) {
      // nobody eligible leads: the submitter does (it is submitting, so it is not leaving)
      leader_ = member;
      self->second.events.lead = true;
      metrics_.leaderChanges++;
    }
    // a busy leader takes the queue by itself (at its next Gather or Rest)
    auto it = slots_.find(leader_);
    if (it != slots_.end() && (!leaderBusy_ || leader_ == member)) {
      it->second.events.work = true;
      WakeLocked(it->second, wakes);
    }
  }
  UnawaitLocked(self->second, wakes);
  if (!self->second.returned.empty()) {
    if (spares.empty()) {
      std::swap(spares, self->second.returned);
    } else {
      for (Block& b : self->second.returned) spares.push_back(std::move(b));
      self->second.returned.clear();
    }
    self->second.returnedBytes = 0;
  }
  lock.unlock();
  Wake(wakes);
}

std::vector<Submission> Lane::Take(uint32_t member) {
  std::lock_guard<std::mutex> lock(mutex_);
  return TakeLocked(member);
}

std::vector<Submission> Lane::Gather(uint32_t member, bool wait, bool* waiting) {
  std::lock_guard<std::mutex> lock(mutex_);
  *waiting = false;
  if (member != leader_) return {};
  leaderBusy_ = true;  // its committer is forming a batch: a Rest follows
  if (!wait) {
    ForgetAwaitedLocked();
  } else if (awaited_ > 0) {
    gathering_ = true;
    *waiting = true;
  }
  return TakeLocked(member);
}

std::vector<Submission> Lane::Rest(uint32_t member) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (member != leader_) return {};
  if (queue_.empty()) {
    leaderBusy_ = false;
    gathering_ = false;
    return {};
  }
  return TakeLocked(member);
}

std::vector<Submission> Lane::TakeLocked(uint32_t member) {
  std::vector<Submission> taken;
  if (member != leader_ || queue_.empty()) return taken;
  leaderBusy_ = true;  // what it takes makes its committer busy: a Rest follows
  uint32_t last = 0;
  Slot* submitter = nullptr;
  for (Submission& s : queue_) {
    if (s.member != last || submitter == nullptr) {
      auto it = slots_.find(s.member);
      submitter = it == slots_.end() ? nullptr : &it->second;
      last = s.member;
    }
    if (submitter != nullptr) submitter->inFlight.push_back(InFlight{s.id, member});
  }
  std::swap(taken, queue_);  // queue_ is left empty
  return taken;
}

void Lane::CountLocked(Slot& slot, uint64_t n, uint32_t batches, uint32_t* membersInBatch) {
  slot.commits += n;
  if (slot.lastBatch == batchSeq_) return;
  slot.lastBatch = batchSeq_;
  slot.batches += batches;
  (*membersInBatch)++;
}

void Lane::Settle(uint32_t leader, std::vector<Outcome>& outcomes, uint32_t ownCommits, uint32_t ownBatches,
                  std::vector<Submission>* spent) {
  if (!outcomes.empty()) ownBatches = 1;
  Wakes wakes;
  std::unique_lock<std::mutex> lock(mutex_);
  batchSeq_++;
  uint32_t membersInBatch = 0;
  uint64_t commits = 0;  // with those written for a member that left meanwhile: nobody's to hear
  if (ownCommits > 0) {
    auto s = slots_.find(leader);
    if (s != slots_.end()) CountLocked(s->second, ownCommits, ownBatches, &membersInBatch);
    commits += ownCommits;
  }
  uint32_t last = 0;
  Slot* slot = nullptr;
  for (Outcome& o : outcomes) {
    if (o.member != last || slot == nullptr) {
      auto s = slots_.find(o.member);
      slot = s == slots_.end() ? nullptr : &s->second;
      last = o.member;
    }
    if (slot == nullptr) {  // its submitter left (a leader that exited settles nothing)
      if (o.ok) commits++;
      continue;
    }
    if (!slot->Settled(o.id)) continue;  // not in flight (an outcome given twice)
    if (o.ok) {
      CountLocked(*slot, 1, 1, &membersInBatch);
      commits++;
    }
    // it resubmits a thread hop later than the leader's own committers: its next batch waits for it
    if (o.member != leader && !slot->awaited) {
      slot->awaited = true;
      awaited_++;
    }
    slot->events.outcomes.push_back(std::move(o));
    WakeLocked(*slot, wakes);
  }
  outcomes.clear();
  if (commits > 0) {
    metrics_.batches += ownBatches;
    metrics_.commits += commits;
    metrics_.memberSlotsInBatches += static_cast<uint64_t>(membersInBatch) * ownBatches;
    if (membersInBatch > 1) metrics_.crossMemberBatches++;
  }
  if (spent != nullptr) {
    last = 0;
    slot = nullptr;
    for (Submission& s : *spent) {
      if (s.member != last || slot == nullptr) {
        auto it = slots_.find(s.member);
        slot = it == slots_.end() ? nullptr : &it->second;
        last = s.member;
      }
      if (slot == nullptr || s.block.data == nullptr || slot->returnedBytes + s.block.capacity > kMemberSpareBytes) continue;
      slot->returnedBytes += s.block.capacity;
      slot->returned.push_back(std::move(s.block));
    }
  }
  lock.unlock();
  Wake(wakes);
  if (spent != nullptr) spent->clear();  // frees what no member keeps, outside the mutex
}

void Lane::Collect(uint32_t member, Events& out) {
  out.outcomes.clear();
  out.lead = out.work = out.gathered = out.closing = false;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = slots_.find(member);
  if (it == slots_.end()) return;
  Events& ev = it->second.events;
  std::swap(out.outcomes, ev.outcomes);  // the slot keeps the cleared vector's capacity
  out.lead = ev.lead, out.work = ev.work, out.gathered = ev.gathered, out.closing = ev.closing;
  ev.lead = ev.work = ev.gathered = ev.closing = false;
  it->second.wakePending = false;
  // a leader woken for work that another wake-up's Take already served: nothing to do
  if (out.work && (member != leader_ || queue_.empty())) out.work = false;
}

void Lane::Resign(uint32_t member) {
  Wakes wakes;
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = slots_.find(member);
  if (it == slots_.end()) return;
  it->second.eligible = false;
  it->second.events.lead = false;
  if (leader_ == member) HandOverLocked(wakes);
  lock.unlock();
  Wake(wakes);
}

size_t Lane::Leave(uint32_t member, bool abandoned) {
  Wakes wakes;
  std::unique_lock<std::mutex> lock(mutex_);
  auto self = slots_.find(member);
  if (self == slots_.end()) return slots_.size();
  // its queued commits were never written, and nobody is left to tell (freed outside the mutex)
  std::vector<Submission> dropped;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->member == member) {
      dropped.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  // commits it had taken as leader and not settled: their batch died with it (header comment);
  // its own in-flight list goes with its slot (whatever happens to them, their submitter is gone)
  std::vector<std::pair<uint64_t, uint32_t>> orphans;
  for (auto& [id, slot] : slots_) {
    if (id == member) continue;
    size_t keep = slot.inFlightHead;
    for (size_t i = slot.inFlightHead; i < slot.inFlight.size(); i++) {
      if (slot.inFlight[i].taker == member) {
        orphans.emplace_back(slot.inFlight[i].id, id);
      } else {
        slot.inFlight[keep++] = slot.inFlight[i];
      }
    }
    slot.inFlight.resize(keep);
    if (slot.inFlightHead == keep) {
      slot.inFlight.clear();
      slot.inFlightHead = 0;
    }
  }
  const bool wasAwaited = self->second.awaited;
  const bool wasClosing = self->second.closing;
  slots_.erase(self);
  members_.store(slots_.size(), std::memory_order_relaxed);
  if (wasAwaited) {
    awaited_--;
    WakeGatheredLocked(wakes);  // (a leaving leader's slot is gone: it is not woken)
  }
  for (auto& [id, submitter] : orphans) {
    auto s = slots_.find(submitter);
    if (s == slots_.end()) continue;
    Outcome o;
    o.id = id;
    o.member = submitter;
    o.code = "WALNUT_CLOSED";
    o.reason = "LeaderExited";
    o.message = abandoned
        ? "the store writing this lane's commits exited (its worker ended) before this commit was acknowledged; "
          "it may or may not be in the database, as with a lost connection"
        : "the store writing this lane's commits closed before this commit was acknowledged";
    s->second.events.outcomes.push_back(std::move(o));
    WakeLocked(s->second, wakes);
    metrics_.abandonedCommits++;
  }
  if (wasClosing) WakeClosingLocked(member, wakes);  // the others' sets of closing members shrink
  if (leader_ == member) HandOverLocked(wakes);
  size_t left = slots_.size();
  lock.unlock();
  Wake(wakes);
  return left;
}

void Lane::Closing(uint32_t member) {
  Wakes wakes;
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = slots_.find(member);
  if (it == slots_.end() || it->second.closing) return;
  it->second.closing = true;
  WakeClosingLocked(member, wakes);
  lock.unlock();
  Wake(wakes);
}

std::vector<uint32_t> Lane::ClosingMembers() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<uint32_t> closing;
  for (auto& [id, slot] : slots_) {
    if (slot.closing) closing.push_back(id);
  }
  return closing;
}

bool Lane::IsLeader(uint32_t member) {
  std::lock_guard<std::mutex> lock(mutex_);
  return leader_ == member;
}

LaneMetrics Lane::Metrics() {
  std::lock_guard<std::mutex> lock(mutex_);
  LaneMetrics m = metrics_;
  m.members = static_cast<uint32_t>(slots_.size());
  m.leader = leader_;
  for (auto& [id, slot] : slots_) m.perMember.push_back({id, slot.commits, slot.batches});
  return m;
}

namespace {

using Key = std::tuple<dev_t, ino_t, std::string, uint32_t>;
std::mutex registryMutex;
std::map<Key, std::shared_ptr<Lane>>& Registry() {
  static auto* registry = new std::map<Key, std::shared_ptr<Lane>>();  // never destroyed: exit may race it
  return *registry;
}

}  // namespace

std::shared_ptr<Lane> JoinLane(dev_t dev, ino_t ino, const std::string& key, uint32_t pageSize,
                               std::shared_ptr<Waker> waker, uint32_t* member, bool* leader) {
  std::lock_guard<std::mutex> lock(registryMutex);
  std::shared_ptr<Lane>& lane = Registry()[Key{dev, ino, key, pageSize}];
  if (lane == nullptr) lane = std::make_shared<Lane>(pageSize);
  *member = lane->Join(std::move(waker), leader);
  return lane;
}

void LeaveLane(const std::shared_ptr<Lane>& lane, uint32_t member, bool abandoned) {
  std::lock_guard<std::mutex> lock(registryMutex);
  if (lane->Leave(member, abandoned) > 0) return;
  auto& registry = Registry();
  for (auto it = registry.begin(); it != registry.end(); ++it) {
    if (it->second == lane) {
      registry.erase(it);
      return;
    }
  }
}

size_t LaneCount() {
  std::lock_guard<std::mutex> lock(registryMutex);
  return Registry().size();
}

}  // namespace walnut::lane
