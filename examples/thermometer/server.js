/**
 * A thermometer: GET / answers {"celsius": 21.5, ...} read from the TMP105 on I2C bus 1.
 * On a NodeOS board, `nodeos-bsp/board` is the same `board` the REPL has.
 */
import { createServer } from 'node:http';
import { board } from 'nodeos-bsp/board';
import { readCelsius, TMP105_ADDRESS } from './tmp105.js';

const BUS = Number(process.env.THERMOMETER_BUS ?? 1);
const PORT = Number(process.env.PORT ?? 8080);

const bus = await board.i2c(BUS);

const server = createServer(async (req, res) => {
  if (req.method !== 'GET' || (req.url !== '/' && req.url !== '/temperature')) {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"try GET /"}\n');
    return;
  }
  try {
    const celsius = await readCelsius(bus);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ celsius, sensor: 'tmp105', bus: BUS, address: TMP105_ADDRESS, at: new Date().toISOString() }) + '\n');
  } catch (err) {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: `cannot read the sensor: ${err.message}` }) + '\n');
  }
});

server.listen(PORT, () => console.log(`thermometer: http://<board>:${PORT}/ (TMP105 on i2c-${BUS} at 0x${TMP105_ADDRESS.toString(16)})`));

// init stops apps with SIGTERM (shutdown, restart, deploy): finish the answers in flight.
process.on('SIGTERM', () => {
  server.close(() => bus.close().finally(() => process.exit(0)));
});
