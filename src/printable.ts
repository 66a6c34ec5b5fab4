/**
 * Names from files (layers, blobs, paths) may hold control characters, terminal escape
 * sequences or invisible Unicode formatting that would rewrite what a terminal shows. Every
 * human-readable output passes them through {@linkcode printable}.
 *
 * @module
 */

/**
 * C0 controls, DEL, C1 controls (0x9b is a one-byte CSI), and the invisible formatting
 * characters that reorder or hide text: zero-width spaces and joiners, bidirectional marks,
 * embeddings, overrides and isolates, line and paragraph separators, the byte-order mark.
 */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

const SHORT: Record<string, string> = { "\t": "\\t", "\n": "\\n", "\r": "\\r" };

/**
 * `text` with every unsafe character written as an escape (`\n`, `\t`, `\r`, else `\u001b`
 * style, which JSON reads too), so it shows as one line of visible characters. With
 * `keepLines`, newlines and carriage returns stay (for whole blocks of output whose line
 * structure is ours, such as a progress bar redrawn with `\r`).
 *
 * @example
 * ```ts
 * import { printable } from "./printable.ts";
 * console.log(printable("conv\u001b[2J1")); // conv\u001b[2J1
 * ```
 */
export function printable(text: string, options: { keepLines?: boolean } = {}): string {
  return text.replace(UNSAFE, (char) => {
    if (options.keepLines && (char === "\n" || char === "\r")) return char;
    return SHORT[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
}

/** `word` after its indefinite article, by its first letters: `an Input`, `a Pooling`. */
export function withArticle(word: string): string {
  return /^(?:[aeio]|u(?![nis]))/i.test(word) ? `an ${word}` : `a ${word}`;
}
