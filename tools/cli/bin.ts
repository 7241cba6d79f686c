#!/usr/bin/env node
// The V8 compile cache (and the type-stripped sources with it) makes every start after the first
// faster; it lives in the OS temp folder and is safe to delete.
import module from 'node:module';

module.enableCompileCache?.();
const { main } = await import('./main.ts');
process.exitCode = await main();
