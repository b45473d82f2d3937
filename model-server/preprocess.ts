// torchvision's standard ImageNet transform, done with sharp (libvips):
//   Resize(256) -> CenterCrop(224) -> ToTensor() -> Normalize(mean, std), NCHW float32.
// Resize sets the shorter side to 256 and the longer to floor(256 * long / short), as
// torchvision does; the crop offset is round((size - 224) / 2) with Python's round-half-to-even.
// The default kernel is libvips's "linear" (a triangle filter widened when shrinking), the same
// antialiased bilinear filter PIL applies for torchvision; JPEGs may also be shrunk on load by
// libjpeg's DCT scaling, which sharp does when the shrink factor allows it.
// EXIF orientation is ignored, as PIL and torchvision ignore it.
import sharp from 'sharp';
import type { Metadata } from 'sharp';
import type { ErrorFactory } from '../common/index.js';
import { modelServerErrors } from './errors.js';
import { sniffImageFormat } from './image-format.js';

import {
  CHANNELS,
  CROP_SIZE,
  IMAGE_ELEMENTS,
  IMAGENET_MEAN,
  IMAGENET_STD,
  RESIZE_SHORTER_SIDE,
} from './tensor-layout.js';

export type ResizeKernel = 'linear' | 'cubic' | 'lanczos3' | 'nearest';

export interface PreprocessOptions {
  maxPixels: number;
  kernel: ResizeKernel;
}

/** Per channel, the normalised value of each byte: (v / 255 - mean) / std, in float32. */
const NORMALISE = IMAGENET_MEAN.map((mean, channel) => {
  const table = new Float32Array(256);
  for (let value = 0; value < 256; value++) table[value] = (value / 255 - mean) / IMAGENET_STD[channel]!;
  return table;
});

/** Python's round(): halves go to the even neighbour. */
export function roundHalfToEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction < 0.5) return floor;
  if (fraction > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

export interface Geometry {
  resizedWidth: number;
  resizedHeight: number;
  left: number;
  top: number;
}

export function transformGeometry(width: number, height: number): Geometry {
  const shorter = Math.min(width, height);
  const longer = Math.max(width, height);
  const resizedLonger = Math.floor((RESIZE_SHORTER_SIDE * longer) / shorter);
  const resizedWidth = width <= height ? RESIZE_SHORTER_SIDE : resizedLonger;
  const resizedHeight = width <= height ? resizedLonger : RESIZE_SHORTER_SIDE;
  return {
    resizedWidth,
    resizedHeight,
    left: roundHalfToEven((resizedWidth - CROP_SIZE) / 2),
    top: roundHalfToEven((resizedHeight - CROP_SIZE) / 2),
  };
}

function decodeFailure(error: unknown, fallback: ErrorFactory, index: number | undefined, what: string) {
  const where = index === undefined ? 'the image' : `images[${index}]`;
  return fallback(`${where}: ${what}`, { cause: error });
}

/** What the header says about an image, before any pixel is decoded. */
export interface ImageHeader {
  width: number;
  height: number;
  /** Pixels × channels × bytes per sample: what a full decode would hold in memory. */
  decodedBytes: number;
}

const BYTES_PER_SAMPLE: Partial<Record<string, number>> = {
  uchar: 1,
  char: 1,
  ushort: 2,
  short: 2,
  uint: 4,
  int: 4,
  float: 4,
  double: 8,
};

/**
 * Reads only the image's header: its format, dimensions and channels. Throws coded errors for
 * bytes that are not an accepted image, an unreadable header, or too many pixels.
 */
export async function readImageHeader(
  bytes: Uint8Array,
  options: PreprocessOptions,
  index?: number,
): Promise<ImageHeader> {
  const where = index === undefined ? 'the image' : `images[${index}]`;
  const sniffed = sniffImageFormat(bytes);
  if (sniffed.kind === 'unknown') throw modelServerErrors.MS_NOT_AN_IMAGE(`${where} is not a JPEG, PNG or WebP image`);
  if (sniffed.kind === 'unsupported') {
    throw modelServerErrors.MS_UNSUPPORTED_IMAGE_FORMAT(
      `${where} is ${sniffed.format}; only JPEG, PNG and WebP are accepted`,
    );
  }

  let metadata: Metadata;
  try {
    // Headers only: the pixel limit is checked below, so the error can name the dimensions.
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw decodeFailure(error, modelServerErrors.MS_CORRUPT_IMAGE, index, 'the image header cannot be read');
  }
  const { width, height } = metadata;
  if (!width || !height) throw modelServerErrors.MS_CORRUPT_IMAGE(`${where} has no dimensions`);
  if (width * height > options.maxPixels) {
    throw modelServerErrors.MS_IMAGE_TOO_LARGE(
      `${where} declares ${width}x${height} = ${width * height} pixels; the limit is ${options.maxPixels} pixels`,
    );
  }
  const channels = Math.max(metadata.channels ?? 3, 3); // decoding ends in RGB whatever the source holds
  return {
    width,
    height,
    decodedBytes: width * height * channels * (BYTES_PER_SAMPLE[metadata.depth ?? 'uchar'] ?? 1),
  };
}

/** Decodes, resizes and crops an image whose header was read: 224x224 RGB bytes, HWC. */
export async function decodeImage(
  bytes: Uint8Array,
  header: ImageHeader,
  options: PreprocessOptions,
  index?: number,
): Promise<Buffer> {
  const where = index === undefined ? 'the image' : `images[${index}]`;
  const geometry = transformGeometry(header.width, header.height);
  let pixels: Buffer;
  try {
    // failOn 'warning' (sharp's default) refuses truncated and corrupt data instead of predicting on grey fill.
    pixels = await sharp(bytes, { failOn: 'warning', limitInputPixels: options.maxPixels, sequentialRead: true })
      .resize(geometry.resizedWidth, geometry.resizedHeight, { fit: 'fill', kernel: options.kernel })
      .extract({ left: geometry.left, top: geometry.top, width: CROP_SIZE, height: CROP_SIZE })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer();
  } catch (error) {
    throw decodeFailure(error, modelServerErrors.MS_CORRUPT_IMAGE, index, 'the image is truncated or corrupt');
  }
  if (pixels.length !== CROP_SIZE * CROP_SIZE * CHANNELS) {
    throw modelServerErrors.MS_CORRUPT_IMAGE(`${where} decoded to an unexpected pixel layout`);
  }
  return pixels;
}

/**
 * Turns one encoded image into a [3,224,224] float32 tensor.
 * Throws coded errors for bytes that are not an accepted image, too many pixels, or corruption.
 */
export async function preprocessImage(
  bytes: Uint8Array,
  options: PreprocessOptions,
  index?: number,
): Promise<Float32Array> {
  const header = await readImageHeader(bytes, options, index);
  return toNormalisedChw(await decodeImage(bytes, header, options, index));
}

/** HWC RGB bytes to normalised CHW float32, into `out` at `offset` (a batch slot) or a new tensor. */
export function toNormalisedChw(
  pixels: Uint8Array,
  out: Float32Array = new Float32Array(IMAGE_ELEMENTS),
  offset = 0,
): Float32Array {
  const plane = CROP_SIZE * CROP_SIZE;
  const [red, green, blue] = NORMALISE as [Float32Array, Float32Array, Float32Array];
  for (let pixel = 0, byte = 0; pixel < plane; pixel++, byte += 3) {
    out[offset + pixel] = red[pixels[byte]!]!;
    out[offset + plane + pixel] = green[pixels[byte + 1]!]!;
    out[offset + 2 * plane + pixel] = blue[pixels[byte + 2]!]!;
  }
  return out;
}
