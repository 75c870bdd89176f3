/**
 * telemetry/prometheus.ts — a store's metrics in the Prometheus text exposition format
 * (counters as `_total`, latency summaries in seconds with quantile labels).
 */
import type { HistogramSummary } from './histogram';

export function toPrometheus(metrics: Record<string, unknown>, prefix = 'walnut'): string {
  const lines: string[] = [];
  const counter = (name: string, help: string, value: number) => {
    lines.push(`# HELP ${prefix}_${name} ${help}`, `# TYPE ${prefix}_${name} counter`, `${prefix}_${name} ${value}`);
  };
  const gauge = (name: string, help: string, value: number) => {
    lines.push(`# HELP ${prefix}_${name} ${help}`, `# TYPE ${prefix}_${name} gauge`, `${prefix}_${name} ${value}`);
  };
  const summary = (name: string, help: string, s: HistogramSummary, scale: number) => {
    lines.push(`# HELP ${prefix}_${name} ${help}`, `# TYPE ${prefix}_${name} summary`);
    for (const [q, v] of [['0.5', s.p50], ['0.9', s.p90], ['0.99', s.p99], ['0.999', s.p999]] as const) lines.push(`${prefix}_${name}{quantile="${q}"} ${v * scale}`);
    lines.push(`${prefix}_${name}_sum ${s.mean * s.count * scale}`, `${prefix}_${name}_count ${s.count}`);
  };
  const num = (k: string) => Number(metrics[k] ?? 0);
  counter('commits_total', "Commits this store's group committer wrote and acknowledged (a commit lane's leader counts every member's; a member that does not lead, none).", num('commits'));
  counter('batches_total', 'Group-commit batches written.', num('batches'));
  counter('frames_total', 'WAL frames written.', num('frames'));
  counter('bytes_total', 'Page bytes committed.', num('bytes'));
  counter('fsyncs_total', 'WAL syncs issued by commits.', num('fsyncs'));
  counter('conflicts_total', 'Transactions that lost first-committer-wins.', num('conflicts'));
  counter('failed_commits_total', 'Commits rejected after they were queued, conflicts aside: a write or sync failure, a busy timeout, a broken commit chain.', num('failedCommits'));
  counter('checkpoints_total', 'Checkpoints run.', num('checkpoints'));
  counter('busy_checkpoints_total', 'Checkpoints that reported busy.', num('busyCheckpoints'));
  gauge('wal_frames', 'Frames in the WAL now.', num('walFrames'));
  counter('checkpoint_waits_total', 'Batches that waited for an auto-checkpoint so that the WAL could restart.', num('checkpointWaits'));
  counter('handed_over_frames_total', 'WAL frames a restart read under WRITE for following exports that had not read them yet.', num('handedOverFrames'));
  const wal = metrics['wal'] as Record<string, unknown> | undefined;
  if (wal) {
    const w = (k: string) => Number(wal[k] ?? 0);
    const pinnedBy = wal['pinnedBy'] as { snapshots: number; connections: { slot: number; mark: number; pid: number | null }[] } | null;
    gauge('wal_bytes', 'Size of the -wal file in bytes.', w('bytes'));
    gauge('wal_backfilled_frames', 'WAL frames already copied into the database file.', w('backfilledFrames'));
    gauge('wal_pinned', '1 while a reader keeps auto-checkpoints from restarting the WAL.', pinnedBy === null ? 0 : 1);
    gauge('wal_pinned_seconds', 'How long a reader has kept auto-checkpoints from restarting the WAL.', w('pinnedSinceMs') / 1000);
    gauge('wal_pinned_snapshots', "This store's snapshots, transactions and exports while the WAL is pinned.", pinnedBy?.snapshots ?? 0);
    counter('wal_pinned_checkpoints_total', 'Auto-checkpoints that could not restart the WAL because a reader was in it.', w('pinnedCheckpoints'));
    lines.push(`# HELP ${prefix}_wal_pinned_reader_mark Read locks of other connections while the WAL is pinned: the frames each reader sees, by slot and pid (0: unknown).`, `# TYPE ${prefix}_wal_pinned_reader_mark gauge`);
    for (const c of pinnedBy?.connections ?? []) lines.push(`${prefix}_wal_pinned_reader_mark{slot="${c.slot}",pid="${c.pid ?? 0}"} ${c.mark}`);
  }
  const wake = (metrics['wakeReasons'] ?? {}) as Record<string, number>;
  lines.push(`# HELP ${prefix}_batch_wakes_total Why batches were cut.`, `# TYPE ${prefix}_batch_wakes_total counter`);
  for (const [reason, v] of Object.entries(wake)) lines.push(`${prefix}_batch_wakes_total{reason="${reason}"} ${v}`);
  const latency = (metrics['latency'] ?? {}) as Record<string, HistogramSummary>;
  for (const [phase, s] of Object.entries(latency)) summary(`${phase.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_seconds`, `Latency of the ${phase} phase.`, s, 1e-6);
  const batch = metrics['batchSize'] as HistogramSummary | undefined;
  if (batch) summary('batch_size', 'Commits per batch.', batch, 1);
  const lane = metrics['lane'] as Record<string, unknown> | undefined;
  if (lane) {
    const l = (k: string) => Number(lane[k] ?? 0);
    gauge('lane_member', "This store's member id in its commit lane.", l('member'));
    gauge('lane_leader', "1 while this store writes its commit lane's batches (commit/lane.ts).", lane['leader'] === true ? 1 : 0);
    gauge('lane_members', "Stores of this process in the database file's commit lane.", l('members'));
    counter('lane_batches_total', "The lane's batches (every member's commits).", l('batches'));
    counter('lane_commits_total', 'Commits in the lane\'s batches.', l('commits'));
    counter('lane_cross_member_batches_total', 'Lane batches with commits of two or more stores.', l('crossMemberBatches'));
    gauge('lane_members_per_batch', 'Stores with commits in a lane batch, on average.', l('membersPerBatch'));
    counter('lane_leader_changes_total', 'Times the lead of the lane passed to another store.', l('leaderChanges'));
    counter('lane_abandoned_commits_total', 'Commits failed because their leader\'s worker ended mid-batch.', l('abandonedCommits'));
    counter('lane_publishes_total', 'Members\' turns of commits published into the lane.', l('publishes'));
    counter('lane_wakeups_total', 'Threads the lane woke (one per member per batch at most).', l('wakeups'));
    counter('lane_leader_wakeups_total', 'Of the lane\'s wake-ups, those of its leader.', l('leaderWakeups'));
    const perMember = (lane['perMember'] ?? []) as Array<{ member: number; commits: number; batches: number }>;
    lines.push(`# HELP ${prefix}_lane_member_commits_total Commits of each store (member id) in the lane's batches.`, `# TYPE ${prefix}_lane_member_commits_total counter`);
    for (const m of perMember) lines.push(`${prefix}_lane_member_commits_total{member="${m.member}"} ${m.commits}`);
    lines.push(`# HELP ${prefix}_lane_member_batches_total Lane batches with commits of each store (member id).`, `# TYPE ${prefix}_lane_member_batches_total counter`);
    for (const m of perMember) lines.push(`${prefix}_lane_member_batches_total{member="${m.member}"} ${m.batches}`);
  }
  const fec = metrics['fec'] as Record<string, unknown> | undefined;
  if (fec) {
    const f = (k: string) => Number(fec[k] ?? 0);
    counter('fec_groups_total', 'FEC sidecar groups written.', f('groups'));
    counter('fec_frames_total', 'WAL frames protected by sidecar groups.', f('frames'));
    counter('fec_bytes_total', 'Sidecar bytes written.', f('bytes'));
    counter('fec_write_errors_total', 'Sidecar appends that failed (their frames are unprotected).', f('writeErrors'));
    counter('fec_backpressure_waits_total', 'Batches that waited for room in the sidecar queue.', f('backpressureWaits'));
    gauge('fec_queued_bytes', 'Page bytes waiting to be encoded into the sidecar.', f('queuedBytes'));
    const rec = (fec['recovery'] ?? {}) as { repairedFrames?: number; repairedGroups?: number; restoredHeaders?: number; fallbacks?: Record<string, number> };
    counter('fec_repaired_frames_total', 'WAL frames repaired from the sidecar in recovery.', rec.repairedFrames ?? 0);
    counter('fec_repaired_groups_total', 'Sidecar groups used for repairs in recovery.', rec.repairedGroups ?? 0);
    counter('fec_restored_headers_total', 'Damaged WAL headers restored from the sidecar in recovery.', rec.restoredHeaders ?? 0);
    lines.push(`# HELP ${prefix}_fec_fallbacks_total Recoveries that stopped at damage they could not repair, by reason.`, `# TYPE ${prefix}_fec_fallbacks_total counter`);
    for (const [reason, v] of Object.entries(rec.fallbacks ?? {})) lines.push(`${prefix}_fec_fallbacks_total{reason="${reason}"} ${v}`);
  }
  return lines.join('\n') + '\n';
}
