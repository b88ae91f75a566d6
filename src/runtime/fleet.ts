/**
 * The board's fleet agent process, started by init after the prompt when the card has a
 * fleet setting (`build` / `flash --fleet ...`, src/settings/fleet.ts), and restarted if it
 * dies: a fault in the MQTT client or in a job never reaches init. It connects out only,
 * over TLS to the broker whose CA the setting pins, as user <board id> with the password init
 * moved to the users' partition; the agent itself is src/fleet/agent.ts. Bundled with the
 * mqtt package (the only runtime entry that carries one), and read from the card only on
 * boards that are in a fleet.
 */
import { existsSync, readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { FleetAgent, type BrokerClient, type Will } from '../fleet/agent.js';
import { FileJobStore } from '../fleet/job-store.js';
import { decodeFleet, ENV_FLEET, ENV_FLEET_PASSWORD, fleetPasswordProblem } from '../settings/fleet.js';
import type { ImageLayout } from '../layout/index.js';
import { controlApp } from './app-control.js';
import { envFiles, readEnvFiles } from './env-files.js';
import { FLEET_OFF } from './exit-codes.js';
import { fleetBoardId, LinuxFleetSystem } from './fleet-system.js';
import { FLEET_PASSWORD_FILE, readFleetPassword } from './settings.js';
import { updateBoard } from './update.js';

function log(msg: string): void {
  process.stdout.write(`nodeos: ${msg}\n`);
}

/** Say why the agent cannot run and stop for good (init does not start it again). */
function off(why: string): never {
  log(`fleet: off: ${why}`);
  process.exit(FLEET_OFF);
}

const info = JSON.parse(readFileSync('/etc/nodeos/image.json', 'utf8')) as { layout: ImageLayout };
let vars: ReadonlyMap<string, string>;
try {
  vars = readEnvFiles(envFiles('/boot', info.layout.env.file, info.layout.env.backup, info.layout.env.size)).vars;
} catch (err) {
  off(`the card's U-Boot environment cannot be read (${(err as Error).message})`);
}
const { fleet, error } = decodeFleet(vars.get(ENV_FLEET));
if (!fleet) off(error ?? 'this card has no fleet setting');
if (!existsSync('/home/.nodeos')) off("the agent keeps its jobs on the users' partition (/home), which this boot does not have");
const onCard = vars.get(ENV_FLEET_PASSWORD);
const password = readFleetPassword(FLEET_PASSWORD_FILE) ?? (onCard !== undefined && !fleetPasswordProblem(onCard) ? onCard : undefined);
if (password === undefined) off('no broker password (flash the card again with --fleet-credentials FILE)');
const board = fleetBoardId();
if (!board) off('this board has no serial number and no network card to name it by');

const system = new LinuxFleetSystem({
  boardId: board,
  install: (file) => updateBoard(file, (m) => log(`fleet: update: ${m}`)),
  // init's reboot: apps stopped, the lease released, the card's filesystems unmounted.
  reboot: () => process.kill(1, 'SIGTERM'),
  restartApp: (name) => controlApp('restart', name),
});

const connect = (will: Will): BrokerClient =>
  mqtt.connect(fleet.broker, {
    ca: fleet.ca,
    // The pinned CA only, and the broker's name checked against its certificate.
    rejectUnauthorized: true,
    username: board,
    password,
    clientId: `nodeos-${board}`,
    protocolVersion: 5,
    // The agent reconnects, with its own backoff.
    reconnectPeriod: 0,
    connectTimeout: 30_000,
    keepalive: 60,
    will: { topic: will.topic, payload: Buffer.from(will.payload), qos: will.qos, retain: will.retain },
  }) as unknown as BrokerClient;

const agent = new FleetAgent({
  fleet: fleet.fleet,
  board,
  groups: fleet.groups,
  trusted: fleet.keys,
  connect,
  system,
  store: new FileJobStore('/home/.local/state/nodeos/fleet'),
  log,
  syncedNow: () => (system.clockSynced() ? Date.now() : undefined),
});
log(`fleet: board ${board} in fleet ${fleet.fleet}${fleet.groups.length ? ` (groups ${fleet.groups.join(', ')})` : ''}, broker ${fleet.broker}`);
agent.start();
// init stops it when the board shuts down: say offline first.
process.on('SIGTERM', () => void agent.stop().finally(() => process.exit(0)));
