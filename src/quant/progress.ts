/**
 * A conversion's `onProgress` callback made safe to call from anywhere: a throw passes to the
 * caller as usual, and a promise it returns is kept, its rejection never left unhandled, so that
 * the conversion can wait for all of them (and fail with the first rejection) before it commits
 * or returns anything.
 *
 * @module
 */

/** Progress of a stage: `done` of `total` units (layers, or 1 for a single step). */
export type ProgressCallback = (stage: string, done: number, total: number) => void;

/** A guarded {@linkcode ProgressCallback}. */
export interface GuardedProgress {
  /** Calls the callback (a throw passes; a returned promise is kept). */
  report: ProgressCallback;
  /** Waits for every promise the callback returned; rejects with the first rejection. */
  settled(): Promise<void>;
}

/** Guards `onProgress` (absent: reports nothing). */
export function guardProgress(onProgress: ProgressCallback | undefined): GuardedProgress {
  const pending: Promise<unknown>[] = [];
  return {
    report(stage, done, total) {
      const returned: unknown = onProgress?.(stage, done, total);
      if (returned instanceof Promise) {
        // Handled at once, so that a rejection is never unhandled; settled() reports it.
        returned.catch(() => {});
        pending.push(returned);
      }
    },
    async settled() {
      await Promise.all(pending);
    },
  };
}
