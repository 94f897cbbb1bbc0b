"""The `micro-expression-classification` pipeline: from frames, a clip or a video to sorted class scores.

Saved next to the weights (`custom_pipelines` in `config.json`), this file is imported by transformers'
remote-code loader in processes that never imported `hf_mmmer`: it imports only the standard library,
NumPy, Pillow, torch, transformers and its sibling image processor (single-dot relative import).

```python
from transformers import pipeline

classify = pipeline(task="micro-expression-classification", model="path/to/saved_model", trust_remote_code=True)
classify({"onset": "onset.jpg", "apex": "apex.jpg"})
# [{'label': 'surprise', 'score': 0.61}, {'label': 'positive', 'score': 0.25}, ...]
classify("clip.avi", return_details=True, top_k=1)
# {'predictions': [{'label': 'surprise', 'score': 0.61}], 'apex_index': 3, 'face_crop': 'face'}
```
"""

import contextlib

import numpy as np
import torch
from transformers.pipelines import Pipeline
from transformers.utils import cached_file

from .image_processing_mmmer import MMMERImageProcessor, is_flag, is_frame_list, sample_inputs
from .video_spotting import spot_and_classify

TASK = "micro-expression-classification"
PROCESSOR_FILE = "preprocessor_config.json"


def _flag(name: str, value) -> bool:
    """`value` as a bool, refusing anything else: `bool("false")` is True, and "no" would mean yes."""
    if not is_flag(value):
        raise ValueError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


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


def motion_importance(flow_values: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Where the motion drove the decision: gradient x (input - still), `(B, S, S)`, each map summing to 1.

    `flow_values` `(B, 3, S, S)` is the model's flow input (u, v, strain) and `gradient` the gradient of the
    predicted class's logit with respect to it. The processor's per-sample min-max scaling moved "no motion"
    away from 0, to a level unknown per sample; most of a face stays still, so each channel's median stands
    for it, and the product with the gradient is the first-order share of the logit that the motion at each
    pixel of the flow map carries. Its absolute value summed over the channels is the map: fine where the
    fused attention is patch-coarse, and near zero where motion (noise, a blink) did not matter to the model.
    Measured against the attention, the flow magnitude and other gradient maps on warps of a real face in
    `benchmarks/attribution.py` (`benchmarks/RESULTS.md`). A map with no contribution at all is uniform.
    """
    still = flow_values.flatten(2).median(dim=-1).values[..., None, None]
    contribution = (gradient * (flow_values - still)).sum(dim=1).abs()
    total = contribution.sum(dim=(1, 2), keepdim=True)
    uniform = torch.full_like(contribution, 1.0 / contribution[0].numel())
    return torch.where(total > 0, contribution / total.clamp_min(torch.finfo(total.dtype).tiny), uniform)


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
    - `return_details` (`bool`, defaults to `False`): return a dict of details (below) instead of the list;
    - `return_importance` (`bool`, defaults to `False`): also return where the model looked (below); implies
      `return_details`, since the maps do not fit in the list;
    - any image processor parameter (e.g. `do_crop_face=False`, `apex_spotting="middle"`) for this call.

    Returns, like Hugging Face's classification pipelines, per sample a list `[{"label": str, "score": float},
    ...]` of softmax scores sorted best first (`classify(x)[0]["label"]` is the prediction); for a list of
    samples, a list of such lists. With `return_details=True`, per sample a dict:

    - `"predictions"`: that list;
    - `"apex_index"`: the index of the frame spotted as the apex for clip inputs, `None` when the apex was given;
    - `"face_crop"`: `"face"`, `"full_frame"` (no face found, whole frame used) or `"off"`;
    - with `return_importance=True`:
      - `"importance"`: per modality the model uses (`"flow"`, `"texture"`), a float32 map of that modality's input
        size (`flow_image_size`, `texture_image_size` squared), the mean over its patch scales of the fused
        attention importances spread over each patch's pixels ([`fuse_scales`]); each map sums to 1. Both maps
        cover the same face crop (the flow is computed on it and the texture is its apex frame);
      - `"motion_importance"` (models that use the flow): a float32 `(flow_image_size, flow_image_size)` map
        summing to 1, gradient x (input - still) of the predicted class on the flow ([`motion_importance`]):
        the map that points at a moving lip corner, where the attention is patch-coarse (one backward pass);
      - `"scale_importance"`: the per-scale patch importances as the model returns them, keyed `"flow/p7"` etc.,
        each `(image_size // patch, image_size // patch)` and summing to 1;
      - `"flow"`: the flow as the model saw it, float32 `(flow_image_size, flow_image_size, 3)`, channels u, v,
        strain, each min-max scaled to [0, 1] per sample (see `hf_mmmer.visualization.flow_to_color`);
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
        source = getattr(self.model, "name_or_path", "")
        if self.image_processor is None and source:
            saved = cached_file(source, PROCESSOR_FILE, local_files_only=True,
                                _raise_exceptions_for_missing_entries=False,
                                _raise_exceptions_for_connection_errors=False)
            if saved is not None:
                # The loader found the file but swallowed why it failed (the processor is optional to it): load
                # it here, so that a bad value in it is named instead of the file being called missing.
                try:
                    self.image_processor = MMMERImageProcessor.from_json_file(saved)
                except (ValueError, TypeError) as error:  # json's decode error is a ValueError
                    raise ValueError(f"{saved}: {error}") from error
        if self.image_processor is None:
            raise ValueError(
                f"{source or 'the model'} has no {PROCESSOR_FILE}: the {TASK} pipeline needs the image processor the "
                "model was trained with, saved next to the weights (`processor.save_pretrained(directory)`, or "
                "`hf_mmmer.training.export.save_model_directory`), or passed as `image_processor=`."
            )
        # Refused here, before any sample: a mismatched processor fails on the first input with a shape error
        # that does not say which file to fix, and a partly loaded or damaged model predicts without any error.
        self.image_processor.check_matches(self.model.config)
        self.model.check_ready_for_inference()

    def _sanitize_parameters(self, top_k=None, return_details=None, return_importance=None, **processor_kwargs):
        if self.image_processor is not None:  # None only in the base __init__, before ours reports it missing
            parameters = list(self.image_processor.valid_kwargs.__annotations__)
            unknown = sorted(set(processor_kwargs) - set(parameters))
            if unknown:
                raise TypeError(
                    f"Unknown argument(s) {unknown}: the pipeline takes top_k, return_details, return_importance, "
                    f"batch_size and the image processor's parameters {parameters}."
                )
        postprocess = {}
        forward = {}
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be a positive int; got {top_k!r}.")
            postprocess["top_k"] = top_k
        if return_details is not None:
            postprocess["return_details"] = _flag("return_details", return_details)
        if return_importance is not None:
            forward["return_importance"] = postprocess["return_importance"] = _flag("return_importance",
                                                                                    return_importance)
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
        batch_size = kwargs.get("batch_size")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
        if _flag("spot", kwargs.pop("spot", False)):
            return spot_and_classify(self.model, self.image_processor, inputs, **kwargs)
        if is_frame_list(inputs):
            inputs = {"frames": list(inputs)}
        elif isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(inputs, list) and not inputs:
            raise ValueError("Empty list of samples; pass at least one.")
        return super().__call__(inputs, **kwargs)

    def preprocess(self, sample, **processor_kwargs):
        return self.image_processor(**sample_inputs(sample), return_tensors="pt", **processor_kwargs)

    def _forward(self, model_inputs, return_importance=False):
        flow_values = model_inputs["flow_values"].to(self.dtype)
        texture_values = model_inputs.get("texture_values")  # absent for a flow map given alone
        if texture_values is None and "texture" in self.model.config.modalities:
            raise ValueError("this model reads the apex face as well as the flow map (modalities "
                             f"{self.model.config.modalities}): give the apex with the flow ({{'flow': ..., 'apex': "
                             "...}, or --apex)")
        if texture_values is not None:
            texture_values = texture_values.to(self.dtype)
        uses_motion = return_importance and "flow" in self.model.config.modalities
        # The pipeline runs without gradients; the motion importance needs the one of the logit w.r.t. the flow.
        with torch.enable_grad() if uses_motion else contextlib.nullcontext():
            flow_values.requires_grad_(uses_motion)
            outputs = self.model(
                flow_values=flow_values,
                texture_values=texture_values,
                output_patch_importance=return_importance,
            )
            if uses_motion:  # samples do not interact in eval mode: one backward gives every sample's gradient
                (gradient,) = torch.autograd.grad(outputs.logits.max(dim=-1).values.sum(), flow_values)
        # Flat, batch-first entries: the base class splits a batch back into samples key by key.
        result = {"logits": outputs.logits.detach(), "apex_index": model_inputs["apex_index"],
                  "face_crop": model_inputs["face_crop"]}
        if uses_motion:
            result["motion_importance"] = motion_importance(flow_values.detach(), gradient)
        if return_importance:
            result["flow_values"] = flow_values.detach()
            if texture_values is not None:
                result["texture_values"] = texture_values
            result.update({f"importance/{key}": value.detach() for key, value in outputs.patch_importance.items()})
        return result

    def postprocess(self, model_outputs, top_k=None, return_details=False, return_importance=False):
        config = self.model.config
        scores = torch.softmax(model_outputs["logits"][0].float(), dim=-1).tolist()
        ranked = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        top_k = len(scores) if top_k is None else min(top_k, len(scores))
        predictions = [{"label": config.id2label[i], "score": scores[i]} for i in ranked[:top_k]]
        if not (return_details or return_importance):
            return predictions
        apex_index = model_outputs["apex_index"][0]
        result = {
            "predictions": predictions,
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
            if "motion_importance" in model_outputs:
                result["motion_importance"] = model_outputs["motion_importance"][0].float().numpy()
            result["scale_importance"] = scale_maps
            result["flow"] = self._unnormalize(model_outputs["flow_values"][0], "flow_mean", "flow_std")
            result["apex_face"] = None  # a flow map given alone has no face
            if "texture_values" in model_outputs:
                face = np.clip(self._unnormalize(model_outputs["texture_values"][0]) * 255.0, 0, 255).round()
                result["apex_face"] = face.astype(np.uint8)[..., 0] if face.shape[-1] == 1 else face.astype(np.uint8)
        return result

    def _unnormalize(self, values: torch.Tensor, mean: str = "image_mean", std: str = "image_std") -> np.ndarray:
        """Undo the processor's mean / std normalisation: `(C, S, S)` model input to float32 `(S, S, C)` in [0, 1]."""
        processor = self.image_processor
        image = values.float().numpy().transpose(1, 2, 0)
        if processor.do_normalize:
            scale, shift = (np.asarray(getattr(processor, name), np.float32) for name in (std, mean))
            image = image * scale + shift
        return image
