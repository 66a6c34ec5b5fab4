// The engine module's two builds (src/wasm/engine_build.ts), for tests that must hold in both.

import {
  type EngineBuild,
  relaxedSimdSupported,
  useEngineBuild,
} from "../src/wasm/engine_build.ts";

/** Both builds: where the runtime lacks relaxed SIMD, "relaxed" runs the portable one. */
export const ENGINE_BUILDS: readonly EngineBuild[] = ["relaxed", "portable"];

/** Runs `body` with the engine's `build` selected, then goes back to the automatic choice. */
export async function withEngineBuild<T>(build: EngineBuild, body: () => Promise<T>): Promise<T> {
  if (build === "relaxed" && !relaxedSimdSupported()) {
    console.log(
      "this runtime has no relaxed SIMD: the relaxed build falls back to the portable one",
    );
  }
  useEngineBuild(build);
  try {
    return await body();
  } finally {
    useEngineBuild("auto");
  }
}
