// `mpg gateway`: the production entry point on the parent EC2 instance.
import type { Command } from '../common/index.js';
import { OptionError, formatOptionsHelp, stopOnSignals } from '../common/index.js';
import { gatewayOptions, parseGatewayConfig } from './config.js';
import { OPEN_POLICY, PolicyError, loadPolicyFile } from './policy.js';

const usage = () =>
  [
    'Usage: mpg gateway --public-upstream URL --secure-upstream URL [options]',
    '',
    'Routes POST /predict-public and POST /predict-secure to the public and secure upstreams',
    "(their /predict), by path, privacy header and tenant policy; the most private signal wins",
    'and a secure request is never sent to a public upstream. GET /healthz, /readyz, /metrics.',
    'Every option has an MPG_ environment twin.',
    '',
    'Options:',
    formatOptionsHelp(gatewayOptions),
  ].join('\n');

export const gatewayCommand: Command = {
  name: 'gateway',
  summary: 'Route public and secure inference traffic (the parent instance runs this)',
  async run({ argv, env, stdout, stderr }) {
    let parsed;
    let policy = OPEN_POLICY;
    try {
      parsed = parseGatewayConfig(argv, env);
      if (parsed.help) {
        stdout.write(usage() + '\n');
        return 0;
      }
      if (parsed.config.policy) policy = await loadPolicyFile(parsed.config.policy);
    } catch (error) {
      if (!(error instanceof OptionError) && !(error instanceof PolicyError)) throw error;
      stderr.write(`mpg gateway: ${error.message}\n`);
      return 2;
    }
    const config = parsed.config;
    const { createGateway } = await import('./app.js');
    const gateway = createGateway(config, policy);
    const log = gateway.app.log;
    const address = await gateway.app.listen({ host: config.host, port: config.port });
    stdout.write(`gateway listening on ${address}\n`);
    log.info(
      { public: config.publicUpstream, secure: config.secureUpstream, policy: policy.source, tenants: policy.tenants.length },
      'routing',
    );
    const shutdown = stopOnSignals(() => gateway.close(), log);
    await gateway.start();
    return shutdown.stopped;
  },
};
