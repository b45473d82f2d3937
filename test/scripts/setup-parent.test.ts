// scripts/setup-parent.sh, the EC2 parent's set-up, run for real under bash: --dry-run against
// Amazon Linux 2023 and Ubuntu os-release fixtures, and real runs under a temporary --root with
// fake dnf/rpm/apt-get/systemctl/useradd/usermod/getent (test/fixtures/fake-parent-tools) that
// record their calls. Then the files it installs: shellcheck, systemd-analyze verify, the units'
// key directives, the gateway's example configuration and the Prometheus scrape configuration.
import assert from 'node:assert/strict';
import type { SpawnSyncReturns } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { parseGatewayConfig } from '../../gateway/index.js';

const REPO = new URL('../../../', import.meta.url).pathname;
const SCRIPT = join(REPO, 'scripts/setup-parent.sh');
const FAKE_TOOLS = join(REPO, 'test/fixtures/fake-parent-tools');
const OS_RELEASE = join(REPO, 'test/fixtures/os-release');
const UNITS = ['mpg-enclave-relay.service', 'mpg-enclave.service', 'mpg-gateway.service'];
const FAKED = ['dnf', 'rpm', 'apt-get', 'dpkg-query', 'systemctl', 'useradd', 'usermod', 'getent', 'systemd-tmpfiles'];
/** What a second run may still call: look-ups only. */
const QUERIES = /^(rpm -q|dpkg-query|getent|systemctl is-enabled|systemctl is-active)/;
const MIB = 1024 * 1024;
const SHELLCHECK = '/usr/bin/shellcheck';
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';

interface Parent {
  dir: string;
  /** The --root under which the script writes. */
  root: string;
  /** The --prefix, with an executable bin/mpg and an EIF, as an installed project would have. */
  prefix: string;
  env: Record<string, string>;
  /** Every faked tool's call since the last reset, as "tool arg arg". */
  calls(): Promise<string[]>;
  resetCalls(): Promise<void>;
  run(args: string[], options?: { env?: Record<string, string> }): SpawnSyncReturns<string>;
}

async function parent(t: TestContext): Promise<Parent> {
  const dir = await mkdtemp(join(tmpdir(), 'mpg-setup-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  const root = join(dir, 'root');
  const prefix = join(dir, 'prefix');
  const log = join(dir, 'calls.log');
  await mkdir(bin);
  await mkdir(root);
  await mkdir(join(prefix, 'bin'), { recursive: true });
  for (const tool of FAKED) await symlink(FAKE_TOOLS, join(bin, tool));
  await writeFile(join(prefix, 'bin/mpg'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  await writeFile(join(prefix, 'mpg-enclave.eif'), '');
  await truncate(join(prefix, 'mpg-enclave.eif'), 300 * MIB);
  const env = {
    PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    FAKE_PARENT_STATE: join(dir, 'state'),
    FAKE_PARENT_LOG: log,
    LC_ALL: 'C',
  };
  return {
    dir,
    root,
    prefix,
    env,
    async calls() {
      if (!existsSync(log)) return [];
      return (await readFile(log, 'utf8'))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => line.replaceAll('\t', ' '));
    },
    async resetCalls() {
      await rm(log, { force: true });
    },
    run(args, options = {}) {
      return spawnSync('bash', [SCRIPT, '--root', root, '--prefix', prefix, '--arch', 'x86_64', ...args], {
        encoding: 'utf8',
        env: { ...env, ...options.env },
      });
    },
  };
}

function osRelease(name: string): string[] {
  return ['--os-release', join(OS_RELEASE, name)];
}

function assertExit(result: SpawnSyncReturns<string>, code: number): void {
  assert.equal(result.status, code, `exit ${result.status}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
}

/** Every file under dir, relative, sorted. */
function filesUnder(dir: string, base = dir): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? filesUnder(path, base) : [path.slice(base.length + 1)];
    })
    .sort();
}

const INSTALLED = [
  'etc/mpg/enclave-relay.env',
  'etc/mpg/enclave.env',
  'etc/mpg/gateway.json',
  'etc/nitro_enclaves/allocator.yaml',
  'etc/systemd/system/mpg-enclave-relay.service',
  'etc/systemd/system/mpg-enclave.service',
  'etc/systemd/system/mpg-gateway.service',
  'etc/tmpfiles.d/mpg.conf',
];

// ---- dry run ----------------------------------------------------------------------------------

test('--dry-run on Amazon Linux 2023 prints the dnf install, allocator.yaml and the units, and writes nothing', async (t) => {
  const box = await parent(t);
  const result = box.run(['--dry-run', ...osRelease('amazon-linux-2023')]);
  assertExit(result, 0);
  const out = result.stdout;
  assert.match(out, /^dry run: nothing will be changed$/m);
  assert.match(out, /^would run: dnf install -y aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel docker socat$/m);
  assert.match(
    out,
    /^would write \/etc\/nitro_enclaves\/allocator\.yaml \(mode 0644\):\n(?: {4}.*\n)*? {4}memory_mib: 4096\n {4}cpu_count: 2$/m,
  );
  assert.match(out, /^would run: systemctl restart nitro-enclaves-allocator\.service$/m);
  assert.match(out, /^would run: useradd --system --user-group .* mpg$/m);
  assert.match(out, /^would run: usermod --append --groups ne mpg$/m);
  assert.match(out, /^would run: usermod --append --groups docker mpg$/m);
  for (const unit of UNITS) {
    assert.match(out, new RegExp(`^would write /etc/systemd/system/${unit} \\(mode 0644\\):$`, 'm'));
    assert.match(out, new RegExp(`^would run: systemctl enable ${unit}$`, 'm'));
  }
  assert.match(
    out,
    new RegExp(`^ {4}ExecStart=${box.prefix}/bin/mpg gateway --config /etc/mpg/gateway\\.json$`, 'm'),
    'units are shown with the prefix filled in',
  );
  assert.match(out, /^would run: systemctl daemon-reload$/m);
  assert.match(out, /^would write \/etc\/mpg\/enclave\.env \(mode 0644\):$/m);
  assert.match(out, /^dry run: \d+ action\(s\) would be taken; nothing was changed$/m);

  assert.deepEqual(filesUnder(box.root), [], 'nothing is written under --root');
  const mutating = (await box.calls()).filter((call) => !QUERIES.test(call));
  assert.deepEqual(mutating, [], 'only look-ups are run');
});

test('--dry-run on Ubuntu 24.04 prints the apt-get install, how to build nitro-cli, allocator.yaml and the units', async (t) => {
  const box = await parent(t);
  const result = box.run([
    '--dry-run',
    ...osRelease('ubuntu-24.04'),
    '--enclave-memory-mib',
    '8192',
    '--enclave-cpus',
    '4',
  ]);
  assertExit(result, 0);
  const out = result.stdout;
  assert.match(out, /^distribution: Ubuntu 24\.04\.1 LTS \(ubuntu\)/m);
  assert.match(out, /^would run: apt-get update$/m);
  assert.match(
    out,
    /^would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y docker\.io socat git make gcc libc6-dev curl$/m,
  );
  assert.match(out, /^todo: nitro-cli is not installed; Ubuntu has no package/m);
  assert.match(out, /git clone https:\/\/github\.com\/aws\/aws-nitro-enclaves-cli\.git/);
  assert.match(out, /make nitro-cli && make vsock-proxy/);
  assert.match(out, / {4}memory_mib: 8192\n {4}cpu_count: 4$/m);
  assert.match(
    out,
    / {4}MPG_MEMORY_MIB=8192\n {4}MPG_CPU_COUNT=4$/m,
    'enclave.env asks for what the allocator reserves',
  );
  for (const unit of UNITS) assert.match(out, new RegExp(`^would write /etc/systemd/system/${unit} `, 'm'));
  assert.doesNotMatch(out, /dnf/);
  assert.deepEqual(filesUnder(box.root), []);
  assert.deepEqual(
    (await box.calls()).filter((call) => !QUERIES.test(call)),
    [],
  );
});

test('--dry-run needs neither the packages nor root', async (t) => {
  const box = await parent(t);
  await chmod(box.dir, 0o755);
  await chmod(box.root, 0o755);
  // As nobody when the tests run as root, with only the system's own tools on PATH (no dnf here).
  const asNobody =
    process.getuid?.() === 0 && existsSync('/usr/bin/setpriv')
      ? ['/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
      : [];
  const command = [
    ...asNobody,
    'bash',
    SCRIPT,
    '--dry-run',
    '--root',
    box.root,
    '--prefix',
    '/opt/mixed-privacy-gateway',
    ...osRelease('amazon-linux-2023'),
  ];
  const result = spawnSync(command[0]!, command.slice(1), {
    encoding: 'utf8',
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
  });
  assertExit(result, 0);
  assert.match(result.stdout, /^would run: dnf install -y /m);
  assert.match(result.stdout, /^todo: \/opt\/mixed-privacy-gateway\/bin\/mpg is missing: install the project there/m);
  assert.match(result.stdout, /npm ci && npm run build/);
  assert.deepEqual(filesUnder(box.root), []);
});

// ---- real runs --------------------------------------------------------------------------------

test('a run writes allocator.yaml, the units and the env files; a second run changes nothing and restarts nothing', async (t) => {
  const box = await parent(t);
  const first = box.run(osRelease('amazon-linux-2023'));
  assertExit(first, 0);
  assert.match(first.stdout, /^done: \d+ change\(s\)$/m);
  assert.deepEqual(filesUnder(box.root), INSTALLED);

  const allocator = await readFile(join(box.root, 'etc/nitro_enclaves/allocator.yaml'), 'utf8');
  assert.match(allocator, /^---\n/);
  assert.match(allocator, /^memory_mib: 4096$/m);
  assert.match(allocator, /^cpu_count: 2$/m);
  assert.doesNotMatch(allocator, /^cpu_pool:/m);
  for (const unit of UNITS) {
    const text = await readFile(join(box.root, 'etc/systemd/system', unit), 'utf8');
    assert.doesNotMatch(text, /@[A-Z_]+@/, `${unit}: every placeholder is filled`);
  }
  const enclaveEnv = await readFile(join(box.root, 'etc/mpg/enclave.env'), 'utf8');
  assert.match(enclaveEnv, new RegExp(`^MPG_EIF=${box.prefix}/mpg-enclave\\.eif$`, 'm'));
  for (const line of [
    'MPG_MEMORY_MIB=4096',
    'MPG_CPU_COUNT=2',
    'MPG_ENCLAVE_CID=16',
    'MPG_VSOCK_PORT=5005',
    'MPG_ENCLAVE_SOCKET=/run/mpg/enclave.sock',
  ]) {
    assert.match(enclaveEnv, new RegExp(`^${line}$`, 'm'));
  }
  const relayEnv = await readFile(join(box.root, 'etc/mpg/enclave-relay.env'), 'utf8');
  assert.match(relayEnv, /^MPG_ENCLAVE_CID=16$/m);
  assert.match(relayEnv, /^MPG_VSOCK_PORT=5005$/m);
  assert.equal(statSync(join(box.root, 'etc/mpg/enclave.env')).mode & 0o777, 0o644);

  const calls = await box.calls();
  for (const expected of [
    'dnf install -y aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel docker socat',
    'systemctl enable nitro-enclaves-allocator.service',
    'systemctl restart nitro-enclaves-allocator.service',
    'systemctl enable --now docker.service',
    'useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mpg',
    'usermod --append --groups ne mpg',
    'usermod --append --groups docker mpg',
    `systemd-tmpfiles --create ${box.root}/etc/tmpfiles.d/mpg.conf`,
    'systemctl daemon-reload',
    ...UNITS.map((unit) => `systemctl enable ${unit}`),
  ]) {
    assert.ok(calls.includes(expected), `${expected}\nin:\n${calls.join('\n')}`);
  }
  assert.ok(
    calls.indexOf('systemctl daemon-reload') < calls.indexOf('systemctl enable mpg-gateway.service'),
    'daemon-reload before enable',
  );

  const before = await Promise.all(INSTALLED.map((file) => readFile(join(box.root, file), 'utf8')));
  const mtimes = INSTALLED.map((file) => statSync(join(box.root, file)).mtimeMs);
  await box.resetCalls();
  const second = box.run(osRelease('amazon-linux-2023'));
  assertExit(second, 0);
  assert.match(second.stdout, /^ok: allocator\.yaml already has memory_mib=4096 cpu_count=2$/m);
  assert.match(
    second.stdout,
    /^ok: nitro-enclaves-allocator\.service is enabled and allocator\.yaml is unchanged: no restart$/m,
  );
  assert.match(second.stdout, /^ok: packages already installed: /m);
  assert.match(second.stdout, /^ok: user mpg is in group ne$/m);
  for (const unit of UNITS) {
    assert.match(second.stdout, new RegExp(`^ok: /etc/systemd/system/${unit} is up to date$`, 'm'));
    assert.match(second.stdout, new RegExp(`^ok: ${unit} is enabled$`, 'm'));
  }
  assert.match(second.stdout, /^no changes: the parent instance is already set up$/m);
  assert.doesNotMatch(second.stdout, /^(run|write|change)[: ]/m, 'no step acts');
  assert.deepEqual(
    (await box.calls()).filter((call) => !QUERIES.test(call)),
    [],
    'a second run only looks',
  );
  assert.deepEqual(await Promise.all(INSTALLED.map((file) => readFile(join(box.root, file), 'utf8'))), before);
  assert.deepEqual(
    INSTALLED.map((file) => statSync(join(box.root, file)).mtimeMs),
    mtimes,
    'no file is rewritten',
  );
});

test("an operator's edited env and gateway files are kept; a unit that drifted is put back", async (t) => {
  const box = await parent(t);
  assertExit(box.run(osRelease('amazon-linux-2023')), 0);
  const relayEnv = join(box.root, 'etc/mpg/enclave-relay.env');
  const gatewayJson = join(box.root, 'etc/mpg/gateway.json');
  const relayUnit = join(box.root, 'etc/systemd/system/mpg-enclave-relay.service');
  const edited = 'MPG_ENCLAVE_CID=23\nMPG_VSOCK_PORT=6000\n';
  await writeFile(relayEnv, edited);
  await writeFile(gatewayJson, '{"port": 9090, "publicUpstream": ["http://10.0.1.12:8081"]}\n');
  const unit = await readFile(relayUnit, 'utf8');
  await writeFile(relayUnit, unit.replace(/^RestartSec=1$/m, 'RestartSec=30'));
  await box.resetCalls();

  const result = box.run(osRelease('amazon-linux-2023'));
  assertExit(result, 0);
  assert.equal(await readFile(relayEnv, 'utf8'), edited);
  assert.match(await readFile(gatewayJson, 'utf8'), /9090/);
  assert.match(
    result.stdout,
    /^ok: \/etc\/mpg\/enclave-relay\.env exists and differs from the template: kept as it is$/m,
  );
  assert.match(result.stdout, /^ok: \/etc\/mpg\/gateway\.json exists and differs from the template: kept as it is$/m);
  assert.match(
    result.stdout,
    /^change \/etc\/systemd\/system\/mpg-enclave-relay\.service:\n(?: {4}.*\n)*? {4}-RestartSec=30\n {4}\+RestartSec=1$/m,
    'the diff is shown',
  );
  assert.equal(await readFile(relayUnit, 'utf8'), unit);
  const calls = await box.calls();
  assert.ok(calls.includes('systemctl daemon-reload'));
  assert.ok(!calls.includes('systemctl restart nitro-enclaves-allocator.service'));
});

test('new enclave sizes rewrite allocator.yaml, restart the allocator, and flag an enclave.env that asks for more', async (t) => {
  const box = await parent(t);
  assertExit(box.run(osRelease('amazon-linux-2023')), 0);
  await box.resetCalls();
  const result = box.run([...osRelease('amazon-linux-2023'), '--enclave-memory-mib', '2048']);
  assertExit(result, 3);
  assert.match(
    result.stdout,
    /^change \/etc\/nitro_enclaves\/allocator\.yaml:\n(?: {4}.*\n)*? {4}-memory_mib: 4096\n {4}\+memory_mib: 2048$/m,
  );
  assert.match(await readFile(join(box.root, 'etc/nitro_enclaves/allocator.yaml'), 'utf8'), /^memory_mib: 2048$/m);
  assert.deepEqual(
    (await box.calls()).filter((call) => !QUERIES.test(call)),
    ['systemctl enable nitro-enclaves-allocator.service', 'systemctl restart nitro-enclaves-allocator.service'],
  );
  assert.match(
    result.stdout,
    /^todo: \/etc\/mpg\/enclave\.env asks for MPG_MEMORY_MIB=4096, more than the 2048 MiB reserved/m,
  );
});

test('an allocator.yaml with the right values (as the package writes it, comments and all) is left alone', async (t) => {
  const box = await parent(t);
  await mkdir(join(box.root, 'etc/nitro_enclaves'), { recursive: true });
  const packaged =
    '---\n# Enclave configuration file.\n#\n# How much memory to allocate for enclaves (in MiB).\nmemory_mib: 4096\n#\n# How many CPUs to reserve for enclaves.\ncpu_count: 2\n#\n# cpu_pool: 2,3,6-9\n';
  await writeFile(join(box.root, 'etc/nitro_enclaves/allocator.yaml'), packaged);
  const result = box.run(osRelease('amazon-linux-2023'));
  assertExit(result, 0);
  assert.equal(await readFile(join(box.root, 'etc/nitro_enclaves/allocator.yaml'), 'utf8'), packaged);
  assert.match(result.stdout, /^ok: allocator\.yaml already has memory_mib=4096 cpu_count=2$/m);
  assert.match(
    result.stdout,
    /^run: systemctl enable --now nitro-enclaves-allocator\.service$/m,
    'not yet enabled: enabled and started',
  );
  assert.ok(!(await box.calls()).includes('systemctl restart nitro-enclaves-allocator.service'));
});

test('on Ubuntu without nitro-cli the run does the rest, says what is left to do, and exits 3', async (t) => {
  const box = await parent(t);
  const result = box.run(osRelease('ubuntu-24.04'));
  assertExit(result, 3);
  const calls = await box.calls();
  assert.ok(calls.includes('apt-get install -y docker.io socat git make gcc libc6-dev curl'), calls.join('\n'));
  assert.ok(
    !calls.some((call) => call.includes('nitro-enclaves-allocator')),
    'the allocator unit does not exist before nitro-cli is installed',
  );
  assert.ok(!calls.includes('usermod --append --groups ne mpg'), 'the ne group does not exist yet');
  assert.ok(calls.includes('usermod --append --groups docker mpg'));
  assert.match(result.stdout, /^todo: nitro-cli is not installed/m);
  assert.match(result.stdout, /^todo: group ne does not exist yet/m);
  assert.match(result.stdout, /^\d step\(s\) need a hand: see the todo: lines above$/m);
  assert.deepEqual(filesUnder(box.root), INSTALLED);
});

// ---- refusals ---------------------------------------------------------------------------------

test('bad flags and values exit 2 with a message that names them', async (t) => {
  const box = await parent(t);
  const bigEif = join(box.dir, 'big.eif');
  await writeFile(bigEif, '');
  await truncate(bigEif, 1025 * MIB);
  const cases: [string[], RegExp][] = [
    [['--frobnicate'], /unknown option: --frobnicate/],
    [['--enclave-cpus'], /--enclave-cpus needs a value/],
    [['--enclave-cpus', '3'], /--enclave-cpus must be even on x86_64 \(3 given\)/],
    [['--enclave-cpus', 'two'], /--enclave-cpus must be a whole number, not 'two'/],
    [['--enclave-memory-mib', '0'], /--enclave-memory-mib must be a whole number of MiB, not '0'/],
    [['--enclave-memory-mib', '4096.5'], /--enclave-memory-mib must be a whole number of MiB/],
    [['--enclave-memory-mib=4096'], /write --enclave-memory-mib VALUE, not --enclave-memory-mib=4096/],
    [['--eif', bigEif], /--enclave-memory-mib 4096 is less than 4x the EIF's 1025 MiB .*: give at least 4100/],
    [['--eif', join(box.dir, 'missing.eif')], /--eif .*missing\.eif is not a file/],
    [['--prefix', 'relative/path'], /--prefix must be an absolute path/],
    [['--os-release', join(box.dir, 'nope')], /cannot read .*nope/],
  ];
  for (const [args, message] of cases) {
    const result = box.run(['--dry-run', ...osRelease('amazon-linux-2023'), ...args]);
    assertExit(result, 2);
    assert.match(result.stderr, message, args.join(' '));
    assert.match(result.stderr, /run with --help for the options/);
  }
  // Graviton has no hyper-threads: an odd count is fine there.
  assertExit(box.run(['--dry-run', ...osRelease('amazon-linux-2023'), '--arch', 'aarch64', '--enclave-cpus', '3']), 0);
  assertExit(
    box.run(['--dry-run', ...osRelease('amazon-linux-2023'), '--eif', bigEif, '--enclave-memory-mib', '4100']),
    0,
  );
  assert.deepEqual(filesUnder(box.root), []);
});

test('unsupported distributions exit 2 and say which are supported', async (t) => {
  const box = await parent(t);
  for (const [fixture, named] of [
    ['debian-12', /Debian GNU\/Linux 12 \(bookworm\) \(ID=debian VERSION_ID=12/],
    ['amazon-linux-2', /Amazon Linux 2 \(ID=amzn VERSION_ID=2,/],
  ] as const) {
    for (const dryRun of [['--dry-run'], []]) {
      const result = box.run([...dryRun, ...osRelease(fixture)]);
      assertExit(result, 2);
      assert.match(result.stderr, /unsupported distribution: /);
      assert.match(result.stderr, named);
      assert.match(result.stderr, /supported: Amazon Linux 2023 .*Ubuntu 22\.04 and 24\.04/);
    }
  }
  assert.deepEqual(await box.calls(), []);
  assert.deepEqual(filesUnder(box.root), []);
});

test('--help prints the options and exits 0', () => {
  const result = spawnSync('bash', [SCRIPT, '--help'], { encoding: 'utf8' });
  assertExit(result, 0);
  for (const flag of [
    '--dry-run',
    '--enclave-memory-mib',
    '--enclave-cpus',
    '--eif',
    '--prefix',
    '--os-release',
    '--root',
  ])
    assert.ok(result.stdout.includes(flag), flag);
});

// ---- what it installs -------------------------------------------------------------------------

test('shellcheck passes on every shell script under scripts/ and docker/', async () => {
  assert.ok(existsSync(SHELLCHECK), `${SHELLCHECK} is needed (Debian/Ubuntu: apt-get install shellcheck)`);
  const scripts: string[] = [];
  for (const dir of ['scripts', 'docker']) {
    for (const name of await readdir(join(REPO, dir))) if (name.endsWith('.sh')) scripts.push(join(dir, name));
  }
  assert.ok(
    scripts.includes('scripts/setup-parent.sh') && scripts.includes('docker/enclave-entrypoint.sh'),
    scripts.join(' '),
  );
  scripts.push('test/fixtures/fake-parent-tools');
  const result = spawnSync(SHELLCHECK, ['--shell=bash', ...scripts], { cwd: REPO, encoding: 'utf8' });
  assertExit(result, 0);
});

/** The [Section] Key=value pairs of a unit file; repeated keys keep every value. */
function parseUnit(text: string): Map<string, string[]> {
  const directives = new Map<string, string[]>();
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) section = header[1]!;
    const pair = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (pair) directives.set(`${section}.${pair[1]}`, [...(directives.get(`${section}.${pair[1]}`) ?? []), pair[2]!]);
  }
  return directives;
}

test('the installed units carry their key directives and pass systemd-analyze verify', async (t) => {
  const box = await parent(t);
  assertExit(box.run(osRelease('amazon-linux-2023')), 0);
  const unitDir = join(box.root, 'etc/systemd/system');
  const unit = async (name: string) => parseUnit(await readFile(join(unitDir, name), 'utf8'));
  const expect = (directives: Map<string, string[]>, expected: Record<string, string>) => {
    for (const [key, value] of Object.entries(expected)) assert.deepEqual(directives.get(key), [value], key);
  };

  expect(await unit('mpg-enclave-relay.service'), {
    'Service.ExecStart':
      '/usr/bin/socat UNIX-LISTEN:/run/mpg/enclave.sock,fork,mode=600,unlink-early,user=mpg VSOCK-CONNECT:${MPG_ENCLAVE_CID}:${MPG_VSOCK_PORT}',
    'Service.EnvironmentFile': '/etc/mpg/enclave-relay.env',
    'Service.Restart': 'always',
    'Service.RestartSec': '1',
    'Unit.StartLimitIntervalSec': '0',
    'Service.User': 'mpg',
    'Service.NoNewPrivileges': 'yes',
    'Service.ProtectSystem': 'strict',
    'Service.ReadWritePaths': '/run/mpg',
    'Service.PrivateTmp': 'yes',
    'Service.RestrictAddressFamilies': 'AF_UNIX AF_VSOCK',
    'Install.WantedBy': 'multi-user.target',
  });
  expect(await unit('mpg-enclave.service'), {
    'Service.ExecStart': `${box.prefix}/bin/mpg enclave run --mode nitro --parent-relay external`,
    'Service.EnvironmentFile': '/etc/mpg/enclave.env',
    'Unit.Wants': 'mpg-enclave-relay.service nitro-enclaves-allocator.service',
    'Unit.After': 'mpg-enclave-relay.service nitro-enclaves-allocator.service',
    'Service.Restart': 'on-failure',
    'Service.TimeoutStartSec': '300',
    'Service.User': 'mpg',
    'Service.Group': 'ne',
    'Service.KillMode': 'mixed',
  });
  expect(await unit('mpg-gateway.service'), {
    'Service.ExecStart': `${box.prefix}/bin/mpg gateway --config /etc/mpg/gateway.json`,
    'Service.Restart': 'on-failure',
    'Service.User': 'mpg',
    'Service.NoNewPrivileges': 'yes',
    'Service.ProtectSystem': 'strict',
    'Unit.After': 'network-online.target mpg-enclave-relay.service',
  });
  const tmpfiles = await readFile(join(box.root, 'etc/tmpfiles.d/mpg.conf'), 'utf8');
  assert.match(tmpfiles, /^d \/run\/mpg 0750 mpg mpg -$/m);

  if (!existsSync(SYSTEMD_ANALYZE)) {
    t.diagnostic(`${SYSTEMD_ANALYZE} is not installed: the units were checked by parsing only`);
    return;
  }
  const verify = spawnSync(SYSTEMD_ANALYZE, ['verify', ...UNITS.map((name) => join(unitDir, name))], {
    encoding: 'utf8',
  });
  assertExit(verify, 0);
  // verify exits 0 on unknown keys and bad values, warning on stderr: none is allowed.
  const warnings = verify.stderr.split('\n').filter((line) => line.includes(unitDir));
  assert.deepEqual(warnings, []);
});

test("the relay's socat options parse in this socat, and the socket is 0600 and survives a failed vsock connect", async (t) => {
  const socat = '/usr/bin/socat';
  if (!existsSync(socat)) {
    t.skip(`${socat} is not installed`);
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'mpg-relay-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const socket = join(dir, 'enclave.sock');
  const unit = await readFile(join(REPO, 'deploy/systemd/mpg-enclave-relay.service'), 'utf8');
  const execStart = parseUnit(unit).get('Service.ExecStart')![0]!;
  const args = execStart
    .split(' ')
    .slice(1)
    .map((arg) =>
      arg
        .replace('/run/mpg/enclave.sock', socket)
        .replace('user=mpg', `user=${userInfo().username}`)
        .replace('${MPG_ENCLAVE_CID}', '16')
        .replace('${MPG_VSOCK_PORT}', '5005'),
    );
  const relay = spawn(socat, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  relay.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  t.after(() => relay.kill('SIGKILL'));
  for (let waited = 0; !existsSync(socket); waited += 20) {
    assert.ok(waited < 5000 && relay.exitCode === null, `socat did not listen: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(statSync(socket).mode & 0o777, 0o600);
  // No enclave here: the forked child fails to reach vsock and closes; the listener stays.
  await new Promise<void>((resolve, reject) => {
    const client = connect(socket, () => client.end());
    client.on('close', () => resolve());
    client.on('error', reject);
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(relay.exitCode, null, `the listener exited: ${stderr}`);
});

test('the example gateway configuration parses, with the relay socket as the secure upstream', async () => {
  const path = join(REPO, 'deploy/gateway.example.json');
  const { config } = parseGatewayConfig(['--config', path], {});
  assert.deepEqual(config.secureUpstream, ['unix:/run/mpg/enclave.sock']);
  assert.deepEqual(config.publicUpstream, ['http://127.0.0.1:8081']);
  assert.equal(
    config.attestationPcrs,
    '/etc/mpg/measurements.json',
    "the secure route is attested against the EIF's measurements",
  );
  const scrape = await readFile(join(REPO, 'deploy/prometheus/scrape.yml'), 'utf8');
  assert.match(scrape, /^scrape_configs:$/m);
  assert.equal(config.securePlaintext, 'refuse', 'production refuses plaintext on the secure route');
  assert.ok(
    config.adminPort !== undefined,
    '/metrics and /readyz are on the admin listener, not served to every client',
  );
  assert.match(scrape, new RegExp(`targets: \\['127\\.0\\.0\\.1:${config.adminPort}'\\]`), "the gateway's admin port");
  assert.match(scrape, /targets: \['127\.0\.0\.1:8081'\]/, 'the public model server');
  assert.equal([...scrape.matchAll(/metrics_path: \/metrics$/gm)].length, 2);
  assert.doesNotMatch(scrape, /\t/, 'YAML has no tabs');
});
