/**
 * Stands in for npm's node-gyp on the board (the image replaces npm's node-gyp.js with an
 * import of this file): a package that must compile its addon fails with a message that says
 * why and what to do, not a missing-python trace.
 */
import { noCompilerMessage } from './npm.js';

process.stderr.write(`${noCompilerMessage(process.env.npm_package_name, process.env.npm_package_version)}\n`);
process.exit(1);
