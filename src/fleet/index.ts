/** Fleets over an MQTT broker: topics, signed jobs, staged rollouts, the agents' retry pacing. */
export { checkName, fleetTopics, nameProblem, NAME_RULE, parseTopic, TOPIC_ROOT, type NameKind } from './topics.js';
export { acceptJob, bundleUrlProblem, checkJob, CLOCK_SKEW_MS, encodeJob, JOB_FORMAT, MAX_JOB_BYTES, MAX_JOB_LIFETIME_MS, signJob, type Job, type JobAction, type JobReceiver, type SignedJob } from './jobs.js';
export { checkRolloutOptions, createRollout, DEFAULT_ROLLOUT, FAILED, failedBoards, reportProgress, rolloutCounts, stepRollout, TERMINAL, type BoardExecution, type ExecutionState, type RolloutOptions, type RolloutPhase, type RolloutState } from './rollout.js';
export { DEFAULT_BACKOFF, retryDelay, type Backoff } from './backoff.js';
export { FleetAgent, type AgentOptions, type BoardState, type BrokerClient, type FleetSystem, type JobProgress, type JobStore, type PendingJob, type Will } from './agent.js';
export { driveRollout, parseBoardState, parseProgress, readFleet, readRollouts, rolloutJobId, sendJob, type BoardRow, type DriveOptions } from './controller.js';
export { mosquittoConfig, type BrokerConfigOptions } from './broker-config.js';
export { connectController, findRollout, inspectBundleFile, inspectBundleUrl, planRollout, readBoardsFile, writeBrokerConfig, type BrokerLogin, type ControllerConnection } from './host.js';
export { downloadResumable, type ResumableDownload } from './download.js';
export { FileJobStore, parsePending, SEEN_KEPT } from './job-store.js';
