import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { CROP_SIZE, IMAGENET_MEAN, IMAGENET_STD } from '../../model-server/index.js';
// Unit tests of the component's internals reach past its door.
import { preprocessImage, toNormalisedChw, transformGeometry } from '../../model-server/preprocess.js';

const options = { maxPixels: 40_000_000, kernel: 'linear' as const };
const PLANE = CROP_SIZE * CROP_SIZE;

function expected(value: number, channel: number): number {
  return Math.fround((value / 255 - IMAGENET_MEAN[channel]!) / IMAGENET_STD[channel]!);
}

/** PNG whose red channel is x, green is y mod 256 and blue is floor(y / 256): every pixel says where it came from. */
async function coordinatePng(width: number, height: number): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * 3;
      pixels[offset] = x & 255;
      pixels[offset + 1] = y & 255;
      pixels[offset + 2] = y >> 8;
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

function pixelAt(tensor: Float32Array, channel: number, row: number, column: number): number {
  return tensor[channel * PLANE + row * CROP_SIZE + column]!;
}

test('geometry follows torchvision: shorter side to 256, longer truncated, centre crop rounded half to even', () => {
  assert.deepEqual(transformGeometry(500, 375), { resizedWidth: 341, resizedHeight: 256, left: 58, top: 16 });
  assert.deepEqual(transformGeometry(375, 500), { resizedWidth: 256, resizedHeight: 341, left: 16, top: 58 });
  assert.deepEqual(transformGeometry(256, 320), { resizedWidth: 256, resizedHeight: 320, left: 16, top: 48 });
  assert.deepEqual(transformGeometry(224, 224), { resizedWidth: 256, resizedHeight: 256, left: 16, top: 16 });
  // (259 - 224) / 2 = 17.5 rounds to 18, (257 - 224) / 2 = 16.5 rounds to 16, as Python's round does.
  assert.equal(transformGeometry(256 * 259, 256 * 256).left, 18);
  assert.equal(transformGeometry(256 * 257, 256 * 256).left, 16);
});

test('a solid colour normalises to exactly (v / 255 - mean) / std in every element', async () => {
  const png = await sharp({ create: { width: 300, height: 400, channels: 3, background: { r: 10, g: 128, b: 250 } } })
    .png()
    .toBuffer();
  const tensor = await preprocessImage(png, options);
  assert.equal(tensor.length, 3 * PLANE);
  const colour = [10, 128, 250];
  for (let channel = 0; channel < 3; channel++) {
    const want = expected(colour[channel]!, channel);
    for (let index = channel * PLANE; index < (channel + 1) * PLANE; index++) assert.equal(tensor[index], want);
  }
});

test('the centre crop takes exactly the middle 224x224 of a portrait image already 256 wide', async () => {
  const tensor = await preprocessImage(await coordinatePng(256, 320), options);
  for (const [row, column] of [
    [0, 0],
    [0, 223],
    [223, 0],
    [223, 223],
    [100, 57],
  ] as const) {
    assert.equal(pixelAt(tensor, 0, row, column), expected(16 + column, 0), `x at ${row},${column}`);
    assert.equal(pixelAt(tensor, 1, row, column), expected((48 + row) & 255, 1), `y low at ${row},${column}`);
    assert.equal(pixelAt(tensor, 2, row, column), expected((48 + row) >> 8, 2), `y high at ${row},${column}`);
  }
});

test('the centre crop of a landscape image 256 high is offset along x', async () => {
  const pixels = Buffer.alloc(320 * 256 * 3);
  for (let y = 0; y < 256; y++) for (let x = 0; x < 320; x++) pixels[(y * 320 + x) * 3] = x & 255;
  const tensor = await preprocessImage(
    await sharp(pixels, { raw: { width: 320, height: 256, channels: 3 } })
      .png()
      .toBuffer(),
    options,
  );
  assert.equal(pixelAt(tensor, 0, 0, 0), expected(48, 0));
  assert.equal(pixelAt(tensor, 0, 223, 223), expected((48 + 223) & 255, 0));
});

test('resizing halves a 512x640 image: the colour edge lands in the middle of the crop', async () => {
  // Left half black, right half white; after the 2x shrink the edge sits at x = 128 of 256, which
  // is column 112 of the crop (left offset 16). Away from the edge the values are exact.
  const width = 512;
  const height = 640;
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) pixels.fill(255, (y * width + width / 2) * 3, (y + 1) * width * 3);
  const tensor = await preprocessImage(
    await sharp(pixels, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer(),
    options,
  );
  for (const row of [0, 111, 223]) {
    for (let column = 0; column <= 109; column++) assert.equal(pixelAt(tensor, 0, row, column), expected(0, 0));
    for (let column = 114; column < 224; column++) assert.equal(pixelAt(tensor, 0, row, column), expected(255, 0));
    const around = [110, 111, 112, 113].map((column) => pixelAt(tensor, 0, row, column));
    assert.deepEqual(
      [...around].sort((a, b) => a - b),
      around,
      'the edge rises monotonically',
    );
  }
});

test('greyscale and RGBA images become three-channel tensors; alpha is dropped as PIL does', async () => {
  const grey = await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 77, g: 77, b: 77 } } })
    .greyscale()
    .toColourspace('b-w')
    .png()
    .toBuffer();
  const fromGrey = await preprocessImage(grey, options);
  for (let channel = 0; channel < 3; channel++) assert.equal(pixelAt(fromGrey, channel, 5, 5), expected(77, channel));

  const rgba = await sharp({
    create: { width: 256, height: 256, channels: 4, background: { r: 1, g: 2, b: 3, alpha: 0.5 } },
  })
    .png()
    .toBuffer();
  const fromRgba = await preprocessImage(rgba, options);
  assert.deepEqual(
    [0, 1, 2].map((channel) => pixelAt(fromRgba, channel, 9, 9)),
    [expected(1, 0), expected(2, 1), expected(3, 2)],
  );
});

test('HWC bytes become CHW planes', () => {
  const pixels = new Uint8Array(PLANE * 3);
  pixels.set([255, 0, 128], 0);
  pixels.set([1, 2, 3], (PLANE - 1) * 3);
  const tensor = toNormalisedChw(pixels);
  assert.equal(tensor[0], expected(255, 0));
  assert.equal(tensor[PLANE], expected(0, 1));
  assert.equal(tensor[2 * PLANE], expected(128, 2));
  assert.equal(tensor[PLANE - 1], expected(1, 0));
  assert.equal(tensor[3 * PLANE - 1], expected(3, 2));
});
