#!/usr/bin/env node
/** Entry point of the `nodeos-bsp` bin. */
import { main } from './index.js';
import { quietOnClosedPipe } from './output.js';

// `nodeos-bsp boards list | head -1`: a reader that went away ends the command quietly.
quietOnClosedPipe(process.stdout);
quietOnClosedPipe(process.stderr);
void main(process.argv.slice(2));
