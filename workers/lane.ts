/**
 * piscina entry of a lane. Each task is one lane's whole life: it returns only when the
 * supervisor asks the lane to stop (so the pool's idle wait, which would freeze I/O, never
 * runs; the pool is still created with `atomics: 'disabled'`).
 */
import { runLane, type LaneTask } from '../src/lanes/lane.js';
import { nameThisThread } from '../src/thread-name.js';

export default function lane(task: LaneTask): { records: number } {
  nameThisThread(`crowd-lane${task.lane}`);
  return runLane(task);
}
