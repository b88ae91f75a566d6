/** The on-device board API: `board` in the NodeOS REPL. */
export { Board, BoardEnv, createBoard, Led, Pin, PinError, type BoardOptions, type HeaderPins } from './board.js';
export type { Backends, Direction, Edge, GpioBackend, GpioChipInfo, GpioLine, I2cBackend, I2cBus, LedBackend, SerialBackend, SerialPortLike, SystemBackend } from './backend.js';
export { mockBackends, MockGpio, MockI2c, MockLeds, type MockBackends, type MockOptions } from './mock.js';
export { linuxBackends, sysfsChips } from './linux.js';
export { decodeRevision, type BoardInfo, type RevisionInfo } from './info.js';
