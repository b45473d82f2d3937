// --ohttp-key-id: a byte, and only for an enclave's model server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseModelServerConfig } from '../../model-server/index.js';

test('--ohttp-key-id takes 0-255 for an enclave, and is refused outside one', () => {
  assert.equal(parseModelServerConfig(['--enclave', 'emulated', '--ohttp-key-id', '0'], {}).config.ohttpKeyId, 0);
  assert.equal(parseModelServerConfig(['--enclave', 'nitro'], { MPG_OHTTP_KEY_ID: '255' }).config.ohttpKeyId, 255);
  assert.equal(parseModelServerConfig(['--enclave', 'emulated'], {}).config.ohttpKeyId, undefined, 'random at boot');
  assert.throws(
    () => parseModelServerConfig(['--enclave', 'emulated', '--ohttp-key-id', '256'], {}),
    /--ohttp-key-id must be/,
  );
  assert.throws(
    () => parseModelServerConfig(['--enclave', 'emulated', '--ohttp-key-id', '-1'], {}),
    /--ohttp-key-id must be/,
  );
  assert.throws(() => parseModelServerConfig(['--ohttp-key-id', '3'], {}), /--ohttp-key-id applies to an enclave/);
});
