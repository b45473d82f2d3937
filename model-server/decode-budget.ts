// Bounds the memory that image decoding holds at once, in decoded bytes (pixels × channels).
//
// Counting images alone lets a burst of valid but huge images (a 6300x6300 PNG is 131 KB on the
// wire and 119 MB of pixels) decode side by side on every thread of libuv's pool, and glibc keeps
// most of what those decodes touched. Each decode first takes its decoded size from this budget
// and waits, in arrival order, until it fits; an image larger than the whole budget waits until
// nothing else decodes and then runs alone. `slots` caps how many decodes run at once whatever
// their size, so decoding leaves cores to onnxruntime.

export interface DecodeBudgetOptions {
  /** Decoded bytes that may be held by decodes in progress. */
  bytes: number;
  /** Decodes in progress at most. */
  slots: number;
}

interface Waiter {
  bytes: number;
  grant(): void;
}

export class DecodeBudget {
  readonly capacityBytes: number;
  readonly slots: number;
  #heldBytes = 0;
  #running = 0;
  #peakHeldBytes = 0;
  readonly #waiting: Waiter[] = [];

  constructor(options: DecodeBudgetOptions) {
    this.capacityBytes = options.bytes;
    this.slots = options.slots;
  }

  /** Decoded bytes held by decodes in progress now. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /** The most decoded bytes ever held at once (an image larger than the budget counts as the budget). */
  get peakHeldBytes(): number {
    return this.#peakHeldBytes;
  }

  /** Decodes waiting for room. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Runs `decode` once `bytes` of decoded pixels fit in the budget, and gives them back after. */
  async run<T>(bytes: number, decode: () => Promise<T>): Promise<T> {
    const charged = Math.min(Math.max(bytes, 0), this.capacityBytes);
    await this.#acquire(charged);
    try {
      return await decode();
    } finally {
      this.#heldBytes -= charged;
      this.#running--;
      this.#grantWaiting();
    }
  }

  #fits(bytes: number): boolean {
    return this.#running < this.slots && this.#heldBytes + bytes <= this.capacityBytes;
  }

  #take(bytes: number): void {
    this.#heldBytes += bytes;
    this.#running++;
    this.#peakHeldBytes = Math.max(this.#peakHeldBytes, this.#heldBytes);
  }

  #acquire(bytes: number): Promise<void> {
    // Strict arrival order: a small image never overtakes a large one that waits, or a stream of
    // small images could keep a large one waiting for ever.
    if (this.#waiting.length === 0 && this.#fits(bytes)) {
      this.#take(bytes);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.#waiting.push({ bytes, grant: resolve }));
  }

  #grantWaiting(): void {
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0]!.bytes)) {
      const next = this.#waiting.shift()!;
      this.#take(next.bytes);
      next.grant();
    }
  }
}
