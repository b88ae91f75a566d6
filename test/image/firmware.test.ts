import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getBoard } from '../../src/index.js';
import { firmwareEntries, firmwareFile } from '../../src/image/firmware.js';
import { debPackagesFor, WIFI_PACKAGES, type Artifacts } from '../../src/artifacts/index.js';
import { cleanupTemp, tempDir } from '../helpers/tmp.js';

/** An unpacked firmware package as Debian lays it out: usr/lib/firmware/brcm, NVRAM files as links. */
function fakePackage(): string {
  const root = tempDir();
  const brcm = join(root, 'usr/lib/firmware/brcm');
  mkdirSync(brcm, { recursive: true });
  writeFileSync(join(brcm, 'brcmfmac43430-sdio.bin'), 'bin');
  writeFileSync(join(brcm, 'brcmfmac43430-sdio.clm_blob'), 'clm');
  writeFileSync(join(brcm, 'brcmfmac43430-sdio.AP6212.txt'), 'nvram');
  symlinkSync('brcmfmac43430-sdio.AP6212.txt', join(brcm, 'brcmfmac43430-sdio.raspberrypi,3-model-b.txt'));
  symlinkSync('/etc/passwd', join(brcm, 'brcmfmac43430-sdio.escape.txt'));
  return root;
}

describe('Wi-Fi firmware files', () => {
  after(cleanupTemp);
  const code = (c: string, re: RegExp) => (e: unknown) => (e as { code?: string }).code === c && re.test((e as Error).message);

  it('follows linux-firmware\'s links inside the package, never out of it', () => {
    const root = fakePackage();
    assert.equal(firmwareFile(root, 'firmware-brcm80211', 'brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt').toString(), 'nvram');
    assert.throws(() => firmwareFile(root, 'firmware-brcm80211', 'brcm/brcmfmac43430-sdio.escape.txt'), code('EWIFI_FIRMWARE', /links out of the package/));
  });

  it('a file the package lacks is EWIFI_FIRMWARE, naming the package and what it has', () => {
    const root = fakePackage();
    assert.throws(
      () => firmwareFile(root, 'firmware-brcm80211', 'brcm/brcmfmac43430-sdio.raspberrypi,model-zero-2-w.txt'),
      code('EWIFI_FIRMWARE', /model-zero-2-w\.txt is not in firmware-brcm80211 \(it has brcmfmac43430-sdio\.AP6212\.txt, .*brcmfmac43430-sdio\.bin/),
    );
  });

  it("puts the profile's files and the regulatory database under usr/lib/firmware; nothing for a board without Wi-Fi", () => {
    const regdb = tempDir();
    mkdirSync(join(regdb, 'usr/lib/firmware'), { recursive: true });
    writeFileSync(join(regdb, 'usr/lib/firmware/regulatory.db-debian'), 'db');
    writeFileSync(join(regdb, 'usr/lib/firmware/regulatory.db.p7s-debian'), 'sig');
    const a = { debs: { wifiFirmware: fakePackage(), regdb } } as unknown as Artifacts;
    const entries = firmwareEntries(getBoard('rpi3b').profile, a);
    assert.deepEqual(entries.map((e) => [e.path, e.data.toString()]), [
      ['usr/lib/firmware/brcm/brcmfmac43430-sdio.bin', 'bin'],
      ['usr/lib/firmware/brcm/brcmfmac43430-sdio.clm_blob', 'clm'],
      ['usr/lib/firmware/brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt', 'nvram'],
      ['usr/lib/firmware/regulatory.db', 'db'],
      ['usr/lib/firmware/regulatory.db.p7s', 'sig'],
    ]);
    assert.deepEqual(firmwareEntries(getBoard('qemu-virt').profile, a), []);
    // A radio that loads no firmware (mac80211_hwsim) gets the regulatory database only.
    const virt = getBoard('qemu-virt').profile;
    const hwsim = { ...virt, wifi: { chip: 'mac80211_hwsim', modules: ['mac80211_hwsim'] } };
    assert.deepEqual(firmwareEntries(hwsim, { debs: { regdb } } as unknown as Artifacts).map((e) => e.path), ['usr/lib/firmware/regulatory.db', 'usr/lib/firmware/regulatory.db.p7s']);
  });

  it('a board with a radio fetches wpa_supplicant and every library it and wpa_cli load; one without, none', () => {
    const rpi3b = debPackagesFor(getBoard('rpi3b').profile);
    for (const [role, pkg] of Object.entries(WIFI_PACKAGES)) assert.equal(rpi3b[role as keyof typeof rpi3b], pkg, role);
    assert.equal(rpi3b.wifiFirmware, 'firmware-brcm80211');
    const virt = debPackagesFor(getBoard('qemu-virt').profile);
    assert.equal(virt.wpasupplicant, undefined);
    assert.equal(virt.regdb, undefined);
    const hwsim = debPackagesFor({ ...getBoard('qemu-virt').profile, wifi: { chip: 'mac80211_hwsim', modules: ['mac80211_hwsim'] } });
    assert.equal(hwsim.wpasupplicant, 'wpasupplicant');
    assert.equal(hwsim.wifiFirmware, undefined, 'no firmware package for a radio without firmware');
  });
});
