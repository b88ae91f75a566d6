/**
 * The board-profile schema. Written once with TypeBox so the same object is the
 * TypeScript type (`Static`), the validator's input (ajv) and the JSON Schema file that
 * editors use (`nodeos-bsp boards schema`).
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

const Id = Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$', description: 'lower-case id: letters, digits, dashes' });
const Hex = Type.String({ pattern: '^(0x)?[0-9a-fA-F]+$' });
const Name = Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_]*$', description: 'pin alias, e.g. SDA' });

/**
 * Partition of the disk image: the boot partition, the two system slots (`slot: A|B`, a
 * read-only squashfs each), and the users' partition (`size: "fill"`, created on first boot).
 */
const Partition = Type.Object(
  {
    name: Id,
    filesystem: Type.Union([Type.Literal('fat32'), Type.Literal('squashfs'), Type.Literal('ext4')]),
    slot: Type.Optional(Type.Union([Type.Literal('A'), Type.Literal('B')], { description: 'the system slot this partition holds (A/B updates)' })),
    mbrType: Hex,
    startMiB: Type.Integer({ minimum: 1, description: 'offset from the start of the disk, MiB' }),
    sizeMiB: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('fill')]),
    bootable: Type.Optional(Type.Boolean({ default: false })),
    mount: Type.Optional(Type.String({ description: 'where NodeOS mounts it' })),
    createdOnFirstBoot: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);

/** One pin of the header: a SoC GPIO line, or power / ground. */
const HeaderPin = Type.Object(
  {
    pin: Type.Integer({ minimum: 1, description: 'physical pin number on the header' }),
    kind: Type.Union([Type.Literal('gpio'), Type.Literal('power'), Type.Literal('ground')]),
    line: Type.Optional(Type.Integer({ minimum: 0, description: 'SoC GPIO line (BCM number) for gpio pins: the line number within its controller' })),
    controller: Type.Optional(Id),
    name: Type.Optional(
      Type.String({
        pattern: '^[A-Z][A-Z0-9_]*$',
        description: "the pin's name as the SoC names it, where that is not GPIO<line> (e.g. PL10: board.PL10 then); default GPIO<line>. Needed where two controllers number their lines from 0, so that two pins would both be GPIO<line>",
      }),
    ),
    supply: Type.Optional(Type.Union([Type.Literal('3V3'), Type.Literal('5V')])),
    aliases: Type.Optional(Type.Array(Name, { default: [] })),
  },
  { additionalProperties: false },
);

/** A GPIO controller, found at run time by label or compatible, never by chip number. */
const GpioController = Type.Object(
  {
    id: Id,
    label: Type.Optional(Type.String({ description: 'as in /sys/class/gpio/gpiochip*/label' })),
    compatible: Type.Optional(Type.String({ description: 'device-tree compatible of the controller' })),
    lines: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);

const Bus = Type.Object(
  {
    id: Id,
    kind: Type.Union([Type.Literal('i2c'), Type.Literal('spi'), Type.Literal('uart')]),
    device: Type.String({ description: 'device node, e.g. /dev/i2c-1' }),
    node: Type.Optional(
      Type.String({
        pattern: '^(/[A-Za-z0-9,._+@-]+)+$',
        description: "the controller's device-tree path, e.g. /soc/i2c@7e804000: the bus is found by it on the running board (its number depends on probe order), the device's number being the fallback",
      }),
    ),
    pins: Type.Record(Type.String({ pattern: '^[a-z0-9]+$' }), Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^[A-Z][A-Z0-9_]*$' })]), {
      description: "signal -> the header pin carrying it: its SoC GPIO line (e.g. { sda: 2, scl: 3 }), or, where several GPIO controllers each number their lines from 0, the pin's name (e.g. { sda: GPIO2_A4 })",
    }),
    modules: Type.Optional(Type.Array(Type.String(), { default: [] })),
    description: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const Led = Type.Object(
  {
    id: Id,
    sysfs: Type.Array(Type.String(), { minItems: 1, description: 'names under /sys/class/leds, first match wins' }),
    description: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const BoardProfileSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    id: Id,
    extends: Type.Optional(Id),
    abstract: Type.Optional(Type.Boolean({ default: false, description: 'a SoC/family profile boards extend; never built' })),
    name: Type.String({ minLength: 1 }),
    vendor: Type.String({ minLength: 1 }),
    status: Type.Union([Type.Literal('supported'), Type.Literal('community'), Type.Literal('wip'), Type.Literal('unsupported')]),
    statusReason: Type.Optional(Type.String({ description: 'required unless status is supported' })),
    soc: Type.Object(
      {
        id: Id,
        name: Type.String(),
        cpu: Type.String(),
        cores: Type.Integer({ minimum: 1 }),
        compatible: Type.String({ description: "the SoC's device-tree compatible, e.g. brcm,bcm2837" }),
      },
      { additionalProperties: false },
    ),
    arch: Type.Object(
      {
        kernel: Type.Union([Type.Literal('arm64'), Type.Literal('arm')]),
        node: Type.Union([Type.Literal('arm64'), Type.Literal('arm')]),
        isa: Type.String({ description: 'e.g. armv8-a, armv6' }),
      },
      { additionalProperties: false },
    ),
    detection: Type.Object(
      {
        compatible: Type.Array(Type.String(), { minItems: 1, description: 'most specific first' }),
        revisions: Type.Optional(Type.Array(Hex, { default: [], description: 'Raspberry Pi revision codes' })),
      },
      { additionalProperties: false },
    ),
    boot: Type.Object(
      {
        method: Type.Union([Type.Literal('rpi-firmware-uboot'), Type.Literal('uboot')], {
          description: 'rpi-firmware-uboot: the Raspberry Pi firmware on the card starts U-Boot; uboot: U-Boot is the firmware (e.g. in flash) and finds boot.scr on the card',
        }),
        firmware: Type.Optional(
          Type.Object(
            {
              package: Type.String({ description: 'Debian package, e.g. raspi-firmware' }),
              dir: Type.String({ description: 'folder inside the package, e.g. usr/lib/raspi-firmware' }),
              files: Type.Array(Type.String(), { default: [], description: 'files copied to the boot partition' }),
            },
            { additionalProperties: false, description: 'boot firmware copied onto the boot partition' },
          ),
        ),
        uboot: Type.Optional(
          Type.Object(
            {
              package: Type.String({ description: 'Debian package, e.g. u-boot-rpi' }),
              file: Type.String({ description: 'path under usr/lib/u-boot, e.g. rpi_arm64/u-boot.bin' }),
              device: Type.String({ description: 'U-Boot device:partition of the boot partition, e.g. "mmc 0:1"' }),
              dtb: Type.Optional(
                Type.String({
                  description: "U-Boot's own device tree, a file under usr/lib/u-boot of the package (boards whose U-Boot is the firmware: it numbers MMC devices by this tree's aliases, not the kit's); default: the kit's DTB, which the Pi's firmware hands U-Boot",
                }),
              ),
              raw: Type.Optional(
                Type.Array(
                  Type.Object(
                    {
                      file: Type.String({ description: 'path under usr/lib/u-boot of the same package (the build\'s loader image, e.g. <build>/<loader>.bin)' }),
                      offset: Type.Integer({ minimum: 512, multipleOf: 512, description: 'where the boot ROM reads it on the card, in bytes: a whole sector after the MBR, before the first partition (docs/adding-a-board.md lists the SoCs\' offsets)' }),
                      signature: Type.Optional(
                        Type.Object(
                          {
                            at: Type.Integer({ minimum: 0, description: 'offset in the file' }),
                            hex: Type.String({ pattern: '^([0-9a-f]{2}){2,32}$', description: 'the bytes there, in lower-case hex (the boot ROM\'s magic)' }),
                          },
                          { additionalProperties: false, description: 'what the boot ROM looks for: the build refuses a file without it, and the boot-chain rule BC_RAW checks the image' },
                        ),
                      ),
                    },
                    { additionalProperties: false },
                  ),
                  {
                    description: "boot loader pieces the board's boot ROM reads from raw sectors before any partition (docs/adding-a-board.md: boards whose U-Boot is their firmware), written there and mapped in the .bmap; with them, U-Boot is not copied to the boot partition",
                  },
                ),
              ),
              env: Type.Optional(
                Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.]+$' }), Type.String(), {
                  description: 'U-Boot variables for this board (load addresses, console), added to the kit\'s uboot.env',
                }),
              ),
            },
            { additionalProperties: false },
          ),
        ),
        card: Type.Optional(
          Type.String({
            pattern: '^(/[A-Za-z0-9,._+@-]+)+$',
            description: "device-tree path of the controller the card sits on, e.g. /emmc2bus/mmc@7e340000: the boot model checks that U-Boot numbers it as boot.uboot.device says and keeps its environment there",
          }),
        ),
        cardPlatform: Type.Optional(
          Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), {
            description: "platform devices the card's providers create, which the tree names only by their parent (e.g. a PMIC's regulators, made by its MFD driver): their drivers go to stage 1 with the card's",
          }),
        ),
        files: Type.Optional(
          Type.Array(
            Type.Object(
              {
                path: Type.String({ pattern: '^[A-Za-z0-9_.-]+$', description: 'file name on the boot partition, e.g. config.txt' }),
                lines: Type.Array(Type.String()),
              },
              { additionalProperties: false },
            ),
            { default: [], description: 'text files written to the boot partition (e.g. the Raspberry Pi firmware\'s config.txt)' },
          ),
        ),
      },
      { additionalProperties: false },
    ),
    functions: Type.Optional(
      Type.Record(
        Type.String({ pattern: '^[a-z][a-z0-9-]*$' }),
        Type.Object(
          {
            nodes: Type.Array(Type.String({ pattern: '^(/[A-Za-z0-9,._+@-]+)+$' }), { description: "the function's device-tree nodes, e.g. /scb/ethernet@7d580000" }),
            pci: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}(/[0-9a-fA-F]{6})?$' }), { description: 'PCI devices behind those nodes, vendor:device/class (e.g. the VL805 xHCI: 1106:3483/0c0330)' })),
            platform: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' }), { description: "platform devices a driver creates (dwc3's xhci-hcd)" })),
            unproven: Type.Optional(Type.String({ description: 'what of this function the boot model cannot see (e.g. an Ethernet PHY matched by its id on an MDIO bus the tree does not name): shown in the README\'s per-function table' })),
            sdio: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$' }), { description: "SDIO functions behind those nodes, vendor:device (the Pis' radios: 02d0:a9a6 for a CYW43430/43436, 02d0:4345 and 02d0:a9bf for the CYW43455 family)" })),
          },
          { additionalProperties: false },
        ),
        { description: 'functions of the board (usb, ethernet...) as device-tree nodes: the boot model finds the modules they need from the kernel package and the system loads them (docs/boot-chain.md)' },
      ),
    ),
    kernel: Type.Object(
      {
        source: Type.Union([
          Type.Object(
            {
              debian: Type.String({ description: 'Debian package, e.g. linux-image-arm64' }),
              suite: Type.Optional(Type.String({ description: "Debian suite the kernel comes from when not the build's, e.g. trixie-backports (7.x kernels, split into linux-base/-binary/-modules)" })),
            },
            { additionalProperties: false },
          ),
          Type.Literal('build', {
            description: "the kit builds the board's own kernel from the suite's linux-source package and the fragments (nodeos-bsp kernel build)",
          }),
        ]),
        image: Type.String({ description: 'e.g. Image' }),
        fragments: Type.Array(Type.String(), { default: [], description: 'files under kernel-configs/' }),
        modules: Type.Array(Type.String(), { default: [], description: 'modules shipped in the initramfs' }),
        cmdline: Type.Array(Type.String(), { default: [] }),
      },
      { additionalProperties: false },
    ),
    devicetree: Type.Object(
      {
        dtb: Type.Optional(
          Type.String({ description: 'path inside the kernel package dtb dir, e.g. broadcom/bcm2837-rpi-3-b.dtb; absent: the firmware (e.g. QEMU virt) provides the device tree' }),
        ),
        firmwareName: Type.Optional(
          Type.String({ description: "name the Raspberry Pi firmware loads (e.g. bcm2710-rpi-3-b.dtb); U-Boot's own device tree" }),
        ),
        overlays: Type.Array(Type.String(), { default: [] }),
        variants: Type.Optional(
          Type.Array(
            Type.Object(
              {
                id: Id,
                dtb: Type.String({ description: "the revision's own tree in the kernel package, e.g. broadcom/bcm2712-d-rpi-5-b.dtb" }),
                firmwareOverlay: Type.String({
                  pattern: '^[a-z0-9][a-z0-9_-]*$',
                  description: "the overlay the board's firmware applies by itself on that revision (overlays/<name>.dtbo), e.g. bcm2712d0 on a Pi 5 D0: the build computes it from the two trees (with the profile's overlays applied to both)",
                }),
                note: Type.Optional(Type.String()),
              },
              { additionalProperties: false },
            ),
            { description: 'board revisions whose firmware loads the same DTB and applies an overlay of its own (the Pi 5 D0 stepping)' },
          ),
        ),
      },
      { additionalProperties: false },
    ),
    console: Type.Object(
      {
        device: Type.String({ description: 'e.g. ttyS1' }),
        baud: Type.Integer({ minimum: 1 }),
        uart: Type.Optional(Id),
        note: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
    partitions: Type.Array(Partition, { minItems: 1 }),
    header: Type.Optional(
      Type.Object(
        {
          name: Type.String({ description: 'e.g. J8' }),
          pins: Type.Array(HeaderPin),
        },
        { additionalProperties: false },
      ),
    ),
    gpio: Type.Object({ controllers: Type.Array(GpioController) }, { additionalProperties: false }),
    buses: Type.Array(Bus, { default: [] }),
    leds: Type.Array(Led, { default: [] }),
    wifi: Type.Optional(
      Type.Object(
        {
          chip: Type.String({ description: 'the radio, e.g. CYW43455' }),
          modules: Type.Array(Type.String(), {
            minItems: 1,
            description: 'its kernel driver, then the parts it asks for with request_module (brcmfmac, brcmfmac-wcc): the board has no modprobe, so all must be in kernel.modules',
          }),
          firmware: Type.Optional(
            Type.Object(
              {
                package: Type.String({ description: 'Debian package the files come from (firmware-brcm80211, in non-free-firmware)' }),
                files: Type.Array(Type.String({ pattern: '^[^/].*[^/]$', description: 'paths under /usr/lib/firmware, e.g. brcm/brcmfmac43455-sdio.bin' }), { minItems: 1 }),
              },
              { additionalProperties: false, description: 'left out only for a radio that loads none (the kernel\'s mac80211_hwsim); boards check refuses a board with boot firmware (a real Pi) without it' },
            ),
          ),
          note: Type.Optional(Type.String()),
        },
        { additionalProperties: false, description: 'the on-board Wi-Fi: driver and firmware files (the board-specific NVRAM .txt and the .clm_blob included); the build fails naming a file the package lacks' },
      ),
    ),
    screen: Type.Optional(
      Type.Object(
        {
          console: Type.String({ pattern: '^tty[1-9]$', description: 'the virtual terminal init runs a REPL on (tty1); the kernel prints there with console=tty1 in kernel.cmdline' }),
          note: Type.Optional(Type.String()),
        },
        { additionalProperties: false, description: 'a screen and keyboard console (HDMI + USB keyboard): needs VT, a framebuffer and HID in the kernel (features/screen.config)' },
      ),
    ),
    usbGadget: Type.Optional(
      Type.Object(
        {
          kind: Type.Optional(Type.Union([Type.Literal('ncm'), Type.Literal('ecm')], { default: 'ncm', description: 'NCM (Linux, macOS, Windows 11) or ECM' })),
          address: Type.Optional(Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+\\.1/24$', default: '192.168.7.1/24', description: "the board's address on the cable; the laptop gets .2 to .20 from the board's DHCP server" })),
        },
        { additionalProperties: false, description: 'USB gadget Ethernet on the OTG port: one cable to a laptop gives the board a network (needs configfs, libcomposite and usb_f_ncm or usb_f_ecm in kernel.modules)' },
      ),
    ),
    emulation: Type.Optional(
      Type.Object(
        {
          qemu: Type.Object(
            {
              machine: Type.String({ description: 'QEMU -M value, machine options after commas, e.g. virt,acpi=off' }),
              cpu: Type.Optional(Type.String({ description: 'QEMU -cpu, for machines without a fixed CPU (virt)' })),
              memory: Type.Optional(Type.String()),
              firmware: Type.Optional(
                Type.Union([Type.Literal('kernel'), Type.Literal('bios')], {
                  default: 'kernel',
                  description: 'how QEMU starts U-Boot: -kernel (raspi machines) or -bios (virt)',
                }),
              ),
              storage: Type.Optional(
                Type.Union([Type.Literal('sd'), Type.Literal('virtio')], { default: 'sd', description: 'how the card is attached: SD slot or virtio-blk' }),
              ),
              sdBus: Type.Optional(
                Type.String({
                  description:
                    "QEMU's bus (a -device bus= path) for the card, where the machine's default slot is on another controller than the board's (raspi4b: /generic-sdhci/sd-bus, emmc2, the first SDHCI QEMU lists); default: the machine's own SD slot",
                }),
              ),
              serial: Type.Array(Type.String(), { minItems: 1, description: "the guest's device for each QEMU serial port in order, e.g. [ttyAMA0, ttyS1]" }),
              overlays: Type.Optional(Type.Array(Type.String(), { description: 'overlays applied only to the DTB QEMU gets (devices QEMU lacks)' })),
              cmdline: Type.Optional(Type.Array(Type.String(), { description: "extra kernel arguments for emulated boots (direct: on the command line; through U-Boot: in the emulated card's bootargs)" })),
              console: Type.Optional(
                Type.String({ description: "console for emulated boots when QEMU's model of the board's console does not work (added as the last console=, like cmdline)" }),
              ),
              covers: Type.Optional(
                Type.Array(Type.String({ pattern: '^[a-z][a-z0-9-]*$' }), {
                  description: "functions (README per-function table) the emulated tests beyond the generated cases use on the board's own part: i2c (test/e2e/i2c.e2e.ts, QEMU's I2C models on the header bus), usb (test/e2e/network.e2e.ts, usb-net on the board's own USB host)",
                }),
              ),
              serialInput: Type.Optional(
                Type.Boolean({
                  default: true,
                  description: "false: this QEMU machine delivers no receive interrupt on the console (raspi4b), so typed input never reaches the REPL; tests drive it with nodeos.run= kernel arguments",
                }),
              ),
              nic: Type.Optional(
                Type.String({ description: "QEMU -device model of the emulated network card (usb-net on the raspi machines' dwc2, virtio-net-device on virt); its guest driver must be in kernel.modules; absent: no network under emulation" }),
              ),
            },
            { additionalProperties: false },
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** A resolved, validated board profile (after `extends`). */
export type BoardProfile = Static<typeof BoardProfileSchema>;
export type HeaderPinSpec = Static<typeof HeaderPin>;
export type BusSpec = Static<typeof Bus>;
export type PartitionSpec = Static<typeof Partition>;

/**
 * The schema of one profile *file*: every field optional (a parent may supply it), and
 * every list may instead be `{ add, remove }` to change the parent's list.
 */
export function fileSchema(schema: TSchema = BoardProfileSchema): object {
  return toFileSchema(JSON.parse(JSON.stringify(schema)) as Record<string, unknown>, true);
}

function toFileSchema(node: Record<string, unknown>, top: boolean): Record<string, unknown> {
  if (node.type === 'object' && node.properties) {
    const props = node.properties as Record<string, Record<string, unknown>>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(props)) out[k] = toFileSchema(v, false);
    const copy: Record<string, unknown> = { ...node, properties: out };
    // A file must still say which profile it is.
    if (top) copy.required = ['id'];
    else delete copy.required;
    return copy;
  }
  if (node.anyOf) return { ...node, anyOf: (node.anyOf as Record<string, unknown>[]).map((n) => toFileSchema(n, false)) };
  if (node.type === 'array') {
    const items = node.items as Record<string, unknown>;
    const list = { ...node, items };
    return {
      description: node.description,
      anyOf: [
        list,
        {
          type: 'object',
          description: 'change the inherited list',
          properties: {
            add: { type: 'array', items },
            remove: { type: 'array', items: { type: ['string', 'integer'] }, description: 'keys (id/pin/value) to remove' },
          },
          additionalProperties: false,
        },
      ],
    };
  }
  return node;
}
