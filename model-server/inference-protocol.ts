// Messages between the main thread and the inference worker, and the error a model that breaks
// the input contract raises. Both threads import this file: it must not load onnxruntime, which
// only the worker needs (loading it on the main thread too cost start-up time and memory).
import type { ModelDescription } from './model-session.js';

export type WorkerRequest = { type: 'run'; id: number; input: Float32Array; count: number } | { type: 'close' };

export type WorkerReply =
  | { type: 'ready'; description: ModelDescription }
  | { type: 'load-failed'; message: string; name: string }
  | { type: 'result'; id: number; logits: Float32Array; input: Float32Array }
  | { type: 'failed'; id: number; message: string; input: Float32Array };

export class ModelContractError extends Error {
  override name = 'ModelContractError';
}
