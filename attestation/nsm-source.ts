// Where an enclave's attestation documents come from: the Nitro Secure Module through /dev/nsm
// (a tiny native helper does the one ioctl; the CBOR is built and read here), or the emulated NSM.
import { execFile } from 'node:child_process';
import type { CborValue } from './cbor.js';
import { decodeCbor, encodeCbor } from './cbor.js';
import type { AttestationRequest, EmulatedNsm } from './emulated-nsm.js';
import { EMULATED_NSM_WARNING, createEmulatedNsm } from './emulated-nsm.js';
import type { PcrMeasurements } from './measurements.js';

export interface NsmSource {
  readonly kind: 'nitro' | 'emulated';
  /** A fresh attestation document (COSE_Sign1, CBOR) carrying these fields. */
  attest(request: AttestationRequest): Promise<Uint8Array>;
}

/** The NSM said no, or could not be reached; the message says which. */
export class NsmError extends Error {
  override name = 'NsmError';
}

export const DEFAULT_NSM_HELPER = '/usr/local/bin/nsm-request';
const NSM_TIMEOUT_MS = 5_000;
/** The NSM's request limit (NSM_REQUEST_MAX_SIZE). */
const NSM_REQUEST_MAX_BYTES = 0x1000;

/** The NSM API's request: {"Attestation": {"user_data", "nonce", "public_key"}}, absent fields null. */
export function nsmAttestationRequest(request: AttestationRequest): Uint8Array {
  const field = (value: Uint8Array | null | undefined): CborValue => (value && value.length > 0 ? value : null);
  return encodeCbor(
    new Map<string, CborValue>([
      [
        'Attestation',
        new Map<string, CborValue>([
          ['user_data', field(request.userData)],
          ['nonce', field(request.nonce)],
          ['public_key', field(request.publicKey)],
        ]),
      ],
    ]),
  );
}

/** The document from the NSM API's response {"Attestation": {"document": bstr}}; NsmError for {"Error": "..."} or anything else. */
export function nsmAttestationDocument(response: Uint8Array): Uint8Array {
  let decoded: CborValue;
  try {
    decoded = decodeCbor(response);
  } catch (error) {
    throw new NsmError(`the NSM's response is not CBOR: ${(error as Error).message}`);
  }
  if (typeof decoded === 'string') throw new NsmError(`the NSM answered ${decoded}`);
  if (!(decoded instanceof Map)) throw new NsmError("the NSM's response is not a map");
  const error = decoded.get('Error');
  if (error !== undefined)
    throw new NsmError(`the NSM refused the request: ${typeof error === 'string' ? error : 'unknown error'}`);
  const attestation = decoded.get('Attestation');
  const document = attestation instanceof Map ? attestation.get('document') : undefined;
  if (!(document instanceof Uint8Array) || document.length === 0)
    throw new NsmError("the NSM's response has no Attestation.document");
  return document;
}

/** The real NSM, through the nsm-request helper built into the enclave image. */
export function createNitroNsmSource(helper = DEFAULT_NSM_HELPER): NsmSource {
  return {
    kind: 'nitro',
    attest(request) {
      const input = nsmAttestationRequest(request);
      if (input.length > NSM_REQUEST_MAX_BYTES)
        return Promise.reject(
          new NsmError(`the request is ${input.length} bytes; the NSM takes at most ${NSM_REQUEST_MAX_BYTES}`),
        );
      return new Promise((resolve, reject) => {
        const child = execFile(
          helper,
          [],
          { encoding: 'buffer', timeout: NSM_TIMEOUT_MS, maxBuffer: 64 * 1024 },
          (error, stdout, stderr) => {
            if (error) {
              const why =
                (error as NodeJS.ErrnoException).code === 'ENOENT'
                  ? `${helper} is not installed (it is built into the enclave image)`
                  : stderr.toString().trim() || error.message;
              reject(new NsmError(`the NSM could not be asked: ${why}`));
              return;
            }
            try {
              resolve(nsmAttestationDocument(stdout));
            } catch (caught) {
              reject(caught instanceof Error ? caught : new NsmError(String(caught)));
            }
          },
        );
        child.stdin!.end(input);
      });
    },
  };
}

export interface EmulatedNsmSource extends NsmSource {
  readonly nsm: EmulatedNsm;
  readonly warning: string;
}

/** The emulated NSM with these measurements and a throwaway root created now. */
export function createEmulatedNsmSource(measurements: PcrMeasurements): EmulatedNsmSource {
  const nsm = createEmulatedNsm({ measurements });
  return {
    kind: 'emulated',
    nsm,
    warning: EMULATED_NSM_WARNING,
    attest: (request) => Promise.resolve(nsm.attest(request)),
  };
}
