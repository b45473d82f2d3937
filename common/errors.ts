// Coded errors shared by every component: a stable `code`, an HTTP status and a message that
// says how to fix the problem. Each component declares its own table (`MS_…`, `GW_…`, `ENC_…`).

export interface ErrorDefinition {
  statusCode: number;
  message: string;
}

export class CodedError extends Error {
  override name = 'CodedError';
  readonly code: string;
  readonly statusCode: number;
  /** Extra response headers, e.g. Retry-After for 503. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: string,
    statusCode: number,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.statusCode = statusCode;
    this.headers = options.headers ?? {};
  }

  toJSON(): { statusCode: number; code: string; message: string } {
    return { statusCode: this.statusCode, code: this.code, message: this.message };
  }
}

export type ErrorFactory = (
  detail?: string,
  options?: { cause?: unknown; headers?: Record<string, string> },
) => CodedError;

/**
 * Builds one factory per code. `detail`, when given, replaces the default message, so a caller
 * can name the exact field or limit at fault.
 */
export function defineErrors<const Table extends Record<string, ErrorDefinition>>(
  table: Table,
): { readonly [Code in keyof Table]: ErrorFactory } & { readonly table: Table } {
  const factories: Record<string, unknown> = { table };
  for (const [code, definition] of Object.entries(table)) {
    factories[code] = (detail?: string, options?: { cause?: unknown; headers?: Record<string, string> }) =>
      new CodedError(code, definition.statusCode, detail ?? definition.message, options);
  }
  return Object.freeze(factories) as { readonly [Code in keyof Table]: ErrorFactory } & { readonly table: Table };
}
