/**
 * A one-line progress bar for a terminal, drawn only once work has taken more than a moment.
 *
 * @module
 */

import { printable } from "../printable.ts";

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

/** A status line for long steps: redrawn in place on a terminal, a line every 10 s elsewhere. */
export interface StatusLine {
  /** Shows `text` (e.g. `calibrating: 37/100 samples, conv2, about 3 s left`). */
  show: (text: string) => void;
  /** Clears the line if it was drawn. */
  done: () => void;
}

const LOG_INTERVAL_MS = 10_000;
const REDRAW_MS = 100;

/** A {@linkcode StatusLine} on standard error (`write`); `terminal`: whether it is one. */
export function statusLine(write: (text: string) => void, terminal: boolean): StatusLine {
  const started = performance.now();
  let shownAt = terminal ? started + DELAY_MS - REDRAW_MS : started;
  let width = 0;
  return {
    show(shown) {
      const text = printable(shown); // one line, whatever the layer names in it hold
      const now = performance.now();
      if (now - shownAt < (terminal ? REDRAW_MS : LOG_INTERVAL_MS)) return;
      shownAt = now;
      if (!terminal) {
        write(`${text}\n`);
        return;
      }
      write(`\r${text.padEnd(width)}`);
      width = text.length;
    },
    done() {
      if (width > 0) write(`\r${" ".repeat(width)}\r`);
      width = 0;
    },
  };
}

/** `seconds` as a short duration: `42 s`, `3 min 5 s`. */
export function durationText(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  return whole < 60 ? `${whole} s` : `${Math.floor(whole / 60)} min ${whole % 60} s`;
}
