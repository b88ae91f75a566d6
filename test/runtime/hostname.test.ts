/** The host name init sets (no root). */
import assert from 'node:assert/strict';
import { hostnameFrom } from '../../src/runtime/hostname.js';

describe('host name from the kernel command line', () => {
  it('nodeos.hostname= when valid, else "nodeos" with a warning', () => {
    assert.deepEqual(hostnameFrom('console=ttyS1,115200 nodeos.hostname=kitchen TERM=dumb'), { name: 'kitchen' });
    assert.deepEqual(hostnameFrom('console=ttyS1,115200'), { name: 'nodeos' });
    const bad = hostnameFrom('nodeos.hostname=-bad_name');
    assert.equal(bad.name, 'nodeos');
    assert.match(bad.warning ?? '', /not a valid host name/);
  });
});
