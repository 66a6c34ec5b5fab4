/**
 * Which of the engine module's two builds runs (scripts/build_wasm.ts compiles assembly/engine.ts
 * twice). The relaxed-SIMD build multiplies and adds with relaxed SIMD's `f32x4.relaxed_madd`:
 * one rounding where the CPU has FMA, and faster matrix products. It runs where the runtime
 * validates relaxed SIMD; elsewhere the portable build (SIMD 128 only, a multiply then an add)
 * runs. The two can differ in the last bits of float results, and so can the relaxed build on
 * CPUs with and without FMA; within one build and machine, results are reproducible.
 *
 * @module
 */

/** A build of the engine module: `"relaxed"` (relaxed SIMD) or `"portable"` (SIMD 128 only). */
export type EngineBuild = "relaxed" | "portable";

/**
 * The smallest module using relaxed SIMD: one function (v128, v128, v128) -> v128 returning
 * `f32x4.relaxed_madd` of its parameters (opcode 0xfd 0x105).
 */
const RELAXED_PROBE = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00, // magic, version 1
  0x01,
  0x08,
  0x01,
  0x60,
  0x03,
  0x7b,
  0x7b,
  0x7b,
  0x01,
  0x7b, // type: (v128 x3) -> v128
  0x03,
  0x02,
  0x01,
  0x00, // function 0 has type 0
  0x0a,
  0x0d,
  0x01,
  0x0b,
  0x00, // code: one body of 11 bytes, no locals
  0x20,
  0x00,
  0x20,
  0x01,
  0x20,
  0x02, // local.get 0, 1, 2
  0xfd,
  0x85,
  0x02,
  0x0b, // f32x4.relaxed_madd, end
]);

let relaxedSupported: boolean | undefined;

/** Whether this runtime's WebAssembly has relaxed SIMD (validated once). */
export function relaxedSimdSupported(): boolean {
  relaxedSupported ??= WebAssembly.validate(RELAXED_PROBE);
  return relaxedSupported;
}

let requested: EngineBuild | "auto" = "auto";

/**
 * Chooses the engine build for the runs that start afterwards (and for the workers of engine
 * pools opened afterwards): `"portable"` forces the portable build (e.g. for results that do not
 * depend on the CPU having FMA); `"relaxed"` and `"auto"` (the default) take the relaxed-SIMD
 * build where the runtime has relaxed SIMD, else the portable one.
 */
export function useEngineBuild(build: EngineBuild | "auto"): void {
  requested = build;
}

/** The build the engine's kernels come from now (see {@linkcode useEngineBuild}). */
export function engineBuild(): EngineBuild {
  return requested !== "portable" && relaxedSimdSupported() ? "relaxed" : "portable";
}

/** The base64-encoded module of `build` (its generated file, imported on first use). */
export async function engineModuleBase64(build: EngineBuild): Promise<string> {
  const generated = build === "relaxed"
    ? await import("./engine_relaxed.generated.ts")
    : await import("./engine.generated.ts");
  return generated.wasmBase64;
}
