// channel: what the enclave channel itself costs, without a model in the way. Bulk bytes for a
// fixed time (several message sizes, 1 and more streams) and small-message round trips, through
// the relay chain the secure route uses (parent relay ══ Unix socket standing in for vsock ══►
// enclave relay ──► the far end), against loopback TCP straight to the same far end, a channel
// sink (channel-sink.ts). Every piece is its own process, as in the stack; the client is this one.
// With --channel-socket the channel is whatever that socket leads to (on EC2: vsock to an enclave
// running the sink).
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopChild, waitForLine } from '../../common/index.js';
import { MPG_LAUNCHER } from '../../enclave/index.js';
import { BULK, ECHO } from '../channel-sink.js';
import { forwardWarnings } from '../log-lines.js';
import { partsCpuMeter } from '../../common/index.js';
import { summariseLatencies } from '../../common/index.js';
import type { ProcessTreeRoot } from '../../common/index.js';
import type { ChannelResult } from '../results.js';
import type { Scenario, ScenarioContext } from './context.js';
import { round3 } from './context.js';

type Connect = () => Socket;
const STOP_GRACE_MS = 5_000;

function spawnPinned(
  args: string[],
  cpus: string | null,
  env: ScenarioContext['env'],
  stderr: NodeJS.WritableStream,
): ChildProcess {
  const [command, ...rest] = cpus === null ? [MPG_LAUNCHER, ...args] : ['taskset', '-c', cpus, MPG_LAUNCHER, ...args];
  const child = spawn(command, rest, { env: { ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  forwardWarnings(child.stderr, stderr);
  return child;
}

function connected(connect: Connect): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect();
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Everything the far end sends until it closes. */
function readToEnd(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

/** One bulk stream: write `message` again and again until the deadline, then half-close and read the sink's count. */
async function bulkStream(connect: Connect, message: Buffer, deadline: number, signal: AbortSignal): Promise<number> {
  const socket = await connected(connect);
  const reply = readToEnd(socket);
  socket.write(Buffer.of(BULK));
  while (performance.now() < deadline && !signal.aborted) {
    if (!socket.write(message)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  socket.end();
  const count = await reply;
  socket.destroy();
  if (count.length !== 8)
    throw new Error(`the channel sink answered ${count.length} bytes instead of its 8-byte count`);
  return Number(count.readBigUInt64BE());
}

async function bulk(connect: Connect, messageBytes: number, streams: number, seconds: number, signal: AbortSignal) {
  const message = Buffer.alloc(messageBytes, 0x5a);
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const counts = await Promise.all(
    Array.from({ length: streams }, () => bulkStream(connect, message, deadline, signal)),
  );
  const elapsed = (performance.now() - started) / 1000;
  const bytes = counts.reduce((total, count) => total + count, 0);
  return { seconds: round3(elapsed), bytes, gbitPerSecond: round3((bytes * 8) / elapsed / 1e9) };
}

/** Small messages, one at a time: each sent when the previous one has come back whole. */
async function roundTrips(
  connect: Connect,
  messageBytes: number,
  count: number,
  signal: AbortSignal,
): Promise<number[]> {
  const socket = await connected(connect);
  socket.setNoDelay(true);
  socket.write(Buffer.of(ECHO));
  const message = Buffer.alloc(messageBytes, 0x61);
  let waiting = 0;
  let arrived: () => void = () => {};
  socket.on('data', (chunk: Buffer) => {
    waiting -= chunk.length;
    if (waiting <= 0) arrived();
  });
  const closed = new Promise<never>((_resolve, reject) =>
    socket.once('close', () => reject(new Error('the echo connection closed'))),
  );
  closed.catch(() => {});
  const times: number[] = [];
  for (let index = 0; index < count && !signal.aborted; index++) {
    waiting = messageBytes;
    const back = new Promise<void>((resolve) => (arrived = resolve));
    const sent = performance.now();
    socket.write(message);
    await Promise.race([back, closed]);
    times.push((performance.now() - sent) * 1000);
  }
  socket.destroy();
  return times;
}

export const channelScenario: Scenario<ChannelResult> = {
  name: 'channel',
  steps: (config) => config.channel.messageSizes.length * config.channel.streams.length * 2 + 2,
  estimateSeconds: (config) =>
    config.channel.messageSizes.length * config.channel.streams.length * 2 * (config.channel.seconds + 0.2) + 3,
  empty: (config) => ({
    complete: false,
    error: null,
    channel: config.channel.externalSocket === null ? 'unix relay chain' : 'external socket',
    description:
      config.channel.externalSocket === null
        ? 'parent relay (mpg enclave relay) -> Unix socket standing in for vsock -> enclave relay (mpg enclave relay) -> TCP loopback -> channel sink, each its own process'
        : `the Unix socket ${config.channel.externalSocket}, whose far end runs mpg loadtest channel-sink`,
    throughput: [],
    ratios: [],
    roundTrip: [],
  }),
  async run(context, section) {
    const { config, env, signal } = context;
    const started: ChildProcess[] = [];
    const directory = await mkdtemp(join(tmpdir(), 'mpg-loadtest-channel-'));
    try {
      const sink = spawnPinned(['loadtest', 'channel-sink', '--port', '0'], config.cpus.enclave, env, context.stderr);
      started.push(sink);
      const [, port = ''] = await waitForLine(
        sink,
        /channel sink listening on tcp:127\.0\.0\.1:(\d+)/,
        'the channel sink',
      );
      const parts: Record<string, ProcessTreeRoot> = { 'channel sink': { pid: sink.pid!, by: 'process' } };
      let channelSocket = config.channel.externalSocket;
      if (channelSocket === null) {
        const standin = join(directory, 'vsock.sock');
        channelSocket = join(directory, 'enclave.sock');
        const enclaveRelay = spawnPinned(
          ['enclave', 'relay', '--listen-socket', standin, '--target-host', '127.0.0.1', '--target-port', port],
          config.cpus.enclave,
          env,
          context.stderr,
        );
        started.push(enclaveRelay);
        await waitForLine(enclaveRelay, /relay listening/, 'the enclave relay');
        const parentRelay = spawnPinned(
          ['enclave', 'relay', '--listen-socket', channelSocket, '--target-socket', standin],
          config.cpus.gateway,
          env,
          context.stderr,
        );
        started.push(parentRelay);
        await waitForLine(parentRelay, /relay listening/, 'the parent relay');
        parts['enclave relay'] = { pid: enclaveRelay.pid!, by: 'process' };
        parts['parent relay'] = { pid: parentRelay.pid!, by: 'process' };
      }
      const connects = {
        tcp: () => createConnection({ host: '127.0.0.1', port: Number(port), allowHalfOpen: true }),
        channel: () => createConnection({ path: channelSocket, allowHalfOpen: true }),
      } as const;

      for (const messageBytes of config.channel.messageSizes) {
        for (const streams of config.channel.streams) {
          const measured: Partial<Record<'tcp' | 'channel', number>> = {};
          for (const transport of ['tcp', 'channel'] as const) {
            if (signal.aborted) return;
            const label = `${transport}, ${messageBytes} B messages, ${streams} stream${streams > 1 ? 's' : ''}`;
            context.setStep(label);
            context.progress.step(label, config.channel.seconds);
            const meter = partsCpuMeter(parts);
            const figures = await bulk(connects[transport], messageBytes, streams, config.channel.seconds, signal);
            if (signal.aborted) return;
            section.throughput.push({ transport, messageBytes, streams, ...figures, cpu: meter() });
            measured[transport] = figures.gbitPerSecond;
          }
          if (measured.tcp !== undefined && measured.channel !== undefined && measured.tcp > 0) {
            section.ratios.push({ messageBytes, streams, channelOverTcp: round3(measured.channel / measured.tcp) });
          }
        }
      }
      for (const transport of ['tcp', 'channel'] as const) {
        if (signal.aborted) return;
        const label = `${transport}, ${config.channel.rttCount} round trips of ${config.channel.rttBytes} B`;
        context.setStep(label);
        context.progress.step(label);
        const times = await roundTrips(connects[transport], config.channel.rttBytes, config.channel.rttCount, signal);
        if (signal.aborted) return;
        section.roundTrip.push({
          transport,
          messageBytes: config.channel.rttBytes,
          count: times.length,
          latencyUs: summariseLatencies(times),
        });
      }
      section.complete = true;
    } finally {
      await Promise.all(started.map((child) => stopChild(child, STOP_GRACE_MS)));
      await rm(directory, { recursive: true, force: true });
    }
  },
};
