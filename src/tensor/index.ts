// The tensor front end in one import: tensors, ops, autograd, optimiser, dtypes.
export * from "./dtype.js";
export * from "./ops.js";
export * from "./optim.js";
export * from "./quant.js";
export { backward, checkpoint, clearTape, isGradEnabled, noGrad, tapeLength } from "./tape.js";
export * from "./tensor.js";
