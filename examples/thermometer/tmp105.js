/**
 * The TMP105's temperature register (0): a signed 12-bit value, MSB first on the wire, in
 * 1/16 °C steps left-aligned in 16 bits. SMBus "read word" returns the bytes LSB first, so
 * they are swapped here.
 */
export const TMP105_ADDRESS = 0x48;

/** °C from the word an SMBus read of register 0 gave. */
export function celsiusFromWord(word) {
  const raw = ((word & 0xff) << 8) | (word >> 8);
  return ((raw << 16) >> 16) / 256;
}

export async function readCelsius(bus, address = TMP105_ADDRESS) {
  return celsiusFromWord(await bus.readWord(address, 0));
}
