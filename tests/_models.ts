/**
 * Where the shared real models live, for tests. In CI (`CI=true`) a missing folder fails loudly;
 * elsewhere the model tests are skipped with a printed reason.
 *
 * @module
 */

/** URL of `../shared/models/` beside the repository. */
export const modelsDir: URL = new URL("../../shared/models/", import.meta.url);

function listModels(): string[] {
  try {
    return [...Deno.readDirSync(modelsDir)]
      .filter((entry) => entry.isDirectory)
      .map((entry) => entry.name)
      .sort();
  } catch (error) {
    if (Deno.env.get("CI") === "true") {
      throw new Error(
        `CI=true but the shared models are missing at ${modelsDir.pathname}: ${error}`,
      );
    }
    console.warn(`skipping real-model tests: ${modelsDir.pathname} is missing`);
    return [];
  }
}

/** Names of the model folders (empty, with a printed reason, when the folder is missing outside CI). */
export const modelNames: string[] = listModels();

/** Path of a file of model `name`, e.g. `modelFile("lenet", "deploy.prototxt")`. */
export function modelFile(name: string, file: string): string {
  return new URL(`${name}/${file}`, modelsDir).pathname;
}
