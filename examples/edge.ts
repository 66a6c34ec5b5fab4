/**
 * caffe-quant as an edge function (Deno Deploy, `deno serve`, any runtime with `Request` and
 * `Response`): POST a `multipart/form-data` body with the fields `model` (prototxt), `weights`
 * (caffemodel), `record` (record file) and optionally `prefix`; get back a ZIP of the five
 * outputs. A bad input answers 400 with `{ "error": { "code", "message", "file", "line", … } }`.
 * Everything happens in memory with the in-memory API; nothing is stored.
 *
 * ```sh
 * npx deno serve --port 8000 examples/edge.ts
 * curl -F model=@deploy.prototxt -F weights=@weights.caffemodel -F record=@record.txt \
 *   -F prefix=lenet -o lenet.zip http://localhost:8000/
 * ```
 *
 * @module
 */

import { convert, ConvertError, outputNames, zipStore } from "../core.ts";

/** Handles one request: converts the posted model and answers with a ZIP of the outputs. */
export async function handler(request: Request): Promise<Response> {
  if (request.method !== "POST") {
    return errorResponse(
      new ConvertError("USAGE", "POST multipart/form-data with the fields model, weights, record"),
      405,
    );
  }
  try {
    const form = await readForm(request);
    const [model, weights, record] = await Promise.all([
      formText(form, "model"),
      formBytes(form, "weights"),
      formText(form, "record"),
    ]);
    const prefix = formPrefix(form);
    const { files } = await convert({
      model: model.content,
      weights: weights.content,
      record: record.content,
      files: { model: model.name, weights: weights.name, record: record.name },
    });
    const { names } = outputNames(prefix);
    const archive = zipStore(
      (Object.keys(names) as (keyof typeof names)[]).map((key) => ({
        name: names[key],
        content: files[key],
      })),
    );
    return new Response(archive as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": "application/zip",
        "content-disposition": contentDisposition(`${prefix || "caffe-quant"}.zip`),
      },
    });
  } catch (error) {
    if (error instanceof ConvertError) return errorResponse(error, 400);
    throw error;
  }
}

/** `deno serve` entry: `export default { fetch }`. */
export default { fetch: handler };

function errorResponse(error: ConvertError, status: number): Response {
  return Response.json({ error: error.toJSON() }, { status });
}

async function readForm(request: Request): Promise<FormData> {
  try {
    return await request.formData();
  } catch {
    throw new ConvertError("USAGE", "the body must be multipart/form-data");
  }
}

/** A form field's content with the name to show in errors (the uploaded file name, if any). */
interface Field<T> {
  name: string;
  content: T;
}

function formField(form: FormData, field: string): File | string {
  const value = form.get(field);
  if (value === null) {
    throw new ConvertError("USAGE", `the form field "${field}" is missing`);
  }
  return value;
}

async function formText(form: FormData, field: string): Promise<Field<string>> {
  const value = formField(form, field);
  return typeof value === "string"
    ? { name: field, content: value }
    : { name: value.name || field, content: await value.text() };
}

async function formBytes(form: FormData, field: string): Promise<Field<Uint8Array>> {
  const value = formField(form, field);
  if (typeof value === "string") {
    throw new ConvertError("USAGE", `the form field "${field}" must be a file upload`);
  }
  return { name: value.name || field, content: new Uint8Array(await value.arrayBuffer()) };
}

/**
 * `attachment` with `filename`: a quoted name for every client when it is plain ASCII; else
 * (RFC 6266 §4.3, RFC 8187) an ASCII fallback with `_` for each other character, followed by
 * `filename*=UTF-8''<percent-encoded UTF-8>`, which clients that know it prefer.
 */
function contentDisposition(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/gu, "_");
  if (fallback === name) return `attachment; filename="${name}"`;
  // RFC 8187 attr-char keeps only ALPHA DIGIT ! # $ & + - . ^ _ ` | ~ unencoded.
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/** The `prefix` field: letters, digits, `.`, `_`, `+`, `-` (no path); `""` when absent. */
function formPrefix(form: FormData): string {
  const prefix = form.get("prefix") ?? "";
  if (typeof prefix !== "string" || !/^[\p{L}\p{N}._+-]*$/u.test(prefix) || /^\.+$/.test(prefix)) {
    throw new ConvertError("USAGE", "the prefix may hold letters, digits and . _ + - only");
  }
  return prefix;
}
