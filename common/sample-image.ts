// The fixed request image, encoded with sharp. Loaded only when an image is made (common/index.ts
// imports this module on demand), so nothing that merely imports common/ pays for sharp.
import sharp from 'sharp';
import { samplePixels } from './sample-pixels.js';

export interface SampleImageOptions {
  width?: number;
  height?: number;
  seed?: number;
  format?: 'jpeg' | 'png' | 'webp';
}

/** The study's request image: by default a 500x375 JPEG (about ImageNet's median size). */
export async function sampleImage(options: SampleImageOptions = {}): Promise<Buffer> {
  const { width = 500, height = 375, seed = 1, format = 'jpeg' } = options;
  const image = sharp(samplePixels(width, height, seed), { raw: { width, height, channels: 3 } });
  if (format === 'png') return image.png().toBuffer();
  if (format === 'webp') return image.webp({ quality: 90 }).toBuffer();
  return image.jpeg({ quality: 90 }).toBuffer();
}
