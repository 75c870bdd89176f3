import type { ChildProcess } from 'node:child_process';
export function readLines(child: ChildProcess, onLine: (line: string) => void): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
export function killAfterFirstAck(child: ChildProcess, delayMs: number, firstAckMs?: number): { line(line: string): void; cancel(): void };
