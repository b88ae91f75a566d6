/**
 * Which of the system's kernel modules init loads before the console's prompt and which once it
 * shows (promptSplit): the network's, USB's and input's drivers wait, and so does whatever
 * needs one of them; filesystems, I2C, SPI and LEDs do not.
 */
import assert from 'node:assert/strict';
import { promptSplit } from '../../src/image/initramfs.js';
import type { KernelModule } from '../../src/image/kernel-modules.js';

const mod = (name: string, relPath: string, depends: string[] = []): KernelModule => ({ name, relPath: `kernel/${relPath}`, depends, data: Buffer.alloc(0) });

describe('kernel modules before and after the prompt', () => {
  it("the Pi 3's system modules: filesystems and the header's buses before, USB, network, Wi-Fi and input after, in load order", () => {
    const modules = [
      mod('fat', 'fs/fat/fat.ko'),
      mod('vfat', 'fs/fat/vfat.ko', ['fat']),
      mod('crc16', 'lib/crc16.ko'),
      mod('ext4', 'fs/ext4/ext4.ko', ['crc16']),
      mod('i2c_dev', 'drivers/i2c/i2c-dev.ko'),
      mod('leds_gpio', 'drivers/leds/leds-gpio.ko'),
      mod('hid', 'drivers/hid/hid.ko'),
      mod('usbcore', 'drivers/usb/core/usbcore.ko'),
      mod('usbhid', 'drivers/hid/usbhid/usbhid.ko', ['hid', 'usbcore']),
      mod('evdev', 'drivers/input/evdev.ko'),
      mod('dwc2', 'drivers/usb/dwc2/dwc2.ko', ['usbcore']),
      mod('rfkill', 'net/rfkill/rfkill.ko'),
      mod('cfg80211', 'net/wireless/cfg80211.ko', ['rfkill']),
      mod('brcmfmac', 'drivers/net/wireless/broadcom/brcm80211/brcmfmac/brcmfmac.ko', ['cfg80211']),
      // Not in a deferred folder, but it needs a deferred module: it waits too.
      mod('brcmfmac_wcc', 'drivers/other/brcmfmac-wcc.ko', ['brcmfmac']),
    ];
    const { now, later } = promptSplit(modules);
    assert.deepEqual(now.map((m) => m.name), ['fat', 'vfat', 'crc16', 'ext4', 'i2c_dev', 'leds_gpio']);
    assert.deepEqual(later.map((m) => m.name), ['hid', 'usbcore', 'usbhid', 'evdev', 'dwc2', 'rfkill', 'cfg80211', 'brcmfmac', 'brcmfmac_wcc']);
    assert.deepEqual(promptSplit([]), { now: [], later: [] });
  });
});
