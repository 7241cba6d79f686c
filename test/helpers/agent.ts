/**
 * The tiny real Windows service agent used by the installer, action and Wine tests: the demo
 * agent of templates/demo-agent, built with mingw-w64 and cached by content hash.
 */
export {
  buildCachedAgent as buildTestAgent,
  buildDemoAgent as copyTestAgent,
  type DemoAgentOptions as AgentOptions,
} from '../../tools/lib/demo/agent.ts';
