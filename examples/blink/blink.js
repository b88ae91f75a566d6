/**
 * Blink: GPIO17 (header pin 11, an LED through a 330 Ω resistor to GND) toggles every
 * 500 ms; each press of a button on GPIO27 (pin 13, to 3V3, with a pull-down) switches
 * between slow (500 ms) and fast (100 ms). Runs as the app user: init hands the lines over.
 */
import { clearTimeout, setTimeout } from 'node:timers';
import { board } from 'nodeos-bsp/board';

const led = board.GPIO17;
const button = board.GPIO27;
let period = Number(process.env.BLINK_MS ?? 500);
let on = 0;
let timer;

function tick() {
  on ^= 1;
  led.write(on);
  timer = setTimeout(tick, period);
}

button.watch((value) => {
  if (value !== 1) return;
  period = period === 500 ? 100 : 500;
  console.log(`blink: button pressed, every ${period} ms now`);
}, { edge: 'rising' });

console.log(`blink: ${led} every ${period} ms; button on ${button}`);
tick();

// init stops apps with SIGTERM: leave the LED off and the lines released.
process.on('SIGTERM', () => {
  clearTimeout(timer);
  led.write(0);
  led.close();
  button.close();
  process.exit(0);
});
