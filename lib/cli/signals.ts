/**
 * cli/signals.ts — the signals that stop a `walnut` command early, heard as one.
 *
 * SIGINT (Ctrl-C), SIGTERM (kill, timeout, systemd and docker stop) and SIGHUP (the terminal or
 * ssh session the command runs in went away) each end a command the same way: what it made and
 * has no use for any more (a restore's hidden temporary file and marker, an export's new FILE) is
 * removed or put back, then the process ends by that signal (or, where the command has a result
 * to keep, a follow's backup, a replication, it stops cleanly). Without a listener SIGHUP ended
 * the process by its default action and left those files behind. `nohup` does not keep a Node
 * process from it: Node resets an inherited SIG_IGN to the default at start (measured: a
 * `nohup node` sent SIGHUP exits 129), so hearing it changes nothing for a detached run but
 * what it leaves.
 */

/** The signals a command stops on. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Calls `handler` for the first of STOP_SIGNALS that arrives, once (the listeners are gone
 * before it runs, so a handler that ends the process with `process.kill(process.pid, signal)`
 * ends it by the default action). Returns the function that stops listening.
 */
export function onStopSignal(handler: (signal: NodeJS.Signals) => void): () => void {
  const listener = (signal: NodeJS.Signals): void => {
    stopListening();
    handler(signal);
  };
  const stopListening = (): void => {
    for (const s of STOP_SIGNALS) process.removeListener(s, listener);
  };
  for (const s of STOP_SIGNALS) process.on(s, listener);
  return stopListening;
}
