// Plaintext on the secure route: the gateway on the parent reads it, which is what the secure route
// exists to avoid. Still allowed by default for the seed study's clients; refused when
// --secure-plaintext refuse (the production example) or the tenant's policy says so, with a coded
// answer that names the client SDK. Only message/ohttp-req passes then: ciphertext the gateway
// forwards untouched to the attested enclave holding its key.
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import type { CodedError } from '../common/index.js';
import type { GatewayConfig } from './config.js';
import { gatewayErrors } from './errors.js';
import type { PrivacyPolicy } from './policy.js';

export const OHTTP_REQUEST_MEDIA_TYPE = 'message/ohttp-req';

/** Whether a Content-Type header names an OHTTP request (parameters and case ignored). */
export function isOhttpRequest(contentType: string | string[] | undefined): boolean {
  if (typeof contentType !== 'string') return false;
  return contentType.split(';')[0]!.trim().toLowerCase() === OHTTP_REQUEST_MEDIA_TYPE;
}

/** The refusal for a request already classified, or undefined when it may pass. */
export function securePlaintextRefusal(
  config: Pick<GatewayConfig, 'securePlaintext'>,
  policy: PrivacyPolicy,
): (request: FastifyRequest) => CodedError | undefined {
  const refusingTenants = new Set(
    policy.tenants.filter((tenant) => tenant.securePlaintext === 'refuse').map((tenant) => tenant.name),
  );
  return (request) => {
    const privacy = request.privacy;
    // Any request routed secure, whatever its path: a secure-only tenant's plaintext sent to
    // /predict-public is upgraded to the secure route and must be refused as well.
    if (privacy?.route !== 'secure' || isOhttpRequest(request.headers['content-type'])) return undefined;
    const refused =
      config.securePlaintext === 'refuse' || (privacy.tenant !== undefined && refusingTenants.has(privacy.tenant));
    return refused ? gatewayErrors.GW_SECURE_PLAINTEXT_REFUSED() : undefined;
  };
}

export type SecurePlaintextOptions = { config: Pick<GatewayConfig, 'securePlaintext'>; policy: PrivacyPolicy };

/**
 * The check, after the privacy classification: registered inside each predict route's plugin,
 * after its privacy hooks (fastify-plugin, so the hook applies to the route beside it).
 */
const securePlaintextPolicy: FastifyPluginCallback<SecurePlaintextOptions> = (instance, { config, policy }, done) => {
  const refusal = securePlaintextRefusal(config, policy);
  instance.addHook('onRequest', (request, _reply, next) => next(refusal(request)));
  done();
};

export default fastifyPlugin(securePlaintextPolicy, {
  name: 'mpg-secure-plaintext',
  fastify: '5.x',
  dependencies: ['mpg-privacy-hooks'],
});
