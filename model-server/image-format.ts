// Recognises the image format from the first bytes, before any decoder sees them. Only JPEG,
// PNG and WebP reach sharp: other formats it could decode (SVG through librsvg, TIFF, GIF, HEIF)
// widen the attack surface of a server that takes bytes from strangers.

export type AcceptedFormat = 'jpeg' | 'png' | 'webp';
export type SniffResult =
  { kind: 'accepted'; format: AcceptedFormat } | { kind: 'unsupported'; format: string } | { kind: 'unknown' };

function startsWith(bytes: Uint8Array, signature: readonly number[], offset = 0): boolean {
  if (bytes.length < offset + signature.length) return false;
  return signature.every((value, index) => bytes[offset + index] === value);
}

const ascii = (text: string): number[] => [...text].map((char) => char.charCodeAt(0));

export function sniffImageFormat(bytes: Uint8Array): SniffResult {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { kind: 'accepted', format: 'jpeg' };
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: 'accepted', format: 'png' };
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8))
    return { kind: 'accepted', format: 'webp' };
  if (startsWith(bytes, ascii('GIF8'))) return { kind: 'unsupported', format: 'gif' };
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) {
    return { kind: 'unsupported', format: 'tiff' };
  }
  if (startsWith(bytes, ascii('BM'))) return { kind: 'unsupported', format: 'bmp' };
  if (startsWith(bytes, ascii('ftyp'), 4)) return { kind: 'unsupported', format: 'heif/avif' };
  const head = Buffer.from(bytes.subarray(0, 256)).toString('latin1').trimStart().toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) {
    return { kind: 'unsupported', format: 'svg' };
  }
  return { kind: 'unknown' };
}
