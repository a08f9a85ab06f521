// The Node.js flags the agent process runs with, wherever it is started: the
// systemd unit (infra/agent-bundle/minimcp-agent.service), `npm run agent` and
// the benchmarks' agents. A unit test keeps the first two in step with this list.
//
// --max-semi-space-size=2 (MB): V8 sizes its young generation for programs that
// allocate fast, letting each semi-space grow to 16 MB (~33 MB committed and,
// once cycled through, resident). The agent allocates little (under 1 MB/s idle
// with 100 instances, a few KB per proxied call): with 2 MB semi-spaces its
// resident memory with 100 instances measured 86-91 MB instead of 101-105 MB
// (bench density), for a scavenge every few seconds when idle. 1 MB saved no
// more memory and doubled the scavenges; a busier agent pays in more frequent
// scavenges, not in failures.
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
