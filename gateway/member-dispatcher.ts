// Sends each proxied request to the pool of the member it was assigned to, by the origin that
// getUpstream() returned. The pools belong to their UpstreamGroup, which also health-checks
// through them; this dispatcher only routes, so closing or an error here never destroys a pool
// (undici's Agent would own and destroy the pools it is given).
import { Dispatcher } from 'undici';
import type { UpstreamMember } from './upstream-group.js';

export class MemberDispatcher extends Dispatcher {
  readonly #byOrigin: ReadonlyMap<string, UpstreamMember>;

  constructor(members: readonly UpstreamMember[]) {
    super();
    this.#byOrigin = new Map(members.map((member) => [member.dispatchOrigin, member]));
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = typeof options.origin === 'string' ? options.origin : options.origin?.origin;
    const member = origin === undefined ? undefined : this.#byOrigin.get(origin);
    if (!member) throw new Error(`no upstream member for origin ${origin}`);
    return member.pool.dispatch(options, handler);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    if (callback) return void queueMicrotask(callback);
    return Promise.resolve();
  }

  override destroy(): Promise<void>;
  override destroy(error: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(error: Error | null, callback: () => void): void;
  override destroy(first?: Error | null | (() => void), second?: () => void): Promise<void> | void {
    const callback = typeof first === 'function' ? first : second;
    if (callback) return void queueMicrotask(callback);
    return Promise.resolve();
  }
}
