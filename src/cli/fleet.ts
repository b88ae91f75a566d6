/** `fleet`: many boards through an MQTT broker — their state, staged signed updates, the broker's config. */
import { Command } from 'commander';
import { BspError } from '../errors.js';
import {
  checkName,
  connectController,
  driveRollout,
  failedBoards,
  nameProblem,
  NAME_RULE,
  findRollout,
  planRollout,
  readBoardsFile,
  readFleet,
  readRollouts,
  rolloutCounts,
  sendJob,
  writeBrokerConfig,
  type BoardRow,
  type BrokerClient,
  type JobAction,
  type RolloutState,
} from '../fleet/index.js';
import { loadSigningKey } from '../update/index.js';
import { json, table, type Io } from './output.js';

interface BrokerFlags {
  broker: string;
  fleet: string;
  ca?: string;
  user: string;
  passwordFile?: string;
  json?: boolean;
}

const brokerOptions = (c: Command): Command =>
  c
    .requiredOption('--broker <url>', 'the broker: mqtts://HOST:PORT (mqtt:// only for a broker on this machine)')
    .requiredOption('--fleet <name>', 'the fleet (topics nodeos/<fleet>/...)')
    .option('--ca <file>', "the CA (PEM) the broker's certificate must chain to (default: the system's CAs)")
    .option('--user <name>', "the controller's MQTT user name", 'controller')
    .option('--password-file <file>', "a file holding the controller's MQTT password (never given on the command line)")
    .option('--json', 'the result as JSON');

const login = (o: BrokerFlags): Parameters<typeof connectController>[0] => {
  checkName('fleet', o.fleet);
  return { broker: o.broker, user: o.user, ...(o.ca ? { caFile: o.ca } : {}), ...(o.passwordFile ? { passwordFile: o.passwordFile } : {}) };
};

const withBroker = async <T>(o: BrokerFlags, fn: (c: BrokerClient) => Promise<T>): Promise<T> => {
  const conn = await connectController(login(o));
  try {
    return await fn(conn.client);
  } finally {
    conn.close();
  }
};

const ago = (at: number | undefined, now: number): string => {
  if (!at) return '-';
  const s = Math.max(0, Math.round((now - at) / 1000));
  return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};

function statusTable(rows: BoardRow[], now: number): string {
  return table([
    ['BOARD', 'ONLINE', 'PROFILE', 'BUILD', 'SLOT', 'CONFIRMED', 'LAST JOB', 'APPS', 'SEEN'],
    ...rows.map((r) => {
      const s = r.state;
      const job = r.progress ?? s?.lastJob;
      return [
        r.board,
        r.online === undefined ? '?' : r.online ? 'yes' : 'no',
        s?.profile ?? '-',
        s?.build ?? '-',
        s?.slot ?? '-',
        s ? (s.confirmed ? 'yes' : 'no') : '-',
        job ? `${job.job} ${job.state}${job.state === 'downloading' && job.percent !== undefined ? ` ${job.percent}%` : ''}` : '-',
        s?.apps.map((a) => `${a.name}:${a.state}`).join(',') || '-',
        ago(s?.at, now),
      ];
    }),
  ]);
}

function rolloutLine(s: RolloutState): string {
  const c = rolloutCounts(s);
  const version = typeof s.action.version === 'string' ? s.action.version : '?';
  return `${s.id}  ${s.phase}  build ${version} to group ${s.group}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.inFlight} in progress, ${c.total - c.released} not started (of ${c.total})${s.reason ? ` — ${s.reason}` : ''}`;
}

interface UpdateFlags extends BrokerFlags {
  group?: string;
  key: string;
  canary?: number;
  rate?: number;
  abortFailed?: number;
  timeout?: number;
  resume?: string;
  bundle?: string;
}

const positive =
  (flag: string) =>
  (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new BspError('EUSAGE', `${flag} ${v} is not a number`);
  return n;
};

export function registerFleet(program: Command, io: Io): void {
  const fleet = program
    .command('fleet')
    .description('many boards through an MQTT broker: their state, staged signed updates, the broker configuration')
    .addHelpText(
      'after',
      `
Boards connect out to the broker (build or flash them with --fleet); this machine talks to
the same broker. See docs/fleet.md for the topics, the trust model and running a broker.

Examples:
  $ nodeos-bsp fleet status --broker mqtts://broker.lan:8883 --fleet greenhouse --ca ca.pem --password-file controller.pw
  $ nodeos-bsp fleet update https://files.lan/nodeos-rpi3b.nodeos-update --group west --key keys/nodeos-fleet.key --broker mqtts://broker.lan:8883 --fleet greenhouse --ca ca.pem --password-file controller.pw
  $ nodeos-bsp fleet broker-config --fleet greenhouse --boards boards.json --out /etc/mosquitto/nodeos`,
    );

  brokerOptions(fleet.command('status').description("every board's state at a glance, from what the broker keeps (retained)"))
    .option('--group <name>', "only the boards in this group")
    .addHelpText('after', '\nExamples:\n  $ nodeos-bsp fleet status --broker mqtts://broker.lan:8883 --fleet greenhouse --ca ca.pem --password-file controller.pw\n  $ nodeos-bsp fleet status --broker mqtts://broker.lan:8883 --fleet greenhouse --ca ca.pem --password-file controller.pw --group west --json')
    .action(async (o: BrokerFlags & { group?: string }) => {
      if (o.group) checkName('group', o.group);
      const rows = (await withBroker(o, (c) => readFleet(c, o.fleet))).filter((r) => !o.group || r.state?.groups.includes(o.group));
      if (o.json) return json(io, rows);
      if (!rows.length) return io.out(`no boards in fleet ${o.fleet}${o.group ? ` group ${o.group}` : ''} have reported to this broker yet\n`);
      io.out(statusTable(rows, Date.now()));
    });

  brokerOptions(fleet.command('update').description('roll a signed update bundle out to a group: canaries first, then waves at a rate; stop when too many fail'))
    .argument('[bundle-url]', 'where the boards download the bundle (http or https); it is downloaded here once to take its SHA-256 and build')
    .option('--group <name>', 'the boards to update (their --fleet-group)')
    .option('--bundle <file>', 'the bundle file served at the URL, read here instead of downloading it (a URL only the boards reach); boards check the SHA-256 taken from it')
    .requiredOption('--key <file>', "the fleet's private key (nodeos-bsp keys create --name nodeos-fleet): jobs are signed with it")
    .option('--canary <n>', 'boards updated first; all must succeed before any other starts (default 1)', positive('--canary'))
    .option('--rate <n>', 'boards started per minute after the canaries (default 60)', positive('--rate'))
    .option('--abort-failed <percent>', 'stop starting boards once more than this share of finished boards failed (default 10)', positive('--abort-failed'))
    .option('--timeout <minutes>', 'a board without a result this long after its job counts as failed (default 30)', positive('--timeout'))
    .option('--resume <rollout-id>', 'continue a rollout the broker keeps (from this or another machine); see fleet rollouts')
    .addHelpText(
      'after',
      `
A board installs the bundle with its signed A/B update (the bundle's own signature and
version checks hold), reboots, and reports succeeded once the new system confirmed itself;
a build that does not come up falls back by itself and the board reports failed.

Examples:
  $ nodeos-bsp fleet update https://files.lan/b2/nodeos-rpi3b.nodeos-update --group west --canary 2 --rate 100 --abort-failed 5 --key keys/nodeos-fleet.key --broker mqtts://broker.lan:8883 --fleet greenhouse --ca ca.pem --password-file controller.pw
  $ nodeos-bsp fleet update https://cdn.example/b2.nodeos-update --bundle out/nodeos-rpi3b.nodeos-update --group west --key keys/nodeos-fleet.key --broker mqtts://broker.lan:8883 --fleet greenhouse --ca ca.pem --password-file controller.pw
  $ nodeos-bsp fleet update --resume r-mf3k2a-9c1e --key keys/nodeos-fleet.key --broker mqtts://broker.lan:8883 --fleet greenhouse --ca ca.pem --password-file controller.pw`,
    )
    .action(async (url: string | undefined, o: UpdateFlags) => {
      if (o.resume ? url || o.group || o.bundle : !url || !o.group) throw new BspError('EUSAGE', 'give a bundle URL and --group (and --bundle FILE) for a new rollout, or --resume ROLLOUT-ID alone to continue one');
      const key = loadSigningKey(o.key);
      const say = o.json ? (): void => undefined : (t: string): void => io.err(`${t}\n`);
      const options = {
        ...(o.canary !== undefined ? { canary: o.canary } : {}),
        ...(o.rate !== undefined ? { ratePerMinute: o.rate } : {}),
        ...(o.abortFailed !== undefined ? { abortFailedPercent: o.abortFailed } : {}),
        ...(o.timeout !== undefined ? { timeoutMs: o.timeout * 60_000 } : {}),
      };
      const final = await withBroker(o, async (c) => {
        if (!o.resume) say(o.bundle ? `checking ${o.bundle}...` : `downloading ${url} to check it...`);
        const plan = o.resume ? { ...(await findRollout(c, o.fleet, o.resume)), leftOut: [] as BoardRow[] } : await planRollout(c, { fleet: o.fleet, group: o.group!, url: url!, ...(o.bundle ? { file: o.bundle } : {}), options });
        if (plan.leftOut.length) say(`left out (another board type than the bundle's): ${plan.leftOut.map((r) => `${r.board} (${r.state!.profile})`).join(', ')}`);
        say(o.resume ? `resuming ${rolloutLine(plan.state)}` : `rollout ${plan.state.id}: build ${String(plan.state.action.version)} to ${plan.state.boards.length} board(s) of group ${o.group}, ${plan.state.options.canary} canary first`);
        return driveRollout({ client: c, key, state: plan.state, action: plan.action, onChange: (s, released) => released.length && say(`${rolloutLine(s)}; started ${released.join(', ')}`) });
      });
      if (final.phase === 'aborted') process.exitCode = 1;
      if (o.json) return json(io, final);
      io.out(`${rolloutLine(final)}\n`);
      for (const b of failedBoards(final)) io.out(`  ${b.board}: ${b.state}${b.reason ? `: ${b.reason}` : ''}\n`);
    });

  interface JobFlags extends BrokerFlags {
    board?: string;
    group?: string;
    key: string;
    wait: number;
  }
  const jobCommand = (name: string, description: string, action: (app: string | undefined) => JobAction, examples: string, argument?: string): void => {
    const c = brokerOptions(fleet.command(name).description(description));
    if (argument) c.argument(argument, 'the app');
    c.option('--board <id>', 'one board (its id, as fleet status shows it)')
      .option('--group <name>', 'every board of the group that is online now')
      .requiredOption('--key <file>', "the fleet's private key: the job is signed with it")
      .option('--wait <seconds>', 'how long to wait for the boards to report', (v: string) => Number(v), 120)
      .addHelpText('after', `\nA board's job waits for it (retained) if it is offline, for an hour; a group's reaches the boards online now.\n\nExamples:\n${examples}`)
      .action(async (...args: unknown[]) => {
        const app = argument ? (args[0] as string) : undefined;
        const o = args[argument ? 1 : 0] as JobFlags;
        if (Boolean(o.board) === Boolean(o.group)) throw new BspError('EUSAGE', 'say which boards: --board ID or --group NAME');
        if (!(o.wait >= 0)) throw new BspError('EUSAGE', `--wait ${o.wait} is not a number of seconds`);
        const key = loadSigningKey(o.key);
        const target = o.board ? { board: checkName('board', o.board) } : { group: checkName('group', o.group!) };
        const r = await withBroker(o, (c) => sendJob({ client: c, key, fleet: o.fleet, target, action: action(app), waitMs: o.wait * 1000 }));
        const rows = r.expected.map((b) => ({ board: b, ...(r.reports.get(b) ?? { state: 'no report' }) }));
        if (rows.some((x) => x.state !== 'succeeded')) process.exitCode = 1;
        if (o.json) return json(io, { job: r.job, boards: rows });
        if (!rows.length) return io.out(`job ${r.job}: no board of group ${o.group} is online\n`);
        io.out(table([['BOARD', 'JOB ' + r.job], ...rows.map((x) => [x.board, `${x.state}${'reason' in x && x.reason ? `: ${x.reason}` : ''}`])]));
      });
  };
  const login = '--broker mqtts://broker.lan:8883 --fleet greenhouse --ca ca.pem --password-file controller.pw --key keys/nodeos-fleet.key';
  jobCommand('reboot', 'restart a board, or every board of a group, with a signed job', () => ({ type: 'reboot' }), `  $ nodeos-bsp fleet reboot --board 10000000abcdef01 ${login}\n  $ nodeos-bsp fleet reboot --group west --wait 300 ${login}`);
  jobCommand('restart-app', "restart an app on a board, or on every board of a group, with a signed job", (app) => {
    if (nameProblem('group', app)) throw new BspError('EUSAGE', `app ${JSON.stringify(app)}: fleet jobs name apps with ${NAME_RULE}`);
    return { type: 'app-restart', app: app! };
  }, `  $ nodeos-bsp fleet restart-app thermometer --group west ${login}`, '<app>');

  brokerOptions(fleet.command('rollouts').description('the rollouts the broker keeps, newest first'))
    .addHelpText('after', '\nExamples:\n  $ nodeos-bsp fleet rollouts --broker mqtts://broker.lan:8883 --fleet greenhouse --ca ca.pem --password-file controller.pw')
    .action(async (o: BrokerFlags) => {
      const list = await withBroker(o, (c) => readRollouts(c, o.fleet));
      if (o.json) return json(io, list);
      io.out(list.length ? list.map((s) => `${rolloutLine(s)}\n`).join('') : `no rollouts in fleet ${o.fleet}\n`);
    });

  fleet
    .command('broker-config')
    .description("a Mosquitto configuration for the fleet: TLS, no anonymous clients, and an ACL where each board reaches only its own topics and its groups' jobs")
    .requiredOption('--fleet <name>', 'the fleet')
    .requiredOption('--boards <file>', 'JSON: [{ "board": "<serial>", "groups": ["west"] }, ...] (the board ids fleet status shows)')
    .option('--out <dir>', 'where to write mosquitto.conf and acl', '.')
    .option('--port <port>', 'the TLS port', (v: string) => Number(v), 8883)
    .option('--bind <address>', 'the address to listen on (default: all)')
    .option('--cafile <file>', "the CA boards pin", '/etc/mosquitto/certs/ca.pem')
    .option('--certfile <file>', "the broker's certificate", '/etc/mosquitto/certs/server.pem')
    .option('--keyfile <file>', "the broker's private key", '/etc/mosquitto/certs/server.key')
    .option('--password-file <file>', 'the password file (mosquitto_passwd -c FILE controller; one user per board id)', '/etc/mosquitto/nodeos.passwd')
    .option('--persistence <dir>', 'keep retained states and rollouts across broker restarts here', '/var/lib/mosquitto/')
    .addHelpText('after', '\nExamples:\n  $ nodeos-bsp fleet broker-config --fleet greenhouse --boards boards.json --out /etc/mosquitto/conf.d\n  $ mosquitto -c /etc/mosquitto/conf.d/mosquitto.conf')
    .action((o: { fleet: string; boards: string; out: string; port: number; bind?: string; cafile: string; certfile: string; keyfile: string; passwordFile: string; persistence: string }) => {
      const files = writeBrokerConfig(o.out, { fleet: o.fleet, boards: readBoardsFile(o.boards), port: o.port, ...(o.bind ? { bind: o.bind } : {}), cafile: o.cafile, certfile: o.certfile, keyfile: o.keyfile, passwordFile: o.passwordFile, persistenceDir: o.persistence });
      io.out(`${files.conf}\n${files.acl}\n`);
    });
}
