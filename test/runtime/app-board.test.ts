import { strict as assert } from 'node:assert';

describe("nodeos-bsp/board on a development machine (the mock)", () => {
  it('an app imports the board by the package name and reads the mock sensor through the example\'s code', async () => {
    // Self-reference: the kit's package.json exports ./board (dist/src/runtime/board/host.js).
    process.env.NODEOS_BOARD = 'rpi3b';
    const { board } = (await import('nodeos-bsp/board' as string)) as typeof import('../../src/runtime/board/host.js');
    assert.match(board.info.model ?? '', /Raspberry Pi 3 Model B.*\(mock\)/);
    const { readCelsius } = (await import('../../examples/thermometer/tmp105.js' as string)) as { readCelsius: (bus: unknown) => Promise<number> };
    const bus = await board.i2c(1);
    assert.equal(await readCelsius(bus), 25);
    assert.equal(board.GPIO17.write(1).value, 1);
    assert.deepEqual(Object.keys(board.apps), [], 'no apps on the mock');
  });
});
