#!/usr/bin/env node
/** Entry point of the `nodeos-bsp` bin. */
import { main } from './index.js';

void main(process.argv.slice(2));
