// commit_lane_binding.h — the JS face of commit_lane.h: class CommitLane (one member of a
// process-wide lane) and commitLaneCount(). lib/commit/lane.ts is its only user.
#pragma once

#include <napi.h>

namespace walnut::lane {

void Register(Napi::Env env, Napi::Object exports);

}  // namespace walnut::lane
