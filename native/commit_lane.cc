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

namespace {
constexpr size_t kSpareBytes = 8u << 20;  // spare blocks kept per lane, at most
}  // namespace

Block Lane::NewBlock(size_t n) {
  {
    std::lock_guard<std::mutex> lock(spareMutex_);
    // newest first; a spare more than twice the size would waste what another commit could use
    for (size_t i = spare_.size(); i-- > 0;) {
      if (spare_[i].capacity < n || spare_[i].capacity / 2 > n) continue;
      Block b = std::move(spare_[i]);
      spare_[i] = std::move(spare_.back());
      spare_.pop_back();
      spareBytes_ -= b.capacity;
      b.size = n;
      return b;
    }
  }
  return Block(n);
}

void Lane::Recycle(std::vector<Submission>&& taken) {
  std::lock_guard<std::mutex> lock(spareMutex_);
  for (Submission& s : taken) {
    if (s.block.data == nullptr || spareBytes_ + s.block.capacity > kSpareBytes) continue;
    spareBytes_ += s.block.capacity;
    spare_.push_back(std::move(s.block));
  }
}

void Lane::WakeLocked(Slot& slot, Wakes& wakes) {
  if (slot.wakePending || slot.waker == nullptr) return;
  slot.wakePending = true;
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

uint64_t Lane::Submit(uint32_t member, Submission&& s) {
  Wakes wakes;
  std::unique_lock<std::mutex> lock(mutex_);
  s.id = nextId_++;
  s.member = member;
  uint64_t id = s.id;
  queue_.push_back(std::move(s));
  if (leader_ == 0) {
    // nobody eligible leads: the submitter does (it is submitting, so it is not leaving)
    auto it = slots_.find(member);
    if (it != slots_.end()) {
      leader_ = member;
      it->second.events.lead = true;
      metrics_.leaderChanges++;
    }
  }
  // a busy leader takes the queue by itself (at its next Gather or Rest)
  auto it = slots_.find(leader_);
  if (it != slots_.end() && (!leaderBusy_ || leader_ == member)) {
    it->second.events.work = true;
    WakeLocked(it->second, wakes);
  }
  lock.unlock();
  Wake(wakes);
  return id;
}

void Lane::Submitted(uint32_t member) {
  Wakes wakes;
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = slots_.find(member);
  if (it != slots_.end()) UnawaitLocked(it->second, wakes);
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
  taken.reserve(queue_.size());
  for (Submission& s : queue_) {
    inFlight_.emplace(s.id, InFlight{s.member, member});
    taken.push_back(std::move(s));
  }
  queue_.clear();
  return taken;
}

void Lane::Settle(uint32_t leader, std::vector<Outcome>&& outcomes, uint32_t ownCommits, uint32_t ownBatches) {
  if (!outcomes.empty()) ownBatches = 1;
  Wakes wakes;
  std::unique_lock<std::mutex> lock(mutex_);
  std::map<uint32_t, uint64_t> perMember;  // commits of each member in this batch
  if (ownCommits > 0) perMember[leader] += ownCommits;
  uint64_t departed = 0;  // written for a member that left meanwhile: the lane's commits, nobody's to hear
  for (Outcome& o : outcomes) {
    auto f = inFlight_.find(o.id);
    if (f == inFlight_.end()) {  // its submitter left (a leader that exited settles nothing)
      if (o.ok) departed++;
      continue;
    }
    uint32_t submitter = f->second.submitter;
    inFlight_.erase(f);
    auto s = slots_.find(submitter);
    if (s == slots_.end()) continue;
    if (o.ok) perMember[submitter]++;
    // it resubmits a thread hop later than the leader's own committers: its next batch waits for it
    if (submitter != leader && !s->second.awaited) {
      s->second.awaited = true;
      awaited_++;
    }
    s->second.events.outcomes.push_back(std::move(o));
    WakeLocked(s->second, wakes);
  }
  uint64_t commits = departed;
  for (auto& [member, n] : perMember) {
    commits += n;
    auto s = slots_.find(member);
    if (s == slots_.end()) continue;
    s->second.commits += n;
    s->second.batches += ownBatches;
  }
  if (commits > 0) {
    metrics_.batches += ownBatches;
    metrics_.commits += commits;
    metrics_.memberSlotsInBatches += perMember.size() * ownBatches;
    if (perMember.size() > 1) metrics_.crossMemberBatches++;
  }
  lock.unlock();
  Wake(wakes);
}

Events Lane::Collect(uint32_t member) {
  std::lock_guard<std::mutex> lock(mutex_);
  Events out;
  auto it = slots_.find(member);
  if (it == slots_.end()) return out;
  std::swap(out, it->second.events);
  it->second.wakePending = false;
  // a leader woken for work that another wake-up's Take already served: nothing to do
  if (out.work && (member != leader_ || queue_.empty())) out.work = false;
  return out;
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
  // its queued commits were never written, and nobody is left to tell
  for (auto it = queue_.begin(); it != queue_.end();) {
    it = it->member == member ? queue_.erase(it) : it + 1;
  }
  // commits it had taken as leader and not settled: their batch died with it (header comment)
  std::vector<std::pair<uint64_t, uint32_t>> orphans;
  for (auto it = inFlight_.begin(); it != inFlight_.end();) {
    if (it->second.submitter == member) {
      it = inFlight_.erase(it);  // whatever happens to it, its submitter is gone
    } else if (it->second.taker == member) {
      orphans.emplace_back(it->first, it->second.submitter);
      it = inFlight_.erase(it);
    } else {
      ++it;
    }
  }
  const bool wasAwaited = self->second.awaited;
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
  if (leader_ == member) HandOverLocked(wakes);
  size_t left = slots_.size();
  lock.unlock();
  Wake(wakes);
  return left;
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
