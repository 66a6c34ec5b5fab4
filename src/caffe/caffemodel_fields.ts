/**
 * The wire layout of a caffemodel shared by its reader and writer: the field numbers of
 * `NetParameter`, `LayerParameter`, `V1LayerParameter`, `BlobProto` and `BlobShape`.
 *
 * @module
 */

/** `NetParameter.layers`: V1 layers. */
export const NET_LAYERS_V1 = 2;
/** `NetParameter.layer`: V2 layers. */
export const NET_LAYER = 100;
/** `LayerParameter.blobs`. */
export const LAYER_BLOBS = 7;
/** `V1LayerParameter.blobs`. */
export const V1_LAYER_BLOBS = 6;
/** `BlobProto.num`, the first legacy dimension (`channels`, `height` follow). */
export const BLOB_NUM = 1;
/** `BlobProto.width`, the last legacy dimension. */
export const BLOB_WIDTH = 4;
/** `BlobProto.data` (float). */
export const BLOB_DATA = 5;
/** `BlobProto.shape`. */
export const BLOB_SHAPE = 7;
/** `BlobProto.double_data`. */
export const BLOB_DOUBLE_DATA = 8;
/** `BlobProto.int8_data`. */
export const BLOB_INT8_DATA = 10;
/** `BlobProto.int32_data`. */
export const BLOB_INT32_DATA = 11;
/** `BlobProto.uint64_data`. */
export const BLOB_UINT64_DATA = 12;
/** `BlobShape.dim`. */
export const SHAPE_DIM = 1;
