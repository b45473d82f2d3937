// Reads a /predict request into images and topk, with a coded error for each way it can be wrong.
import { modelServerErrors } from './errors.js';

export interface PredictRequest {
  images: Uint8Array[];
  topk: number;
  /** JSON batches name images by index in errors; a raw body is "the image". */
  indexed: boolean;
}

export interface PredictLimits {
  maxImages: number;
  maxTopk: number;
  defaultTopk: number;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL_PREFIX = /^data:image\/(jpeg|png|webp);base64,/;

export function decodeBase64Image(value: unknown, index: number): Uint8Array {
  if (typeof value !== 'string') throw modelServerErrors.MS_INVALID_BASE64(`images[${index}] must be a base64 string`);
  const base64 = value.replace(DATA_URL_PREFIX, '');
  // Buffer.from silently skips characters that are not base64, so check the alphabet first.
  if (base64.length === 0 || base64.length % 4 === 1 || !BASE64.test(base64)) {
    throw modelServerErrors.MS_INVALID_BASE64(`images[${index}] is not valid base64`);
  }
  return Buffer.from(base64, 'base64');
}

/** `fromQuery`: the query string carries text, a JSON body carries numbers. */
export function parseTopk(value: unknown, limits: PredictLimits, fromQuery = false): number {
  if (value === undefined) return limits.defaultTopk;
  const number = fromQuery && typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 1 || number > limits.maxTopk) {
    throw modelServerErrors.MS_INVALID_TOPK(
      `"topk" must be an integer from 1 to ${limits.maxTopk}, got ${JSON.stringify(value)}`,
    );
  }
  return number;
}

export function readPredictRequest(
  body: unknown,
  query: Record<string, unknown>,
  limits: PredictLimits,
): PredictRequest {
  if (Buffer.isBuffer(body)) {
    if (body.length === 0) throw modelServerErrors.MS_NOT_AN_IMAGE('The body is empty; send the image bytes');
    return { images: [body], topk: parseTopk(query.topk, limits, true), indexed: false };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw modelServerErrors.MS_INVALID_REQUEST();
  const { images, topk, ...unknown } = body as Record<string, unknown>;
  const unknownKeys = Object.keys(unknown);
  if (unknownKeys.length > 0) {
    throw modelServerErrors.MS_INVALID_REQUEST(`Unknown field "${unknownKeys[0]}"; the body takes "images" and "topk"`);
  }
  if (!Array.isArray(images) || images.length === 0) throw modelServerErrors.MS_NO_IMAGES();
  if (images.length > limits.maxImages) {
    throw modelServerErrors.MS_TOO_MANY_IMAGES(
      `${images.length} images in one request; the limit is ${limits.maxImages}`,
    );
  }
  const topkValue = topk === undefined ? parseTopk(query.topk, limits, true) : parseTopk(topk, limits);
  return { images: images.map(decodeBase64Image), topk: topkValue, indexed: true };
}
