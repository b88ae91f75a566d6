/**
 * A fleet's MQTT topics. Every name that goes into a topic (the fleet, a board's id, a group)
 * is checked first: MQTT gives `/`, `+` and `#` meaning, and a board id comes from the
 * board itself, so a name that could widen a subscription or an ACL pattern is refused.
 *
 *   nodeos/<fleet>/<board-id>/state             retained, the board's state (the board publishes)
 *   nodeos/<fleet>/<board-id>/online            retained, `online` or `offline` (the board; the broker, its last will)
 *   nodeos/<fleet>/<board-id>/jobs              signed jobs for one board (the controller publishes)
 *   nodeos/<fleet>/<board-id>/jobs/progress     the board's progress on its jobs
 *   nodeos/<fleet>/group/<group>/jobs           signed jobs for a group
 *   nodeos/<fleet>/rollouts/<rollout-id>        retained, a rollout's state (the controller publishes)
 */
import { BspError } from '../errors.js';

/** Topics start here; an ACL may give boards nothing outside it. */
export const TOPIC_ROOT = 'nodeos';

/** Letters, digits, `-`, `_` and `.`, 1 to 64 of them, not starting with `.`: safe in a topic, a file name and a log line. */
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;
/** The rule, as error messages say it. */
export const NAME_RULE = "1-64 letters, digits, '-', '_' or '.', not starting with '.'";

/** `group` would make a board's topics collide with the group jobs topic; `rollouts` with rollout states. */
const RESERVED_BOARD_IDS = new Set(['group', 'rollouts']);

export type NameKind = 'fleet' | 'board' | 'group' | 'rollout';

/** Whether `name` may stand in a topic as a fleet, board id, group or rollout id; the reason when not. */
export function nameProblem(kind: NameKind, name: unknown): string | undefined {
  if (typeof name !== 'string') return `a ${kind} name must be a string`;
  if (!NAME.test(name)) return `${JSON.stringify(name.slice(0, 80))} is not a ${kind} name: use ${NAME_RULE}`;
  if (kind === 'board' && RESERVED_BOARD_IDS.has(name)) return `"${name}" is reserved in a fleet's topics and cannot be a board id`;
  return undefined;
}

/** {@link nameProblem} as an error (EFLEET_NAME). */
export function checkName(kind: NameKind, name: unknown): string {
  const p = nameProblem(kind, name);
  if (p) throw new BspError('EFLEET_NAME', p);
  return name as string;
}

/** The topics of one fleet; each builder checks the names it is given. */
export function fleetTopics(fleet: string): {
  state: (board: string) => string;
  online: (board: string) => string;
  boardJobs: (board: string) => string;
  progress: (board: string) => string;
  groupJobs: (group: string) => string;
  rollout: (id: string) => string;
  allStates: string;
  allOnline: string;
  allProgress: string;
  allRollouts: string;
} {
  const base = `${TOPIC_ROOT}/${checkName('fleet', fleet)}`;
  return {
    state: (b) => `${base}/${checkName('board', b)}/state`,
    online: (b) => `${base}/${checkName('board', b)}/online`,
    boardJobs: (b) => `${base}/${checkName('board', b)}/jobs`,
    progress: (b) => `${base}/${checkName('board', b)}/jobs/progress`,
    groupJobs: (g) => `${base}/group/${checkName('group', g)}/jobs`,
    rollout: (id) => `${base}/rollouts/${checkName('rollout', id)}`,
    allStates: `${base}/+/state`,
    allOnline: `${base}/+/online`,
    allProgress: `${base}/+/jobs/progress`,
    allRollouts: `${base}/rollouts/+`,
  };
}

/** What a received topic is about, or undefined when it is none of the fleet's (or its names are not valid). */
export function parseTopic(fleet: string, topic: string): { kind: 'state' | 'online' | 'jobs' | 'progress'; board: string } | { kind: 'group-jobs'; group: string } | { kind: 'rollout'; id: string } | undefined {
  const parts = topic.split('/');
  if (parts[0] !== TOPIC_ROOT || parts[1] !== fleet) return undefined;
  const [, , a, b, c, d] = parts;
  if (a === 'group' && c === 'jobs' && parts.length === 5 && !nameProblem('group', b)) return { kind: 'group-jobs', group: b! };
  if (a === 'rollouts' && parts.length === 4 && !nameProblem('rollout', b)) return { kind: 'rollout', id: b! };
  if (nameProblem('board', a)) return undefined;
  if (parts.length === 4 && b === 'state') return { kind: 'state', board: a! };
  if (parts.length === 4 && b === 'online') return { kind: 'online', board: a! };
  if (parts.length === 4 && b === 'jobs') return { kind: 'jobs', board: a! };
  if (parts.length === 5 && b === 'jobs' && c === 'progress' && d === undefined) return { kind: 'progress', board: a! };
  return undefined;
}
