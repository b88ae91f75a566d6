/** The A/B protocol's transitions (layout/slots.ts): what U-Boot's boot.scr and the board's init do to the environment. */
import assert from 'node:assert/strict';
import { activateSlot, beginInstall, bootScript, confirmBoot, getBoard, initialSlotVars, layoutFor, nextBoot, readSlots, ubootEnvironment } from '../../src/index.js';

const LIMIT = 3;
const fresh = (): Map<string, string> => new Map(initialSlotVars('build1', LIMIT));

describe('A/B slots: boot counting and fallback', () => {
  it('a fresh card boots its confirmed slot A without counting (nothing to save)', () => {
    const n = nextBoot(fresh(), LIMIT);
    assert.equal(n.slot, 'A');
    assert.equal(n.counted, false);
    assert.deepEqual(readSlots(fresh()).slots.B, { slot: 'B', confirmed: false, triesLeft: 0 });
  });

  it('an update: B is emptied first, then activated with bootlimit tries, preferred', () => {
    const emptied = beginInstall(fresh(), 'B');
    assert.equal(nextBoot(emptied, LIMIT).slot, 'A', 'a half-written B is never picked');
    const v = activateSlot(emptied, 'B', 'build2', LIMIT);
    const st = readSlots(v);
    assert.deepEqual(st.order, ['B', 'A']);
    assert.deepEqual(st.slots.B, { slot: 'B', build: 'build2', confirmed: false, triesLeft: 3 });
  });

  it('B comes up and confirms itself: tries back to bootlimit, no more counting', () => {
    let v = activateSlot(beginInstall(fresh(), 'B'), 'B', 'build2', LIMIT);
    const n = nextBoot(v, LIMIT);
    assert.deepEqual([n.slot, n.counted, n.vars.get('nodeos_B_left')], ['B', true, '2']);
    const c = confirmBoot(n.vars, 'B', LIMIT);
    assert.equal(c.changed, true);
    assert.equal(c.fellBack, undefined);
    v = c.vars;
    assert.deepEqual(readSlots(v).slots.B, { slot: 'B', build: 'build2', confirmed: true, triesLeft: 3 });
    assert.equal(nextBoot(v, LIMIT).counted, false);
    assert.equal(confirmBoot(v, 'B', LIMIT).changed, false, 'a confirmed slot writes nothing on later boots');
  });

  it('B never comes up: after bootlimit tries U-Boot boots A, which records the failed update and prefers itself', () => {
    let v = activateSlot(beginInstall(fresh(), 'B'), 'B', 'build3', LIMIT);
    const tried: string[] = [];
    for (let i = 0; i < LIMIT + 1; i++) {
      const n = nextBoot(v, LIMIT);
      tried.push(n.slot);
      v = n.vars;
    }
    assert.deepEqual(tried, ['B', 'B', 'B', 'A']);
    const c = confirmBoot(v, 'A', LIMIT);
    assert.deepEqual(c.fellBack, { slot: 'B', build: 'build3' });
    const st = readSlots(c.vars);
    assert.deepEqual(st.order, ['A', 'B']);
    assert.deepEqual(st.failed, { slot: 'B', build: 'build3' });
    assert.equal(nextBoot(c.vars, LIMIT).slot, 'A');
  });

  it('no slot left to try (both unconfirmed, no tries): both get bootlimit again, the preferred one first', () => {
    const v = new Map([['nodeos_order', 'B A'], ['nodeos_A_build', 'x'], ['nodeos_B_build', 'y'], ['nodeos_A_ok', '0'], ['nodeos_B_ok', '0'], ['nodeos_A_left', '0'], ['nodeos_B_left', '0']]);
    const n = nextBoot(v, LIMIT);
    assert.deepEqual([n.slot, n.counted, n.vars.get('nodeos_B_left'), n.vars.get('nodeos_A_left')], ['B', true, '2', '3']);
  });

  it('odd values read as the safe choice: unknown order is A first, junk tries are none', () => {
    const st = readSlots(new Map([['nodeos_order', 'C'], ['nodeos_A_build', 'x'], ['nodeos_A_left', 'many']]));
    assert.deepEqual(st.order, ['A', 'B']);
    assert.equal(st.slots.A.triesLeft, 0);
    assert.equal(nextBoot(new Map(), LIMIT).slot, 'A');
  });

  it("boot.scr chooses the slot after importing a saved environment, which holds the saving boot's nodeos_slot", () => {
    // Found under qemu-virt (U-Boot keeps no environment of its own there, so boot.scr imports
    // uboot.env): a stale nodeos_slot skipped the count-down and a broken slot was tried for ever.
    const profile = getBoard('qemu-virt').profile;
    const layout = layoutFor(profile, 0x12345678);
    const lines = bootScript(layout, ubootEnvironment(profile, 'b1', layout)).split('\n');
    const imported = lines.findIndex((l) => /env import -c/.test(l));
    const firstChoice = lines.findIndex((l) => /setenv nodeos_slot [AB]/.test(l));
    const clear = lines.findIndex((l, i) => i > imported && l === 'setenv nodeos_slot');
    assert.ok(imported > 0 && clear > imported && clear < firstChoice, lines.join('\n'));
  });

  it("boot.scr's fallback defaults hold no Wi-Fi PSK and no SSH key: the file stays on the card for its whole life", () => {
    const profile = getBoard('qemu-virt').profile;
    const layout = layoutFor(profile, 0x12345678);
    const psk = 'ab'.repeat(32);
    const env = [...ubootEnvironment(profile, 'b1', layout), ['nodeos_wifi', `[{"ssid":"home","psk":"${psk}","priority":0}]`], ['nodeos_wifi_country', 'DE'], ['nodeos_ssh_keys', 'ssh-ed25519 AAAA x']] as [string, string][];
    const script = bootScript(layout, env);
    assert.doesNotMatch(script, new RegExp(psk));
    assert.doesNotMatch(script, /nodeos_wifi '|nodeos_ssh_keys|ssh-ed25519/);
    assert.match(script, /setenv nodeos_wifi_country 'DE'/, 'what is no secret stays');
  });
});
