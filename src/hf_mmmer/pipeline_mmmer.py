"""The `micro-expression-classification` pipeline: from frames, a clip or a video to sorted class scores.

Saved next to the weights (`custom_pipelines` in `config.json`), this file is imported by transformers'
remote-code loader in processes that never imported `hf_mmmer`: it imports only the standard library,
NumPy, Pillow, torch, transformers and its sibling image processor (single-dot relative import).

```python
from transformers import pipeline

classify = pipeline(task="micro-expression-classification", model="path/to/saved_model", trust_remote_code=True)
classify({"onset": "onset.jpg", "apex": "apex.jpg"})
# {'predictions': [{'label': 'surprise', 'score': 0.61}, ...], 'apex_index': None, 'face_crop': 'face'}
classify("clip.avi", return_importance=True, top_k=1)
```
"""

import os
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers.pipelines import Pipeline

from .image_processing_mmmer import IMAGE_EXTENSIONS
from .video_spotting import spot_and_classify

TASK = "micro-expression-classification"
PROCESSOR_FILE = "preprocessor_config.json"
SAMPLE_FORMS = ({"onset", "apex"}, {"flow", "apex"}, {"frames"}, {"video"})
"""Keys of the dict forms of one sample, as the image processor takes them."""


def _is_image_file(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike)) and os.fspath(item).lower().endswith(IMAGE_EXTENSIONS)


def _is_frame(item: Any) -> bool:
    return isinstance(item, (np.ndarray, Image.Image)) or _is_image_file(item)


def is_clip(inputs: Any) -> bool:
    """A non-empty list of frames (arrays, PIL images or image files) is one clip, not a batch."""
    return isinstance(inputs, (list, tuple)) and len(inputs) > 0 and all(_is_frame(item) for item in inputs)


def processor_inputs(sample: Any) -> dict:
    """The image processor's keyword arguments for one pipeline input (see the pipeline's docstring)."""
    if isinstance(sample, dict):
        if set(sample) not in SAMPLE_FORMS:
            raise ValueError(
                f"A sample dict has keys {sorted(sample)}; expected one of "
                f"{[sorted(form) for form in SAMPLE_FORMS]}."
            )
        return dict(sample)
    if is_clip(sample):
        return {"frames": list(sample)}
    if isinstance(sample, (str, os.PathLike)):
        path = os.fspath(sample)
        if os.path.isdir(path):
            return {"frames": path}
        if _is_image_file(path):
            raise ValueError(
                f"{path!r} is a single image; a sample needs motion: pass {{'onset': ..., 'apex': ...}}, a list of "
                "frames, a folder of frames or a video."
            )
        return {"video": path}
    raise TypeError(
        f"Cannot classify a {type(sample).__name__}; pass a dict with onset/apex or flow/apex, a list of frames, a "
        "folder of frames or a video path."
    )


def fuse_scales(scale_maps: dict, modality: str, size: int) -> np.ndarray:
    """One `(size, size)` importance map of `modality`: the mean over its patch scales.

    Each scale's `(h, w)` map (patch importances summing to 1) is spread evenly over the pixels of
    its patches (block upsampling divided by the patch area), so every scale, and their mean, is a
    per-pixel density summing to 1: scales with few large patches and many small ones weigh the same.
    """
    densities = []
    for key, patches in scale_maps.items():
        if key.split("/")[0] == modality:
            patch = size // patches.shape[0]
            densities.append(np.kron(patches, np.ones((patch, patch), np.float32)) / patch**2)
    return np.mean(densities, axis=0).astype(np.float32)


class MicroExpressionClassificationPipeline(Pipeline):
    r"""
    Micro-expression classification with an MMMER model and its image processor. The model is used as given:
    `from_pretrained` returns it in eval mode; a model passed in training mode would answer with dropout on.

    Inputs, one sample or a list of samples (a batch; `batch_size=` groups them for the model; a list of frames
    is one clip, not a batch):

    - `{"onset": frame, "apex": frame}`: two frames; a frame is a file path, a PIL image or a NumPy array;
    - a list of frames (onset first): a clip, whose apex is spotted;
    - a folder of frame images (sorted by the number in their names): a clip;
    - a video file path (anything OpenCV decodes): a clip;
    - `{"flow": flow_image, "apex": face}`: a precomputed flow image (u, v, strain in 0..255) and its face;
    - `{"frames": ...}` or `{"video": ...}`: the explicit forms of the clip inputs.

    Call parameters:

    - `top_k` (`int`, *optional*): how many classes to return, best first; all by default, and clipped to
      the number of labels when larger;
    - `return_importance` (`bool`, defaults to `False`): also return where the model looked (below);
    - any image processor parameter (e.g. `do_crop_face=False`, `apex_spotting="middle"`) for this call.

    Returns, per sample, a dict:

    - `"predictions"`: `[{"label": str, "score": float}, ...]`, softmax scores sorted best first;
    - `"apex_index"`: the index of the frame spotted as the apex for clip inputs, `None` when the apex was given;
    - `"face_crop"`: `"face"`, `"full_frame"` (no face found, whole frame used) or `"off"`;
    - with `return_importance=True`:
      - `"importance"`: per modality the model uses (`"flow"`, `"texture"`), a float32 map of that modality's input
        size (`flow_image_size`, `texture_image_size` squared), the mean over its patch scales of the fused
        attention importances spread over each patch's pixels ([`fuse_scales`]); each map sums to 1. Both maps
        cover the same face crop (the flow is computed on it and the texture is its apex frame);
      - `"scale_importance"`: the per-scale patch importances as the model returns them, keyed `"flow/p7"` etc.,
        each `(image_size // patch, image_size // patch)` and summing to 1;
      - `"apex_face"`: the apex face as the model saw it (uint8, `texture_image_size` squared, gray or RGB), for
        drawing the maps on (see `hf_mmmer.visualization`).
    """

    _load_processor = False
    # Optional for the loader, which would fail with a generic message; __init__ requires it and says what is missing.
    _load_image_processor = None
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.image_processor is None:
            source = getattr(self.model, "name_or_path", "") or "the model"
            raise ValueError(
                f"{source} has no {PROCESSOR_FILE}: the {TASK} pipeline needs the image processor the model was "
                "trained with, saved next to the weights (`processor.save_pretrained(directory)`, or "
                "`hf_mmmer.training.export.save_model_directory`), or passed as `image_processor=`."
            )

    def _sanitize_parameters(self, top_k=None, return_importance=None, **processor_kwargs):
        if self.image_processor is not None:  # None only in the base __init__, before ours reports it missing
            parameters = list(self.image_processor.valid_kwargs.__annotations__)
            unknown = sorted(set(processor_kwargs) - set(parameters))
            if unknown:
                raise TypeError(
                    f"Unknown argument(s) {unknown}: the pipeline takes top_k, return_importance, batch_size and "
                    f"the image processor's parameters {parameters}."
                )
        postprocess = {}
        forward = {}
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be a positive int; got {top_k!r}.")
            postprocess["top_k"] = top_k
        if return_importance is not None:
            forward["return_importance"] = postprocess["return_importance"] = bool(return_importance)
        return processor_kwargs, forward, postprocess

    def __call__(self, inputs, **kwargs):
        """Classify one sample or a list of samples; see the class docstring for the forms and the output.

        `spot=True` takes `inputs` as one long video (a path, a folder or a list of frames; `fps=` where the
        container has none; `progress=True` for a progress bar), spots its micro-expressions and returns
        one `{"onset", "apex", "offset", "onset_time", "offset_time", "label", "score", "spot_score"}` per
        interval (`video_spotting.spot_and_classify`). It is an option of this task rather than a task of
        its own because it needs exactly this model and image processor: a second task would make users
        load the same saved directory twice.
        """
        if kwargs.pop("spot", False):
            return spot_and_classify(self.model, self.image_processor, inputs, **kwargs)
        if is_clip(inputs):
            inputs = {"frames": list(inputs)}
        elif isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(inputs, list) and not inputs:
            raise ValueError("Empty list of samples; pass at least one.")
        return super().__call__(inputs, **kwargs)

    def preprocess(self, sample, **processor_kwargs):
        return self.image_processor(**processor_inputs(sample), return_tensors="pt", **processor_kwargs)

    def _forward(self, model_inputs, return_importance=False):
        outputs = self.model(
            flow_values=model_inputs["flow_values"].to(self.dtype),
            texture_values=model_inputs["texture_values"].to(self.dtype),
            output_patch_importance=return_importance,
        )
        # Flat, batch-first entries: the base class splits a batch back into samples key by key.
        result = {"logits": outputs.logits, "apex_index": model_inputs["apex_index"],
                  "face_crop": model_inputs["face_crop"]}
        if return_importance:
            result["texture_values"] = model_inputs["texture_values"]
            result.update({f"importance/{key}": value for key, value in outputs.patch_importance.items()})
        return result

    def postprocess(self, model_outputs, top_k=None, return_importance=False):
        config = self.model.config
        scores = torch.softmax(model_outputs["logits"][0].float(), dim=-1).tolist()
        ranked = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        top_k = len(scores) if top_k is None else min(top_k, len(scores))
        apex_index = model_outputs["apex_index"][0]
        result = {
            "predictions": [{"label": config.id2label[i], "score": scores[i]} for i in ranked[:top_k]],
            "apex_index": None if apex_index < 0 else int(apex_index),
            "face_crop": model_outputs["face_crop"][0],
        }
        if return_importance:
            scale_maps = {
                key.split("/", 1)[1]: value[0].float().numpy()
                for key, value in model_outputs.items()
                if key.startswith("importance/")
            }
            result["importance"] = {m: fuse_scales(scale_maps, m, config.image_size(m)) for m in config.modalities}
            result["scale_importance"] = scale_maps
            result["apex_face"] = self._apex_face(model_outputs["texture_values"][0])
        return result

    def _apex_face(self, texture_values: torch.Tensor) -> np.ndarray:
        """Undo the processor's texture normalisation: `(C, T, T)` model input to uint8 `(T, T)` or `(T, T, 3)`."""
        processor = self.image_processor
        face = texture_values.float().numpy().transpose(1, 2, 0)
        if processor.do_normalize:
            face = face * np.asarray(processor.image_std, np.float32) + np.asarray(processor.image_mean, np.float32)
        face = np.clip(face * 255.0, 0, 255).round().astype(np.uint8)
        return face[..., 0] if face.shape[-1] == 1 else face
