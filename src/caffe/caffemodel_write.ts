/**
 * The writer of Caffe's binary weights file (`.caffemodel`) from a {@linkcode Net}: it sizes
 * everything first and then fills one preallocated buffer ({@linkcode writeCaffemodel}) or streams
 * bounded pieces ({@linkcode caffemodelPieces}); deferred blobs are produced straight into the
 * output.
 *
 * @module
 */

import { caffeType } from "../proto/schema.ts";
import { encodeMessage } from "../proto/binary_message.ts";
import type { TypeInfo } from "../proto/field_info.ts";
import { TextMessage } from "../proto/tree.ts";
import {
  int32sSize,
  lengthFieldSize,
  signedVarintSize,
  uint64sSize,
  WireType,
  WireWriter,
} from "../proto/wire.ts";
import {
  BLOB_DATA,
  BLOB_INT32_DATA,
  BLOB_INT8_DATA,
  BLOB_SHAPE,
  BLOB_UINT64_DATA,
  LAYER_BLOBS,
  NET_LAYER,
  SHAPE_DIM,
} from "./caffemodel_fields.ts";
import {
  blobBytes,
  blobElementType,
  blobLength,
  type DeferredBlob,
  type ElementType,
} from "./deferred_blob.ts";
import type { Blob, Layer, Net } from "./net.ts";

/** Bytes per element of the fixed-width element types. */
const ELEMENT_SIZE = { float32: 4, int8: 1 } as const;

/** A blob with the sizes it takes on the wire. */
interface BlobPlan {
  blob: Blob;
  /** The type of its elements. */
  elementType: ElementType;
  /** The number of elements. */
  length: number;
  /** Bytes of the packed `dim` values. */
  dimsSize: number;
  /** Bytes of the `BlobShape` message. */
  shapeSize: number;
  /** Bytes of the data payload (packed values or raw bytes). */
  dataSize: number;
  /** Bytes of the `BlobProto` message. */
  size: number;
}

/** A layer with its encoded parameters and the sizes it takes on the wire. */
interface LayerWirePlan {
  params: Uint8Array;
  unknownBytes: Uint8Array;
  blobs: BlobPlan[];
  /** Bytes of the `LayerParameter` message. */
  size: number;
}

/** A whole net sized for the wire. */
interface NetPlan {
  header: Uint8Array;
  layers: LayerWirePlan[];
  /** Bytes of the file. */
  size: number;
}

/**
 * Writes `net` as a V2 binary caffemodel: the header fields, then one `layer` per layer holding
 * its parameters (without `phase`), its raw unknown fields and its blobs (with `shape`). The
 * output is one buffer of precomputed size; blob data goes into it with one copy each, and
 * deferred blobs are produced straight into it.
 *
 * @example
 * ```ts ignore
 * await Deno.writeFile("out.caffemodel", writeCaffemodel(net));
 * ```
 */
export function writeCaffemodel(net: Net): Uint8Array {
  const plan = planNet(net);
  const writer = new WireWriter(plan.size);
  for (const _ of netPieces(plan, writer, undefined)) {
    throw new Error("caffemodel writer: the preallocated buffer was too small");
  }
  return writer.finish();
}

/** Pieces of a caffemodel that may be this long or longer are handed out as they are. */
const DIRECT_PIECE_BYTES = 1 << 16;

/**
 * Bytes of each of the two buffers a streamed caffemodel is written through by default: 1 MiB
 * writes cost the file systems here no more than 4 MiB ones (128 MB in 1 and 4 MiB writes: 37 and
 * 34 ms in Deno, 38 and 34-39 in Node), and a conversion makes a pair for each of its two
 * caffemodels, the first often not yet collected when the second is made (ResNet-50's peak
 * memory in Deno: 167-179 MB with 4 MiB, 154-161 with 1 MiB).
 */
const PIECE_BUFFER_BYTES = 1 << 20;

/**
 * The bytes of {@linkcode writeCaffemodel}`(net)` as a sequence of pieces, for streaming to a
 * file without holding the whole output: the pieces are written through two buffers of
 * `bufferBytes` bytes used in turn, except blob data already held somewhere (e.g. views on the
 * input file), which comes as it is. A piece is valid until the piece after the next one is
 * asked for, so a consumer may write one piece while the next is being made.
 *
 * @example
 * ```ts ignore
 * for (const piece of caffemodelPieces(net)) await file.write(piece);
 * ```
 */
export function* caffemodelPieces(
  net: Net,
  bufferBytes = PIECE_BUFFER_BYTES,
): Generator<Uint8Array> {
  for (const section of caffemodelSections(net, bufferBytes)) yield* section.pieces;
}

/** A part of a caffemodel being streamed: the pieces of one layer, or of the header or end. */
export interface CaffemodelSection {
  /** The layer whose bytes the pieces hold (undefined for the file's header and its end). */
  layer?: Layer;
  /** The pieces, to take in full before the next section's. */
  pieces: Iterable<Uint8Array>;
}

/**
 * {@linkcode caffemodelPieces} section by section (the header, each layer, the end), so that a
 * consumer can make a layer's deferred blobs readable before their bytes are asked for (e.g.
 * weights read from a `Blob`). The pieces are those of {@linkcode caffemodelPieces}, valid as
 * long; each section's pieces must be taken in full, in order.
 */
export function* caffemodelSections(
  net: Net,
  bufferBytes = PIECE_BUFFER_BYTES,
): Generator<CaffemodelSection> {
  const plan = planNet(net);
  const size = Math.max(4096, bufferBytes);
  const writer = new WireWriter(new Uint8Array(size));
  const sections = netSections(plan, writer, new Uint8Array(size));
  yield { pieces: sections.header() };
  for (const [index, layer] of plan.layers.entries()) {
    yield { layer: net.layers[index], pieces: sections.layer(layer) };
  }
  yield { pieces: writer.pos > 0 ? [writer.swap(writer.bytes)] : [] };
}

/** Sizes every layer and blob of `net` for the wire. */
function planNet(net: Net): NetPlan {
  const header = encodeMessage(caffeType("caffe.NetParameter").info, net.header);
  const layerType = caffeType("caffe.LayerParameter").info;
  const layers = net.layers.map((layer) => planLayer(layer, layerType));
  const size = layers.reduce(
    (total, layer) => total + lengthFieldSize(NET_LAYER, layer.size),
    header.length,
  );
  return { header, layers, size };
}

function planLayer(layer: Layer, layerType: TypeInfo): LayerWirePlan {
  const params = encodeMessage(
    layerType,
    new TextMessage(layer.params.fields.filter((field) => field.name !== "phase")),
  );
  const blobs = layer.blobs.map(planBlob);
  const size = blobs.reduce(
    (total, blob) => total + lengthFieldSize(LAYER_BLOBS, blob.size),
    params.length + layer.unknownBytes.length,
  );
  return { params, unknownBytes: layer.unknownBytes, blobs, size };
}

function planBlob(blob: Blob): BlobPlan {
  const elementType = blobElementType(blob);
  const length = blobLength(blob);
  const dimsSize = blob.shape.reduce((total, dim) => total + signedVarintSize(dim), 0);
  const shapeSize = blob.shape.length > 0 ? lengthFieldSize(SHAPE_DIM, dimsSize) : 0;
  const dataSize = elementType === "int32"
    ? int32sSize(blob.data as Int32Array)
    : elementType === "uint64"
    ? uint64sSize(blob.data as BigUint64Array)
    : length * ELEMENT_SIZE[elementType];
  const size = lengthFieldSize(BLOB_SHAPE, shapeSize) +
    (length > 0 ? lengthFieldSize(DATA_FIELDS[elementType], dataSize) : 0);
  return { blob, elementType, length, dimsSize, shapeSize, dataSize, size };
}

/** The `BlobProto` field that holds data of each element type. */
const DATA_FIELDS: Record<ElementType, number> = {
  float32: BLOB_DATA,
  int8: BLOB_INT8_DATA,
  int32: BLOB_INT32_DATA,
  uint64: BLOB_UINT64_DATA,
};

/** Room for the tags and length varints written between two checks (each at most 10 bytes). */
const SMALL_WRITE_BYTES = 64;

/**
 * Writes a sized net with `writer`. With no `spare` buffer, everything must fit the writer's
 * buffer and nothing is yielded; with one, the writer's buffer and `spare` take turns, each
 * yielded when full, and large data held elsewhere is yielded as it is.
 */
function* netPieces(
  plan: NetPlan,
  writer: WireWriter,
  spare: Uint8Array | undefined,
): Generator<Uint8Array> {
  const sections = netSections(plan, writer, spare);
  yield* sections.header();
  for (const layer of plan.layers) yield* sections.layer(layer);
}

/** The writers of {@linkcode netPieces}' parts: the header, then each layer in order. */
function netSections(
  plan: NetPlan,
  writer: WireWriter,
  spare: Uint8Array | undefined,
): { header(): Generator<Uint8Array>; layer(layer: LayerWirePlan): Generator<Uint8Array> } {
  /** Yields what the buffer holds (streaming only) and goes on in the other buffer. */
  function* flush(): Generator<Uint8Array> {
    if (spare === undefined || writer.pos === 0) return;
    const next = spare;
    spare = writer.bytes;
    yield writer.swap(next);
  }
  /** Makes room for `size` bytes (at most a buffer's size). */
  function* room(size: number): Generator<Uint8Array> {
    if (writer.room < size) yield* flush();
  }
  /** True when `size` bytes go out as a piece of their own rather than through the buffer. */
  const direct = (size: number) =>
    spare !== undefined && (size >= DIRECT_PIECE_BYTES || size > writer.bytes.length);
  /** Writes bytes held elsewhere: copied into the buffer, or yielded as they are when large. */
  function* stored(bytes: Uint8Array): Generator<Uint8Array> {
    if (direct(bytes.length)) {
      yield* flush();
      yield bytes;
    } else {
      yield* room(bytes.length);
      writer.raw(bytes);
    }
  }

  /** The data field of a blob: tag, length, then the elements. */
  function* blobData(plan: BlobPlan): Generator<Uint8Array> {
    yield* room(SMALL_WRITE_BYTES);
    writer.tag(DATA_FIELDS[plan.elementType], WireType.LENGTH);
    writer.varint(plan.dataSize);
    const { blob } = plan;
    if (plan.elementType === "int32" || plan.elementType === "uint64") {
      // Varint data (biases, dequant scales) is small; a run larger than a buffer gets its own.
      const own = direct(plan.dataSize) ? new WireWriter(plan.dataSize) : undefined;
      if (own === undefined) yield* room(plan.dataSize);
      const target = own ?? writer;
      if (plan.elementType === "int32") target.int32s(blob.data as Int32Array);
      else target.uint64s(blob.data as BigUint64Array);
      if (own !== undefined) yield* stored(own.finish());
      return;
    }
    const bytes = blobBytes(blob);
    if (bytes !== undefined) {
      yield* stored(bytes);
      return;
    }
    const deferred = blob as DeferredBlob;
    const size = ELEMENT_SIZE.float32;
    for (let done = 0; done < plan.length;) {
      yield* room(size);
      const count = Math.min(plan.length - done, Math.floor(writer.room / size));
      deferred.writeBytes(
        done,
        count,
        writer.bytes.subarray(writer.pos, writer.pos + count * size),
      );
      writer.pos += count * size;
      done += count;
    }
  }

  return {
    *header() {
      yield* stored(plan.header);
    },
    *layer(layer) {
      yield* room(SMALL_WRITE_BYTES);
      writer.tag(NET_LAYER, WireType.LENGTH);
      writer.varint(layer.size);
      yield* stored(layer.params);
      yield* stored(layer.unknownBytes);
      for (const blob of layer.blobs) {
        yield* room(SMALL_WRITE_BYTES);
        writer.tag(LAYER_BLOBS, WireType.LENGTH);
        writer.varint(blob.size);
        writer.tag(BLOB_SHAPE, WireType.LENGTH);
        writer.varint(blob.shapeSize);
        if (blob.blob.shape.length > 0) {
          yield* room(blob.shapeSize);
          writer.tag(SHAPE_DIM, WireType.LENGTH);
          writer.varint(blob.dimsSize);
          for (const dim of blob.blob.shape) writer.signedVarint(dim);
        }
        if (blob.length > 0) yield* blobData(blob);
      }
    },
  };
}
