// The Node.js flags and the C library settings the agent process runs with,
// wherever it is started: the systemd unit (infra/agent-bundle/minimcp-agent.service),
// `npm run agent` and the benchmarks' agents. A unit test keeps the first two
// in step with these lists.
//
// --max-semi-space-size=2 (MB): V8 sizes its young generation for programs that
// allocate fast, letting each semi-space grow to 16 MB (~33 MB committed and,
// once cycled through, resident). The agent allocates little (under 1 MB/s idle
// with 100 instances, a few KB per proxied call): with 2 MB semi-spaces its
// resident memory with 100 instances measured 86-91 MB instead of 101-105 MB
// (bench density), for a scavenge every few seconds when idle. 1 MB saved no
// more memory and doubled the scavenges; a busier agent pays in more frequent
// scavenges, not in failures.
//
// Not --enable-source-maps: with it Node keeps the bundle's parsed source map
// (4-7 MB of the agent's resident memory, bench density); the bundle keeps
// its identifiers, so stack traces still name the functions.
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

// MALLOC_ARENA_MAX=2: glibc gives each thread that allocates its own malloc
// arena (up to 8 per core), and memory freed in one is not handed back to the
// others or to the system. The agent's allocations off the V8 heap come from V8's
// background compiler and GC threads, libuv's pool and the stream buffers; with
// two arenas its resident memory with 100 instances measured 79-81 MB instead of
// 85-89 MB (bench density), with no change in its CPU. Not passed to the MCP
// servers: a child gets only the environment the supervisor builds for it.
export const AGENT_ENVIRONMENT: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
