/**
 * A one-line progress bar for a terminal, drawn only once work has taken more than a moment.
 *
 * @module
 */

/** A progress bar: feed it `update`, call `done` at the end. */
export interface ProgressBar {
  /** Records progress of `stage`: `done` of `total` units. */
  update: (stage: string, done: number, total: number) => void;
  /** Clears the bar if it was drawn. */
  done: () => void;
}

const WIDTH = 30;
const DELAY_MS = 300;

/** A progress bar writing to `write` (standard error), shown after 300 ms of work. */
export function progressBar(write: (text: string) => void): ProgressBar {
  const started = performance.now();
  let drawn = false;
  return {
    update(stage, done, total) {
      if (performance.now() - started < DELAY_MS) return;
      const fraction = total > 0 ? Math.min(1, done / total) : 1;
      const filled = Math.round(fraction * WIDTH);
      write(`\r[${"#".repeat(filled)}${" ".repeat(WIDTH - filled)}] ${stage.padEnd(12)}`);
      drawn = true;
    },
    done() {
      if (drawn) write(`\r${" ".repeat(WIDTH + 16)}\r`);
    },
  };
}
