// Waiting on a condition instead of sleeping for it: a sleep long enough on a quiet machine is
// too short on a loaded one (2 cores at load 15 ran tests 8x slower), and every test that slept
// in place of a condition failed there now and then.

/** The deadline of a wait: for a hang only, far past what a loaded machine needs. */
export const WAIT_MS = 120_000;

/**
 * Waits until `done()`, polling every 10 ms; past `ms` it throws, with `state()` in the message,
 * so that a stall says where it stalled (a silent return let a stalled wait run into the test's
 * timeout instead).
 */
export async function until(done: () => boolean, ms = WAIT_MS, state: () => unknown = () => ''): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`still waiting after ${ms} ms: ${done.toString()} ${JSON.stringify(state())}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
