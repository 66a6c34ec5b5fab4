/**
 * A net in a form `postMessage` carries to a worker cheaply: its header's and layers' field trees
 * as plain data and every blob's elements packed into one buffer, rebuilt on the other side into
 * the same net (without the caffemodel's unknown fields, which no run reads). The trees cross as
 * they are, so a worker reads no text (its schema is not even loaded). The buffer is a
 * `SharedArrayBuffer` where the runtime has one, which every worker reads in place (no copy per
 * worker), else an `ArrayBuffer` to transfer.
 *
 * @module
 */

import { blobElementType, blobLength, DeferredBlob } from "../caffe/deferred_blob.ts";
import { Layer, type Net } from "../caffe/net.ts";
import { type FieldValue, type TextField, TextMessage } from "../proto/tree.ts";

/** The element types a blob may hold, by name. */
const BLOB_TYPES = {
  float32: Float32Array,
  int8: Int8Array,
  int32: Int32Array,
  uint64: BigUint64Array,
} as const;

/** Name of a blob element type in {@linkcode BLOB_TYPES}. */
type BlobType = keyof typeof BLOB_TYPES;

/** Where one blob's elements are in {@linkcode PackedNet.data}. */
interface PackedBlob {
  /** Index of the layer in the net. */
  layer: number;
  /** The blob's shape. */
  shape: number[];
  /** Its element type. */
  type: BlobType;
  /** Byte offset of its elements in the packed buffer (a multiple of 8). */
  byteOffset: number;
  /** Number of elements. */
  length: number;
  /** Whether the file gave the legacy 4-number shape. */
  legacyShape?: boolean;
}

/**
 * A message tree as a structured clone leaves it: its fields, nested messages without their class
 * (scalars, `Uint8Array`s included, stay as they are).
 */
interface ClonedMessage {
  fields: (Omit<TextField, "value"> & { value: FieldValue | ClonedMessage })[];
}

/** A net as plain data: structured-cloneable, `data` shared or transferable. */
export interface PackedNet {
  /** The net's header fields. */
  header: ClonedMessage;
  /** Each layer's `LayerParameter` fields. */
  layers: ClonedMessage[];
  /** Every blob, in layer order then blob order. */
  blobs: PackedBlob[];
  /** All blob elements, one after the other. */
  data: ArrayBuffer | SharedArrayBuffer;
}

/**
 * `net` packed: its trees and one fresh buffer holding a copy of every blob's elements, a
 * `SharedArrayBuffer` when `shared` (the runtime must have one). A deferred blob whose array is
 * not made yet (unaligned float data of a caffemodel) is written straight into the buffer, its
 * array left unmade: ResNet-50's weights once went into fresh arrays first (page faults on 77 of
 * its 102 MB), then into the buffer.
 */
export function packNet(net: Net, shared = false): PackedNet {
  const blobs: PackedBlob[] = [];
  let bytes = 0;
  net.layers.forEach((layer, index) => {
    for (const blob of layer.blobs) {
      const type = blobElementType(blob);
      const length = blobLength(blob);
      blobs.push({
        layer: index,
        shape: blob.shape,
        type,
        byteOffset: bytes,
        length,
        ...(blob.legacyShape ? { legacyShape: true } : {}),
      });
      bytes += Math.ceil(length * BLOB_TYPES[type].BYTES_PER_ELEMENT / 8) * 8;
    }
  });
  const data = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  const target = new Uint8Array(data);
  let next = 0;
  for (const layer of net.layers) {
    for (const blob of layer.blobs) {
      const { byteOffset, length, type } = blobs[next++];
      const end = byteOffset + length * BLOB_TYPES[type].BYTES_PER_ELEMENT;
      if (blob instanceof DeferredBlob) {
        // Its bytes, made straight into the buffer when its array is not made yet.
        blob.writeBytes(0, length, target.subarray(byteOffset, end));
        continue;
      }
      const { buffer, byteOffset: from, byteLength } = blob.data;
      target.set(new Uint8Array(buffer, from, byteLength), byteOffset);
    }
  }
  return { header: net.header, layers: net.layers.map((layer) => layer.params), blobs, data };
}

/** `message` (a tree, or its structured clone) as a tree again: its messages `TextMessage`s. */
function revived(message: ClonedMessage): TextMessage {
  return new TextMessage(message.fields.map((field) => {
    const { value } = field;
    const nested = typeof value === "object" && !(value instanceof Uint8Array);
    return nested ? { ...field, value: revived(value as ClonedMessage) } : field as TextField;
  }));
}

/** The net `packed` describes; its blobs are views into `packed.data`. */
export function unpackNet(packed: PackedNet): Net {
  const net = {
    header: revived(packed.header),
    layers: packed.layers.map((params) => new Layer(revived(params))),
  };
  for (const { layer, shape, type, byteOffset, length, legacyShape } of packed.blobs) {
    // A view of the shared buffer too (the constructors' union type names ArrayBuffer only).
    const data = new BLOB_TYPES[type](packed.data as ArrayBuffer, byteOffset, length);
    net.layers[layer].blobs.push({ shape, data, ...(legacyShape ? { legacyShape } : {}) });
  }
  return net;
}
