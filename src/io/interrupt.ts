/**
 * Cleaning up on Ctrl-C and SIGTERM while files are being written: each write registers a
 * synchronous undo for as long as it runs; on SIGINT or SIGTERM every registered undo runs and,
 * unless the program listens to that signal itself, the process ends as a signal would have
 * ended it (exit code 130 or 143). Outside writes no signal is listened to.
 *
 * @module
 */

import process from "node:process";

type Signal = "SIGINT" | "SIGTERM";

const EXIT_CODES: Record<Signal, number> = { SIGINT: 130, SIGTERM: 143 };

const undos = new Set<() => void>();

function onSignal(signal: Signal): void {
  for (const undo of undos) {
    try {
      undo();
    } catch {
      // Best effort: the others still run.
    }
  }
  undos.clear();
  stopListening();
  if (process.listenerCount(signal) === 0) process.exit(EXIT_CODES[signal]);
}

const listeners: Record<Signal, () => void> = {
  SIGINT: () => onSignal("SIGINT"),
  SIGTERM: () => onSignal("SIGTERM"),
};

function stopListening(): void {
  for (const signal of Object.keys(listeners) as Signal[]) {
    process.off(signal, listeners[signal]);
  }
}

/**
 * Runs `undo` (synchronous, never throwing) if SIGINT or SIGTERM comes before the returned
 * function is called.
 */
export function undoOnInterrupt(undo: () => void): () => void {
  if (undos.size === 0) {
    for (const signal of Object.keys(listeners) as Signal[]) {
      try {
        process.on(signal, listeners[signal]);
      } catch {
        // A runtime without this signal (SIGTERM on Windows).
      }
    }
  }
  undos.add(undo);
  return () => {
    undos.delete(undo);
    if (undos.size === 0) stopListening();
  };
}
