import assert from 'node:assert/strict';
import { ipArgument, netmaskPrefix, parseIpConfig } from '../../src/net/index.js';
import { validateCustomization } from '../../flash/customize.js';
import { BspError } from '../../src/index.js';

describe('ip= on the kernel command line (the kernel\'s syntax, done by init)', () => {
  it('DHCP by default and for on/any/dhcp/both/bootp; off and none mean no address', () => {
    assert.deepEqual(parseIpConfig(undefined), { mode: 'dhcp' });
    for (const v of ['on', 'any', 'dhcp', 'both', 'bootp']) assert.deepEqual(parseIpConfig(v), { mode: 'dhcp' });
    for (const v of ['off', 'none']) assert.deepEqual(parseIpConfig(v), { mode: 'off' });
    assert.deepEqual(parseIpConfig(':::::eth1:dhcp'), { mode: 'dhcp', device: 'eth1' });
  });

  it('a static address with netmask or prefix, gateway, DNS and NTP servers, on a named device', () => {
    const c = parseIpConfig('192.168.1.50::192.168.1.1:255.255.255.0:kitchen:eth0:off:192.168.1.1:9.9.9.9:192.168.1.2');
    assert.ok(!('error' in c) && c.mode === 'static');
    assert.equal(c.device, 'eth0');
    assert.deepEqual([c.lease.address, c.lease.prefix, c.lease.routers, c.lease.dns, c.lease.ntp], ['192.168.1.50', 24, ['192.168.1.1'], ['192.168.1.1', '9.9.9.9'], ['192.168.1.2']]);
    const short = parseIpConfig('10.0.2.15/24::10.0.2.2');
    assert.ok(!('error' in short) && short.mode === 'static' && short.lease.prefix === 24 && short.lease.routers[0] === '10.0.2.2' && short.device === undefined);
  });

  it('says what is wrong with a value it cannot use', () => {
    const err = (v: string): string => (parseIpConfig(v) as { error: string }).error;
    assert.match(err('192.168.1.50'), /netmask/);
    assert.match(err('192.168.1.50::::::rarp'), /autoconf "rarp"/);
    assert.match(err('192.168.1.300::::'), /not an IPv4 address/);
    assert.match(err('10.0.0.2::10.0.0.256:255.255.255.0'), /gateway 10\.0\.0\.256/);
    assert.match(err('10.0.0.2:::255.0.255.0'), /netmask/);
    assert.match(err('static'), /not dhcp, off/);
  });

  it('netmasks and the last ip= of a command line', () => {
    assert.deepEqual(['255.255.255.0', '255.255.0.0', '255.255.255.255', '0.0.0.0', '255.0.255.0'].map(netmaskPrefix), [24, 16, 32, 0, undefined]);
    assert.equal(ipArgument('console=ttyS1 ip=dhcp quiet ip=off'), 'off');
    assert.equal(ipArgument('console=ttyS1 nodeos.ip=x'), undefined);
  });

  it('flash refuses an ip= the board could not use, before writing', () => {
    assert.throws(() => validateCustomization({ cmdline: ['ip=192.168.1.50'] }), (e: unknown) => e instanceof BspError && e.code === 'ECUSTOMIZE' && /netmask/.test(e.message));
    validateCustomization({ cmdline: ['ip=192.168.1.50/24::192.168.1.1'] });
  });
});
