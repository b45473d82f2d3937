// The pixels of the fixed, photo-like test image: the study sent one fixed image; we cannot ship a
// photograph's rights, so smooth gradients, shapes and mild noise stand in, seeded so every run
// sends exactly the same bytes. No image library here: sample-image.ts encodes them with sharp.

// mulberry32: small, fast and good enough for pixels.
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

export function samplePixels(width: number, height: number, seed: number): Buffer {
  const random = seededRandom(seed);
  const pixels = Buffer.alloc(width * height * 3);
  const centreX = width * (0.3 + 0.4 * random());
  const centreY = height * (0.3 + 0.4 * random());
  const radius = Math.min(width, height) * (0.2 + 0.15 * random());
  const tint = [random(), random(), random()];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = (x - centreX) ** 2 + (y - centreY) ** 2 < radius ** 2;
      const offset = (y * width + x) * 3;
      for (let channel = 0; channel < 3; channel++) {
        const gradient = channel === 0 ? x / width : channel === 1 ? y / height : 1 - x / width;
        const base = inside ? tint[channel]! : 0.2 + 0.6 * gradient;
        const noise = (random() - 0.5) * 0.08;
        pixels[offset + channel] = Math.max(0, Math.min(255, Math.round((base + noise) * 255)));
      }
    }
  }
  return pixels;
}
