// store.metrics({ format: 'prometheus' }) and a commit lane: README ("Worker threads") promises
// `walnut_lane_*` in the Prometheus text for what metrics().lane holds: this store's member id,
// the stores per batch, leader changes, and per member its commits and batches. The text had
// only the leader flag, the members and six lane-wide counters: a scraper could not see which
// member a store is, how the lane's commits split between its stores, or that the lead moved.
// Now each field of metrics().lane is in the text (per member as labelled series), with the
// values metrics() gives.
import * as path from 'node:path';
import { expect, it } from 'vitest';

import { open } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';

/** The value of the one sample `series` (name and labels as written) in `text`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

it('every field of metrics().lane is in the Prometheus text, per member labelled, the leader\'s and a member\'s own', async () => {
  const file = path.join(tmpDir(), 'lane-prom.db');
  const leader = await open(file);
  const member = await open(file);
  const third = await open(file);
  try {
    const page = (v: number) => Buffer.alloc(4096, v);
    for (let i = 0; i < 5; i++) await Promise.all([leader.commit([{ pgno: 2, data: page(i) }]), member.commit([{ pgno: 3, data: page(i) }]), member.commit([{ pgno: 4, data: page(i) }])]);
    await third.close(); // a member leaves: the lead does not move (leaderChanges 0 still)
    for (const store of [leader, member]) {
      const lane = store.metrics().lane!;
      const text = store.metrics({ format: 'prometheus' }) as string;
      expect(sample(text, 'walnut_lane_member')).toBe(lane.member);
      expect(sample(text, 'walnut_lane_leader')).toBe(lane.leader ? 1 : 0);
      expect(sample(text, 'walnut_lane_members')).toBe(lane.members);
      expect(sample(text, 'walnut_lane_batches_total')).toBe(lane.batches);
      expect(sample(text, 'walnut_lane_commits_total')).toBe(lane.commits);
      expect(sample(text, 'walnut_lane_cross_member_batches_total')).toBe(lane.crossMemberBatches);
      expect(sample(text, 'walnut_lane_members_per_batch')).toBeCloseTo(lane.membersPerBatch, 9);
      expect(sample(text, 'walnut_lane_leader_changes_total')).toBe(lane.leaderChanges);
      expect(sample(text, 'walnut_lane_abandoned_commits_total')).toBe(lane.abandonedCommits);
      expect(sample(text, 'walnut_lane_publishes_total')).toBe(lane.publishes);
      expect(sample(text, 'walnut_lane_wakeups_total')).toBe(lane.wakeups);
      expect(sample(text, 'walnut_lane_leader_wakeups_total')).toBe(lane.leaderWakeups);
      expect(lane.perMember.length).toBe(2);
      for (const m of lane.perMember) {
        expect(sample(text, `walnut_lane_member_commits_total{member="${m.member}"}`)).toBe(m.commits);
        expect(sample(text, `walnut_lane_member_batches_total{member="${m.member}"}`)).toBe(m.batches);
      }
    }
    expect(leader.metrics().lane!.perMember.map((m) => m.commits)).toEqual([5, 10]);
  } finally {
    await member.close();
    await leader.close();
  }
});
