/**
 * longest-timer.ts — the longest delay Node.js keeps for setTimeout/setInterval: 2^31 - 1 ms
 * (about 24.8 days). Past it Node does not refuse the timer: it prints a TimeoutOverflowWarning
 * and fires after 1 ms, so a "wait almost for ever" becomes "at once" (a close() that rolled back a
 * running transaction, a report printed 600 times a second). Every module that arms a timer from a
 * caller's number either refuses a longer one (WALNUT_INVALID_ARGUMENT) or clamps to this.
 */

/** setTimeout's largest delay in ms. */
export const LONGEST_TIMER_MS = 2 ** 31 - 1;
