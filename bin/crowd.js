#!/usr/bin/env node
// crowd's command (package.json "bin"): the compiled CLI.
import '../dist/src/cli.js';
