// The inference worker: owns the onnxruntime session on a thread of its own, because
// onnxruntime-node computes on the thread that calls run(). The main thread stays free to parse
// requests, dispatch preprocessing and answer health checks while a batch runs.
import { parentPort, workerData } from 'node:worker_threads';
import type { ModelSessionOptions } from './model-session.js';
import { loadModelSession } from './model-session.js';
import type { WorkerReply, WorkerRequest } from './inference-protocol.js';

const port = parentPort;
if (!port) throw new Error('inference-worker must run as a worker thread');

function post(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

try {
  const session = await loadModelSession(workerData as ModelSessionOptions);
  port.on('message', (request: WorkerRequest) => {
    if (request.type === 'close') {
      void session.release().finally(() => port.close());
      return;
    }
    session.run(request.input, request.count).then(
      (logits) => {
        // Hand the buffers over rather than copying them; the input goes back for reuse.
        const own = logits.byteOffset === 0 && logits.byteLength === logits.buffer.byteLength ? logits : logits.slice();
        post({ type: 'result', id: request.id, logits: own, input: request.input }, [
          own.buffer as ArrayBuffer,
          request.input.buffer as ArrayBuffer,
        ]);
      },
      (error: unknown) =>
        post({ type: 'failed', id: request.id, message: (error as Error).message, input: request.input }, [
          request.input.buffer as ArrayBuffer,
        ]),
    );
  });
  post({ type: 'ready', description: session.description });
} catch (error) {
  post({ type: 'load-failed', message: (error as Error).message, name: (error as Error).name });
  port.close();
}
