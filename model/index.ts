// The model file: generate the architecture-exact ResNet18, fetch a user's pretrained weights,
// and the ImageNet class names that label predictions.
import { commandGroup } from '../common/index.js';
import { generateCommand } from './generate-command.js';
import { fetchCommand } from './fetch-command.js';

export { DEFAULT_MODEL_PATH, ensureModel } from './default-model.js';
export { writeResNet18, buildResNet18 } from './resnet18.js';
export { fetchModel } from './fetch.js';
export { imagenetLabels } from './labels.js';

export const modelCommand = commandGroup('model', 'Create or fetch the ONNX model the model server loads.', [
  generateCommand,
  fetchCommand,
]);
