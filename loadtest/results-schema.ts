// The load-test result, described once: these TypeBox schemas are the source of truth. The
// TypeScript types (results.ts) are derived from them, every write and read is checked against
// them with Ajv, and loadtest/results.schema.json is generated from them (npm run docs) for those
// who read results without this code.
import type { Static, TSchema, TUnsafe } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';

/** A value or null, as one JSON Schema type list (`{"type": ["number", "null"]}`), typed `T | null`. */
function Nullable<T extends TSchema>(schema: T, description?: string): TUnsafe<Static<T> | null> {
  return Type.Unsafe<Static<T> | null>({
    ...schema,
    type: [schema.type as string, 'null'],
    ...(description ? { description } : {}),
  });
}

export const LatencySummarySchema = Type.Object(
  {
    count: Type.Integer({ minimum: 0 }),
    min: Nullable(Type.Number({ minimum: 0 })),
    mean: Nullable(Type.Number({ minimum: 0 })),
    p50: Nullable(Type.Number({ minimum: 0 })),
    p90: Nullable(Type.Number({ minimum: 0 })),
    p99: Nullable(Type.Number({ minimum: 0 })),
    max: Nullable(Type.Number({ minimum: 0 })),
  },
  {
    description:
      'Latency of the good answers only; null values when there were none. Milliseconds for HTTP, microseconds for channel round trips.',
    additionalProperties: false,
  },
);

export const CoresUsedSchema = Type.Unsafe<Record<string, number>>({
  type: 'object',
  description:
    "CPU used over the step, in cores (CPU seconds / wall seconds): 'load generator' (this harness), each part of the stack (its whole process tree), and 'others' (everything else on the machine).",
  properties: { 'load generator': { type: 'number', minimum: 0 } },
  required: ['load generator'],
  additionalProperties: { type: 'number', minimum: 0 },
});

export const RouteFiguresSchema = Type.Object(
  {
    sent: Type.Integer({ minimum: 0 }),
    ok: Type.Integer({
      description: 'Answers checked good: 200, a predictions array of 2, and through the gateway the route asked for.',
      minimum: 0,
    }),
    non2xx: Type.Integer({ minimum: 0 }),
    mismatches: Type.Integer({
      description: '2xx answers that were not the expected JSON, or came from the other route.',
      minimum: 0,
    }),
    errors: Type.Integer({ description: 'Connection errors and timeouts.', minimum: 0 }),
    timeouts: Type.Integer({ minimum: 0 }),
    latencyMs: LatencySummarySchema,
  },
  { additionalProperties: false },
);

export const PacedFiguresSchema = Type.Object(
  {
    seconds: Type.Number({ minimum: 0 }),
    sent: Type.Integer({ minimum: 0 }),
    sentPerSecond: Type.Number({
      description: 'Requests actually sent per second; below the offered rate, the generator fell behind.',
      minimum: 0,
    }),
    maxSendLagMs: Type.Number({ minimum: 0 }),
    routes: Type.Object(
      {
        public: RouteFiguresSchema,
        secure: RouteFiguresSchema,
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const HarnessConfigSchema = Type.Object(
  {
    scenarios: Type.Array(
      Type.Union([
        Type.Literal('startup'),
        Type.Literal('channel'),
        Type.Literal('memory'),
        Type.Literal('latency'),
        Type.Literal('mixed'),
      ]),
      { minItems: 1 },
    ),
    quick: Type.Boolean(),
    enclave: Type.Union([Type.Literal('emulated'), Type.Literal('nitro')]),
    threads: Type.Integer({ minimum: 1 }),
    cpus: Type.Object(
      {
        server: Nullable(Type.String(), 'A taskset CPU list, or null when not pinned.'),
        gateway: Nullable(Type.String(), 'A taskset CPU list, or null when not pinned.'),
        enclave: Nullable(Type.String(), 'A taskset CPU list, or null when not pinned.'),
        generator: Nullable(Type.String(), 'A taskset CPU list, or null when not pinned.'),
      },
      { additionalProperties: false },
    ),
    timeoutSeconds: Type.Integer({ minimum: 1 }),
    requestBody: Type.Object(
      {
        images: Type.Integer({ minimum: 1 }),
        topk: Type.Integer({ minimum: 1 }),
        imageBytes: Type.Integer({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    startup: Type.Object(
      {
        trials: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    channel: Type.Object(
      {
        messageSizes: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 }),
        streams: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 }),
        seconds: Type.Number({ minimum: 0 }),
        rttCount: Type.Integer({ minimum: 1 }),
        rttBytes: Type.Integer({ minimum: 1 }),
        externalSocket: Nullable(Type.String()),
      },
      { additionalProperties: false },
    ),
    latency: Type.Object(
      {
        concurrency: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 }),
        seconds: Type.Number({ minimum: 0 }),
        targets: Type.Array(
          Type.Union([
            Type.Literal('public direct'),
            Type.Literal('secure direct'),
            Type.Literal('public gateway'),
            Type.Literal('secure gateway'),
          ]),
        ),
      },
      { additionalProperties: false },
    ),
    mixed: Type.Object(
      {
        fractions: Type.Array(Type.Number({ minimum: 0, maximum: 1 }), { minItems: 1 }),
        rate: Type.Number({ minimum: 0 }),
        seconds: Type.Number({ minimum: 0 }),
        connections: Type.Integer({ minimum: 1 }),
      },
      { additionalProperties: false },
    ),
    memory: Type.Object(
      {
        startupSeconds: Type.Number({ minimum: 0 }),
        seconds: Type.Number({ minimum: 0 }),
        rate: Type.Number({ minimum: 0 }),
        secureFraction: Type.Number({ minimum: 0, maximum: 1 }),
        sampleEverySeconds: Type.Number({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    nitro: Nullable(
      Type.Object(
        {
          eif: Type.String(),
          memoryMiB: Type.Integer({ minimum: 1 }),
          cpuCount: Type.Integer({ minimum: 1 }),
          enclaveCid: Type.Integer({ minimum: 1 }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  {
    description: 'The configuration the run resolved from its flags, environment and defaults.',
    additionalProperties: false,
  },
);

export const LoadtestResultSchema = Type.Object(
  {
    schema: Type.Literal('mpg-loadtest-result/1'),
    complete: Type.Boolean({ description: 'Every scenario asked for ran to its end.' }),
    interrupted: Nullable(
      Type.Object(
        {
          signal: Type.Union([Type.Literal('SIGINT'), Type.Literal('SIGTERM')]),
          scenario: Nullable(Type.String()),
          step: Nullable(Type.String()),
        },
        { additionalProperties: false },
      ),
      'Set when a signal stopped the run: what was running.',
    ),
    startedAt: Type.String(),
    finishedAt: Nullable(Type.String()),
    durationSeconds: Nullable(Type.Number({ minimum: 0 })),
    command: Type.Array(Type.String()),
    machine: Type.Object(
      {
        cpuModel: Type.String(),
        cores: Type.Integer({ minimum: 1 }),
        memoryGiB: Type.Number({ minimum: 0 }),
        kernel: Type.String(),
        loadAverageAtStart: Type.Array(Type.Number({ minimum: 0 })),
        loadAverageAtEnd: Nullable(Type.Array(Type.Number({ minimum: 0 }))),
      },
      { additionalProperties: false },
    ),
    versions: Type.Object(
      {
        node: Type.String(),
        onnxruntime: Type.String(),
        gitCommit: Nullable(Type.String()),
        mpg: Type.String(),
      },
      { additionalProperties: false },
    ),
    config: HarnessConfigSchema,
    notes: Type.Array(Type.String()),
    scenarios: Type.Object(
      {
        startup: Type.Optional(
          Type.Object(
            {
              complete: Type.Boolean({ description: 'Every step of the scenario ran.' }),
              error: Nullable(Type.String(), 'Why the scenario stopped early when it failed; null otherwise.'),
              parts: Type.Array(
                Type.Object(
                  {
                    part: Type.Union([Type.Literal('public model server'), Type.Literal('enclave')]),
                    how: Type.Union([
                      Type.Literal('process'),
                      Type.Literal('emulated enclave'),
                      Type.Literal('nitro enclave'),
                    ]),
                    trialsSeconds: Type.Array(Type.Number({ minimum: 0 })),
                    minSeconds: Nullable(Type.Number({ minimum: 0 })),
                    medianSeconds: Nullable(Type.Number({ minimum: 0 })),
                    maxSeconds: Nullable(Type.Number({ minimum: 0 })),
                  },
                  { additionalProperties: false },
                ),
              ),
            },
            { description: 'Cold start to ready: spawn until /readyz answers 200.', additionalProperties: false },
          ),
        ),
        channel: Type.Optional(
          Type.Object(
            {
              complete: Type.Boolean({ description: 'Every step of the scenario ran.' }),
              error: Nullable(Type.String(), 'Why the scenario stopped early when it failed; null otherwise.'),
              channel: Type.Union([Type.Literal('unix relay chain'), Type.Literal('external socket')]),
              description: Type.String(),
              throughput: Type.Array(
                Type.Object(
                  {
                    transport: Type.Union([Type.Literal('tcp'), Type.Literal('channel')]),
                    messageBytes: Type.Integer({ minimum: 1 }),
                    streams: Type.Integer({ minimum: 1 }),
                    seconds: Type.Number({ minimum: 0 }),
                    bytes: Type.Integer({ minimum: 0 }),
                    gbitPerSecond: Type.Number({ minimum: 0 }),
                    cpu: CoresUsedSchema,
                  },
                  { additionalProperties: false },
                ),
              ),
              ratios: Type.Array(
                Type.Object(
                  {
                    messageBytes: Type.Integer({ minimum: 1 }),
                    streams: Type.Integer({ minimum: 1 }),
                    channelOverTcp: Type.Number({ minimum: 0 }),
                  },
                  { additionalProperties: false },
                ),
              ),
              roundTrip: Type.Array(
                Type.Object(
                  {
                    transport: Type.Union([Type.Literal('tcp'), Type.Literal('channel')]),
                    messageBytes: Type.Integer({ minimum: 1 }),
                    count: Type.Integer({ minimum: 0 }),
                    latencyUs: LatencySummarySchema,
                  },
                  { additionalProperties: false },
                ),
              ),
            },
            {
              description: 'Bulk throughput and small-message round trips of the enclave channel against loopback TCP.',
              additionalProperties: false,
            },
          ),
        ),
        memory: Type.Optional(
          Type.Object(
            {
              complete: Type.Boolean({ description: 'Every step of the scenario ran.' }),
              error: Nullable(Type.String(), 'Why the scenario stopped early when it failed; null otherwise.'),
              parts: Type.Array(
                Type.Object(
                  {
                    part: Type.String(),
                    source: Type.Union([Type.Literal('proc-rss'), Type.Literal('nitro-allotted')]),
                    startupPeakMiB: Nullable(Type.Number({ minimum: 0 })),
                    runtimeMeanMiB: Nullable(Type.Number({ minimum: 0 })),
                    runtimeMaxMiB: Nullable(Type.Number({ minimum: 0 })),
                    runtimeSamples: Type.Integer({ minimum: 0 }),
                  },
                  { additionalProperties: false },
                ),
              ),
              load: Nullable(
                Type.Object(
                  {
                    seconds: Type.Number({ minimum: 0 }),
                    sent: Type.Integer({ minimum: 0 }),
                    sentPerSecond: Type.Number({
                      description:
                        'Requests actually sent per second; below the offered rate, the generator fell behind.',
                      minimum: 0,
                    }),
                    maxSendLagMs: Type.Number({ minimum: 0 }),
                    routes: Type.Object(
                      {
                        public: RouteFiguresSchema,
                        secure: RouteFiguresSchema,
                      },
                      { additionalProperties: false },
                    ),
                    secureFraction: Type.Number({ minimum: 0, maximum: 1 }),
                    offeredRate: Type.Number({ minimum: 0 }),
                  },
                  { additionalProperties: false },
                ),
              ),
            },
            {
              description: "Each part's memory: peak in the first seconds after start, mean under light mixed load.",
              additionalProperties: false,
            },
          ),
        ),
        latency: Type.Optional(
          Type.Object(
            {
              complete: Type.Boolean({ description: 'Every step of the scenario ran.' }),
              error: Nullable(Type.String(), 'Why the scenario stopped early when it failed; null otherwise.'),
              steps: Type.Array(
                Type.Object(
                  {
                    target: Type.Union([
                      Type.Literal('public direct'),
                      Type.Literal('secure direct'),
                      Type.Literal('public gateway'),
                      Type.Literal('secure gateway'),
                    ]),
                    route: Type.Union([Type.Literal('public'), Type.Literal('secure')]),
                    via: Type.Union([Type.Literal('direct'), Type.Literal('gateway')]),
                    concurrency: Type.Integer({ minimum: 1 }),
                    queueSeconds: Nullable(
                      Type.Number({ minimum: 0 }),
                      'concurrency / good answers per second; longer than the step means the latency figures are censored.',
                    ),
                    seconds: Type.Number({ minimum: 0 }),
                    requestsPerSecond: Type.Number({ description: 'Good answers per second.', minimum: 0 }),
                    ok: Type.Integer({
                      description:
                        'Answers checked good: 200, a predictions array of 2, and through the gateway the route asked for.',
                      minimum: 0,
                    }),
                    non2xx: Type.Integer({ minimum: 0 }),
                    mismatches: Type.Integer({
                      description: '2xx answers that were not the expected JSON, or came from the other route.',
                      minimum: 0,
                    }),
                    errors: Type.Integer({ description: 'Connection errors and timeouts.', minimum: 0 }),
                    timeouts: Type.Integer({ minimum: 0 }),
                    latencyMs: LatencySummarySchema,
                    cpu: CoresUsedSchema,
                  },
                  { additionalProperties: false },
                ),
              ),
            },
            { description: "autocannon's closed loop per target and concurrency.", additionalProperties: false },
          ),
        ),
        mixed: Type.Optional(
          Type.Object(
            {
              complete: Type.Boolean({ description: 'Every step of the scenario ran.' }),
              error: Nullable(Type.String(), 'Why the scenario stopped early when it failed; null otherwise.'),
              steps: Type.Array(
                Type.Object(
                  {
                    secureFraction: Type.Number({ minimum: 0, maximum: 1 }),
                    offeredRate: Type.Number({ minimum: 0 }),
                    seconds: Type.Number({ minimum: 0 }),
                    sent: Type.Integer({ minimum: 0 }),
                    sentPerSecond: Type.Number({
                      description:
                        'Requests actually sent per second; below the offered rate, the generator fell behind.',
                      minimum: 0,
                    }),
                    maxSendLagMs: Type.Number({ minimum: 0 }),
                    routes: Type.Object(
                      {
                        public: RouteFiguresSchema,
                        secure: RouteFiguresSchema,
                      },
                      { additionalProperties: false },
                    ),
                    cpu: CoresUsedSchema,
                  },
                  { additionalProperties: false },
                ),
              ),
            },
            {
              description: 'One paced request stream through the gateway per secure fraction.',
              additionalProperties: false,
            },
          ),
        ),
      },
      { additionalProperties: false },
    ),
  },
  {
    description:
      'One run of mpg loadtest: the machine, versions, configuration and every figure. See docs/loadtest.md.',
    title: 'mpg loadtest result',
    additionalProperties: false,
  },
);
