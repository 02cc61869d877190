// The training modules' seeded generator: src/core/rng.ts's Rng (splitmix32, whose whole state is one
// integer, written into trainer_state.json and restored so a resumed run sees the data order of an
// unbroken one), re-exported here for the train/ modules that import it from ./rng.js.
export { Rng } from "../core/rng.js";
