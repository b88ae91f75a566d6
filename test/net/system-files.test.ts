/** What a lease becomes on the board: ip commands and resolver files (pure; no root). */
import assert from 'node:assert/strict';
import { applyLeaseCommands, hostsFile, NSSWITCH_CONF, removeLeaseCommands, resolvConf, type Lease } from '../../src/net/index.js';

const lease: Lease = { address: '10.0.2.15', prefix: 24, routers: ['10.0.2.2'], dns: ['10.0.2.3', '10.0.2.4'], domain: 'example.test', ntp: [], server: '10.0.2.2', leaseSeconds: 86400, t1: 43200, t2: 75600 };

describe('a lease on the board', () => {
  it('becomes busybox ip commands: address, then the default route; removed in reverse', () => {
    assert.deepEqual(applyLeaseCommands('eth0', lease), [
      ['ip', 'addr', 'replace', '10.0.2.15/24', 'dev', 'eth0'],
      ['ip', 'route', 'replace', 'default', 'via', '10.0.2.2', 'dev', 'eth0', 'onlink'],
    ]);
    assert.deepEqual(removeLeaseCommands('eth0', lease), [
      ['ip', 'route', 'del', 'default', 'via', '10.0.2.2', 'dev', 'eth0'],
      ['ip', 'addr', 'del', '10.0.2.15/24', 'dev', 'eth0'],
    ]);
    assert.deepEqual(applyLeaseCommands('eth0', { ...lease, routers: [] }), [['ip', 'addr', 'replace', '10.0.2.15/24', 'dev', 'eth0']], 'no router: no default route');
    assert.deepEqual(applyLeaseCommands('wlan0', lease, { metric: 600 })[1], ['ip', 'route', 'replace', 'default', 'via', '10.0.2.2', 'dev', 'wlan0', 'metric', '600', 'onlink'], 'a second link: its default route loses to the first');
  });

  it('writes resolv.conf (configured servers first, at most three), hosts and nsswitch.conf', () => {
    assert.equal(resolvConf(lease, ['192.0.2.53']), '# Written by NodeOS from the DHCP lease; rewritten on every lease change.\nsearch example.test\nnameserver 192.0.2.53\nnameserver 10.0.2.3\nnameserver 10.0.2.4\noptions timeout:2 attempts:2\n');
    assert.doesNotMatch(resolvConf(undefined), /nameserver/);
    assert.match(hostsFile('kitchen', 'example.test'), /^127\.0\.0\.1\tlocalhost$/m);
    assert.match(hostsFile('kitchen', 'example.test'), /^127\.0\.1\.1\tkitchen\.example\.test kitchen$/m);
    assert.match(NSSWITCH_CONF, /^hosts: files dns$/m);
  });
});
