// Messages between the main thread and the inference worker.
import type { ModelDescription } from './model-session.js';

export type WorkerRequest = { type: 'run'; id: number; input: Float32Array; count: number } | { type: 'close' };

export type WorkerReply =
  | { type: 'ready'; description: ModelDescription }
  | { type: 'load-failed'; message: string; name: string }
  | { type: 'result'; id: number; logits: Float32Array; input: Float32Array }
  | { type: 'failed'; id: number; message: string; input: Float32Array };
