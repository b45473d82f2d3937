// The model's input contract, shared by preprocessing (main thread) and inference (worker).
export const RESIZE_SHORTER_SIDE = 256;
export const CROP_SIZE = 224;
export const CHANNELS = 3;
export const IMAGE_ELEMENTS = CHANNELS * CROP_SIZE * CROP_SIZE;
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
