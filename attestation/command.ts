// `mpg attestation verify FILE`: the verifier as an operator's command. Prints the decoded
// document and every check; exits 0 only when every check that ran passed, 1 when one failed,
// 2 for bad options or an unreadable file.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { CommandContext } from '../common/index.js';
import {
  CodedError,
  OptionError,
  commandGroup,
  formatOptionsHelp,
  integer,
  optionCommand,
  parseCommandLine,
  text,
  toggle,
} from '../common/index.js';
import type { AttestationDocument } from './document.js';
import type { PcrMeasurements } from './measurements.js';
import { readMeasurementsFile } from './measurements.js';
import type { CheckName, VerificationResult } from './verifier.js';
import { verifyAttestation } from './verifier.js';

export const verifyOptions = {
  pcrs: text({
    description: 'Measurements file that "mpg enclave build" (nitro-cli build-enclave) wrote; PCR0/1/2 must equal it',
    placeholder: 'FILE',
  }),
  at: text({
    description:
      'Verification time (ISO 8601) for certificate validity and freshness, to re-verify a recorded document; default now',
    placeholder: 'ISO-TIME',
    env: false,
  }),
  nonce: text({
    description: 'The nonce the document must carry',
    placeholder: 'HEX',
    env: false,
    check: (value) => (/^([0-9a-fA-F]{2})+$/.test(value) ? undefined : 'must be an even number of hex digits'),
  }),
  root: text({
    description: 'Trust this root certificate (PEM or DER file) instead of the AWS Nitro Enclaves root G1',
    placeholder: 'FILE',
  }),
  allowDebugMode: toggle({ description: 'Accept all-zero PCR0/1/2 (an enclave in debug mode)' }),
  maxAgeMs: integer({
    description: 'Refuse a document whose timestamp is older than this at the verification time',
    unit: 'ms',
    min: 0,
  }),
  requirePublicKey: toggle({ description: 'Refuse a document without public_key' }),
  json: toggle({ description: 'Print one JSON object instead of text', env: false }),
};

/** Why each policy check is skipped, in the command's words. */
const SKIPPED_BECAUSE: Partial<Record<CheckName, string>> = {
  pcrs: 'no --pcrs given',
  nonce: 'no --nonce given',
  freshness: 'no --max-age-ms given',
  public_key: 'no --require-public-key given',
};

interface ParsedVerify {
  help: boolean;
  file: string;
  options: ReturnType<typeof parseCommandLine<typeof verifyOptions>>['options'];
  at: Date | undefined;
}

function parseVerify(argv: readonly string[], env: CommandContext['env']): ParsedVerify {
  const { options, positionals, help } = parseCommandLine(verifyOptions, argv, env, { maxPositionals: 1 });
  if (help) return { help, file: '', options, at: undefined };
  if (positionals.length === 0) throw new OptionError('give the attestation document FILE (raw CBOR or base64)');
  let at: Date | undefined;
  if (options.at !== undefined) {
    at = new Date(options.at);
    if (!/^\d{4}-\d{2}-\d{2}/.test(options.at) || Number.isNaN(at.getTime()))
      throw new OptionError(`--at must be an ISO 8601 time such as 2026-02-06T09:00:00Z, got "${options.at}"`);
  }
  return { help, file: positionals[0]!, options, at };
}

/** Raw CBOR (starts with tag 18 or a 4-item array) or base64 / base64url text. */
export function decodeDocumentFile(contents: Buffer): { bytes: Uint8Array; encoding: 'cbor' | 'base64' } {
  if (contents[0] === 0xd2 || contents[0] === 0x84) return { bytes: contents, encoding: 'cbor' };
  const textual = contents.toString('latin1').replace(/\s+/g, '');
  if (textual !== '' && /^[A-Za-z0-9+/_-]+=*$/.test(textual))
    return {
      bytes: Buffer.from(textual, textual.includes('-') || textual.includes('_') ? 'base64url' : 'base64'),
      encoding: 'base64',
    };
  return { bytes: contents, encoding: 'cbor' };
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

function describeCertificate(der: Uint8Array): Record<string, string> {
  try {
    const certificate = new X509Certificate(der);
    return {
      subject: certificate.subject.replace(/\n/g, ', '),
      validFrom: new Date(certificate.validFrom).toISOString(),
      validTo: new Date(certificate.validTo).toISOString(),
    };
  } catch {
    return { subject: '(not a parseable certificate)' };
  }
}

/** The document for printing: PCRs in hex, certificates by subject, times in ISO; user_data by size only. */
function describeDocument(document: AttestationDocument) {
  return {
    moduleId: document.moduleId,
    digest: document.digest,
    timestamp: new Date(document.timestamp).toISOString(),
    pcrs: Object.fromEntries([...document.pcrs].map(([index, value]) => [index, hex(value)])),
    certificate: describeCertificate(document.certificate),
    cabundle: document.cabundle.map(describeCertificate),
    publicKey: document.publicKey === null ? null : `${document.publicKey.length} bytes`,
    userData: document.userData === null ? null : `${document.userData.length} bytes`,
    nonce: document.nonce === null ? null : hex(document.nonce),
  };
}

function printText(
  stdout: NodeJS.WritableStream,
  file: string,
  encoding: string,
  size: number,
  result: VerificationResult,
): void {
  const lines = [
    `Attestation document ${file} (${size} bytes, ${encoding === 'cbor' ? 'raw CBOR' : 'base64'}), verified at ${result.at.toISOString()}`,
  ];
  if (result.document) {
    const document = describeDocument(result.document);
    lines.push(
      `  module_id    ${document.moduleId}`,
      `  digest       ${document.digest}`,
      `  timestamp    ${document.timestamp}`,
      '  pcrs',
    );
    for (const [index, value] of Object.entries(document.pcrs))
      lines.push(`    ${index.padStart(2)}  ${/^0+$/.test(value) ? '(all zeros)' : value}`);
    lines.push(
      `  certificate  ${document.certificate.subject} (valid ${document.certificate.validFrom ?? '?'} to ${document.certificate.validTo ?? '?'})`,
      '  cabundle',
    );
    document.cabundle.forEach((certificate, index) =>
      lines.push(
        `    [${index}] ${certificate.subject} (valid ${certificate.validFrom ?? '?'} to ${certificate.validTo ?? '?'})`,
      ),
    );
    lines.push(
      `  public_key   ${document.publicKey ?? 'null'}`,
      `  user_data    ${document.userData ?? 'null'}`,
      `  nonce        ${document.nonce ?? 'null'}`,
    );
  }
  lines.push('Checks');
  for (const check of result.checks)
    lines.push(
      `  ${check.status.padEnd(8)} ${check.name.padEnd(11)} ${check.detail}${check.reason ? ` [reason: ${check.reason}]` : ''}`,
    );
  if (!result.ok) lines.push('  (later checks not run: verification stops at the first failure)');
  const notPinned = result.checks.some((check) => check.name === 'pcrs' && check.status === 'skipped');
  lines.push(
    result.ok
      ? `Result: VERIFIED (every check that ran passed)${notPinned ? '. NOT PINNED: no PCRs were compared, so this only says a genuine enclave signed it, not what that enclave runs' : ''}`
      : `Result: NOT VERIFIED (${result.reason})`,
  );
  stdout.write(lines.join('\n') + '\n');
}

const verifyCommand = optionCommand({
  path: 'attestation verify',
  options: verifyOptions,
  summary: 'Verify an attestation document: COSE_Sign1 ES384, the chain to the AWS root, PCRs, nonce, freshness',
  usage: () =>
    [
      'Usage: mpg attestation verify FILE [--pcrs FILE] [--at ISO-TIME] [--nonce HEX] [--root FILE] [--allow-debug-mode] [--max-age-ms N] [--require-public-key] [--json]',
      '',
      'FILE holds one NSM attestation document, raw CBOR or base64. Prints the decoded document and each',
      'check (passed, failed or skipped, and why); checks stop at the first failure. Policy checks given',
      'nothing to compare against are skipped. Exit 0 when every check that ran passed, 1 when one failed,',
      '2 for bad options or an unreadable file.',
      '',
      'Options:',
      formatOptionsHelp(verifyOptions),
    ].join('\n'),
  parse: parseVerify,
  async run({ file, options, at }, { stdout, stderr }) {
    const failUsage = (message: string) => {
      stderr.write(`mpg attestation verify: ${message}\n`);
      return 2;
    };
    let contents: Buffer;
    try {
      contents = await readFile(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return failUsage(
        `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? (error as Error).message)}`,
      );
    }
    if (contents.length === 0) return failUsage(`${file} is empty`);
    let expectedPcrs: PcrMeasurements | undefined;
    let trustedRoots: Uint8Array[] | undefined;
    try {
      if (options.pcrs !== undefined) expectedPcrs = await readMeasurementsFile(options.pcrs);
      if (options.root !== undefined) trustedRoots = [await readFile(options.root)];
    } catch (error) {
      if (error instanceof CodedError) return failUsage(error.message);
      return failUsage(
        `cannot read --root ${options.root}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    const { bytes, encoding } = decodeDocumentFile(contents);
    let result: VerificationResult;
    try {
      result = verifyAttestation(bytes, {
        trustedRoots,
        at,
        expectedPcrs,
        allowDebugMode: options.allowDebugMode,
        nonce: options.nonce === undefined ? undefined : Buffer.from(options.nonce, 'hex'),
        maxAgeMs: options.maxAgeMs,
        requirePublicKey: options.requirePublicKey,
      });
    } catch (error) {
      if (error instanceof CodedError) return failUsage(error.message);
      throw error;
    }
    for (const check of result.checks)
      if (check.status === 'skipped' && SKIPPED_BECAUSE[check.name]) check.detail = SKIPPED_BECAUSE[check.name]!;
    if (options.json) {
      const document = result.document ? describeDocument(result.document) : null;
      stdout.write(
        JSON.stringify(
          {
            file,
            encoding,
            bytes: bytes.length,
            at: result.at.toISOString(),
            ok: result.ok,
            reason: result.reason ?? null,
            document,
            checks: result.checks,
          },
          null,
          2,
        ) + '\n',
      );
    } else {
      printText(stdout, file, encoding, bytes.length, result);
    }
    return result.ok ? 0 : 1;
  },
});

export const attestationCommand = commandGroup('attestation', 'Verify Nitro Enclaves attestation documents', [
  verifyCommand,
]);
