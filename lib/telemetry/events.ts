/**
 * telemetry/events.ts — walnut's events on node:diagnostics_channel:
 *   walnut:commit      one per batch: { commits, frames, bytes, ioMicros, lastFrame }
 *   walnut:checkpoint  { mode, busy, walFrames, checkpointedFrames, auto, micros, copy: null when
 *                      nothing was copied, else { pages, writes, reads, bytesRead, walSynced } }
 *   walnut:recovery    { path, frames, commits, micros }
 *   walnut:fault       { stage: 'write' | 'sync' | 'checkpoint' | 'pipeline before write' |
 *                      'pipeline after write' | 'observer', code, errno?, path?, message?, commits? }
 *   walnut:wal         a reader keeps the WAL from restarting (commit/auto-checkpoint.ts):
 *                      { state: 'pinned', frames, bytes, pinnedBy, pinnedMs } when it starts and
 *                      each time the WAL has doubled since, then once { state: 'released',
 *                      frames, bytes, maxFrames, pinnedMs }: a few per pin, never one per commit
 * Messages are built only when a channel has subscribers (no cost when nobody listens). Every
 * event also goes into a bounded ring (the last 256) that stores expose for diagnostics.
 */
import diagnostics from 'node:diagnostics_channel';

export type EventName = 'commit' | 'checkpoint' | 'recovery' | 'fault' | 'fec' | 'wal';

const channels = {
  commit: diagnostics.channel('walnut:commit'),
  checkpoint: diagnostics.channel('walnut:checkpoint'),
  recovery: diagnostics.channel('walnut:recovery'),
  fault: diagnostics.channel('walnut:fault'),
  fec: diagnostics.channel('walnut:fec'),
  wal: diagnostics.channel('walnut:wal'),
} as const;

export interface RecordedEvent {
  name: EventName;
  at: number; // ms since the epoch
  data: Record<string, unknown>;
}

const RING = 256;

export class EventRing {
  readonly #ring: RecordedEvent[] = [];

  /** Publishes (when someone listens) and records the event; `make` builds the message lazily. */
  emit(name: EventName, make: () => Record<string, unknown>, record = true): void {
    const channel = channels[name];
    if (!channel.hasSubscribers && !record) return;
    const data = make();
    if (channel.hasSubscribers) channel.publish(data);
    if (record) {
      this.#ring.push({ name, at: Date.now(), data });
      if (this.#ring.length > RING) this.#ring.shift();
    }
  }

  recent(): RecordedEvent[] {
    return this.#ring.slice();
  }
}

/** Events of code paths that have no store (recovery in a tool): publish only. */
export function publish(name: EventName, make: () => Record<string, unknown>): void {
  const channel = channels[name];
  if (channel.hasSubscribers) channel.publish(make());
}
