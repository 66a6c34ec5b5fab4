/**
 * A conversion's `onProgress` callback made safe to call from anywhere: a throw passes to the
 * caller as usual, and a promise it returns is kept, its rejection never left unhandled, so that
 * the conversion can wait for all of them (and fail with the first rejection) before it commits
 * or returns anything.
 *
 * @module
 */

/**
 * Progress of a stage: `done` of `total` units. The stages come in order: `load`, `record`,
 * `fuse`, `quantize`, `info`, then `serialize` (in memory) or `write` (files). `quantize` reports
 * each quantized layer (1 … N of N; 1 of 1 when there is none); every other stage reports once,
 * 1 of 1, when it is done.
 */
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
