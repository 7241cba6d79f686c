#!/usr/bin/env node
// The V8 compile cache (and the type-stripped sources with it) makes every start after the first
// faster; it lives in the OS temp folder and is safe to delete.
import module from 'node:module';

// libuv's file and crypto thread pool (4 by default) is shared by every download a `signet serve`
// streams and every hash it takes; more threads keep one slow read from queueing the rest.
process.env['UV_THREADPOOL_SIZE'] ??= '16';

module.enableCompileCache?.();
const { main } = await import('./main.ts');
process.exitCode = await main();
