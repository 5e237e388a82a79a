/**
 * Does create/remove/lookup cost stay flat as devices accumulate?
 * Creates 50,000 devices on one parent, timing each batch of 1,000, then
 * compares lookups with 10 and with 50,000 devices present, then removes all.
 *
 *   node --import tsx test/bench/core.ts
 */
import { MdevCore } from '../../src/core/core.js';
import { uuid } from '../helpers/util.js';

const N = 50_000;
const BATCH = 1_000;
const LOOKUPS = 1_000_000;

const core = new MdevCore();
const parent = await core.host.registerDevice(
  { path: 'devices/virtual/bench/bench', typePrefix: 'bench', subsystem: { class: 'bench' } },
  { driver: 'bench', deviceApi: 'vfio-pci', types: [{ id: '1' }], maxInstances: N * 2, create() {}, remove() {} },
);
const type = parent.types[0]!;
let events = 0;
core.on('change', () => {
  events++;
});
core.on('uevent', () => {
  events++;
});

const keys = Array.from({ length: N }, (_, i) => uuid(i + 1));

/** Mean ns per core.device() call, cycling over the first `count` UUIDs (precomputed). */
function lookupCost(count: number): number {
  let hits = 0;
  const t0 = performance.now();
  for (let i = 0; i < LOOKUPS; i++) if (core.device(keys[i % count]!)) hits++;
  const ns = ((performance.now() - t0) * 1e6) / LOOKUPS;
  if (hits !== LOOKUPS) throw new Error('lookup missed');
  return ns;
}

const firstTen: number[] = [];
const createBatches: number[] = [];
let lookupAt10 = 0;
let t0 = performance.now();
for (let i = 1; i <= N; i++) {
  const s = i <= 10 ? performance.now() : 0;
  await core.create(type, uuid(i));
  if (i <= 10) firstTen.push(performance.now() - s);
  if (i === 10) {
    lookupAt10 = lookupCost(10);
    t0 = performance.now(); // keep the lookup loop out of batch 1
  }
  if (i % BATCH === 0) {
    createBatches.push((performance.now() - t0) / (i === BATCH ? BATCH - 10 : BATCH));
    t0 = performance.now();
  }
}
const lookupAt50k = lookupCost(N);
// Same 10 keys as before, now with 50,000 entries in the map: separates map size from working set.
const lookup10At50k = lookupCost(10);
if (core.availableInstances(type) !== N) throw new Error('capacity accounting is off');

const removeBatches: number[] = [];
t0 = performance.now();
for (let i = 1; i <= N; i++) {
  await core.remove(core.device(uuid(i))!);
  if (i % BATCH === 0) {
    removeBatches.push((performance.now() - t0) / BATCH);
    t0 = performance.now();
  }
}
if ([...core.devices()].length !== 0 || [...core.iommuGroups()].length !== 0) throw new Error('leak');

const us = (ms: number): string => `${(ms * 1000).toFixed(2)} µs`;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`mdev core, ${N} devices on one parent (${events} change/uevent events emitted)`);
console.log(`create #1-#10 (cold, each)   : mean ${us(mean(firstTen))}`);
console.log(`create batch #11-#1000       : ${us(createBatches[0]!)} per create`);
console.log(`create batch #2001-#3000     : ${us(createBatches[2]!)} per create (warm)`);
console.log(`create batch #49001-#50000   : ${us(createBatches.at(-1)!)} per create`);
console.log(`create median over batches   : ${us(median(createBatches))}`);
console.log(`ratio last/first batch       : ${(createBatches.at(-1)! / createBatches[0]!).toFixed(2)}`);
console.log(`ratio last/warm batch        : ${(createBatches.at(-1)! / createBatches[2]!).toFixed(2)}`);
console.log(`remove batch #1-#1000        : ${us(removeBatches[0]!)} per remove`);
console.log(`remove batch #49001-#50000   : ${us(removeBatches.at(-1)!)} per remove`);
console.log(`lookup with 10 devices       : ${lookupAt10.toFixed(1)} ns`);
console.log(`lookup with ${N} devices   : ${lookupAt50k.toFixed(1)} ns`);
console.log(`lookup ratio 50000/10        : ${(lookupAt50k / lookupAt10).toFixed(2)}`);
console.log(
  `same 10 keys, 50000 present  : ${lookup10At50k.toFixed(1)} ns (ratio to 10 devices ${(lookup10At50k / lookupAt10).toFixed(2)})`,
);
