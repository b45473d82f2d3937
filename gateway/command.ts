// `mpg gateway`: the production entry point on the parent EC2 instance.
import { formatOptionsHelp, optionCommand, stopOnSignals } from '../common/index.js';
import { gatewayOptions, parseGatewayConfig } from './config.js';
import { OPEN_POLICY, loadPolicyFile } from './policy.js';
import { loadAttestationTrust } from './attestation-trust.js';
import { readTlsFiles } from './tls.js';

const usage = () =>
  [
    'Usage: mpg gateway --public-upstream URL --secure-upstream URL [options]',
    '',
    'Routes POST /predict-public and POST /predict-secure to the public and secure upstreams',
    '(their /predict), by path, privacy header and tenant policy; the most private signal wins',
    'and a secure request is never sent to a public upstream. GET /healthz, /readyz, /metrics.',
    'Every option has an MPG_ environment twin.',
    '',
    'Options:',
    formatOptionsHelp(gatewayOptions),
  ].join('\n');

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export const gatewayCommand = optionCommand({
  path: 'gateway',
  summary: 'Route public and secure inference traffic (the parent instance runs this)',
  usage,
  async parse(argv, env) {
    const { config, help } = parseGatewayConfig(argv, env);
    // The policy is checked before anything listens: a bad file stops the gateway (exit 2).
    const policy = !help && config.policy ? await loadPolicyFile(config.policy) : OPEN_POLICY;
    // So are the pinned measurements: a gateway that cannot attest never starts.
    const attestationTrust = help ? undefined : await loadAttestationTrust(config);
    // And the certificate: a gateway that cannot serve TLS as asked never starts.
    const tls = help ? undefined : readTlsFiles(config);
    return { config, policy, help, attestationTrust, tls };
  },
  async run({ config, policy, attestationTrust, tls }, { stdout }) {
    const { buildGateway } = await import('./app.js');
    const gateway = buildGateway(config, policy, {
      ...(attestationTrust ? { attestationTrust } : {}),
      ...(tls ? { tls } : {}),
    });
    const log = gateway.app.log;
    // The admin listener first: once the traffic line is printed, everything is up.
    if (gateway.admin) {
      const adminAddress = await gateway.admin.listen({ host: config.adminHost, port: config.adminPort! });
      stdout.write(`admin listening on ${adminAddress}\n`);
    } else if (!isLoopback(config.host)) {
      log.warn(
        { host: config.host },
        '/metrics and /readyz are served on the traffic listener to every client; give --admin-port to move them to an admin listener',
      );
    }
    const address = await gateway.app.listen({ host: config.host, port: config.port });
    stdout.write(`gateway listening on ${address}\n`);
    log.info(
      {
        public: config.publicUpstream,
        secure: config.secureUpstream,
        policy: policy.source,
        tenants: policy.tenants.length,
        attestation: attestationTrust?.mode,
      },
      'routing',
    );
    const shutdown = stopOnSignals(() => gateway.close(), log);
    await gateway.start();
    return shutdown.stopped;
  },
});
