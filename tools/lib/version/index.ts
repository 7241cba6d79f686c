/** Version planning: the pure planner and the repository reader that feeds it. */
export {
  type Analysis,
  analyzeCommits,
  type Bump,
  commitBump,
  DEFAULT_RULES,
  type ReleaseRule,
} from './analyze.ts';
export { type ConventionalCommit, parseCommit, parseHeader } from './conventional.ts';
export {
  baselineVersion,
  type Channel,
  type ComponentSpec,
  type ComponentStatus,
  isReleaseCommit,
  type ManifestType,
  type ManifestUpdate,
  type ManifestVersion,
  type PlanConfig,
  type PlanInput,
  planRelease,
  type ReleasePlan,
} from './plan.ts';
export { type PlanFromRepoOptions, parseRunNumber, planFromRepo, type RepoPlan } from './repo.ts';
