"""The MMMER network: multi-modal, multi-scale transformers for micro-expression recognition.

After arXiv 2301.02969. Two modalities of one sample, motion (onset-to-apex optical flow u, v and
optical strain) and texture (the apex face), are each cut into patches at several scales; one small
pre-norm transformer encoder per (modality, scale) turns them into tokens. The attention weights of
all layers and heads are fused into one importance per patch (attention rollout by default), which
weights the patch tokens; the per-scale features of a modality are projected to one modality
embedding. A symmetric InfoNCE loss aligns the two modality embeddings of a sample, and a linear head
classifies their concatenation.

Layering (each a small module): patch embeddings -> attention -> layer -> encoder -> scale encoder
(with fusion) -> modality encoder -> `MMMERModel` -> `MMMERForMicroExpressionClassification`.
This file imports nothing from `hf_mmmer` but its configuration (single-dot import), because
`save_pretrained` copies it next to the weights for `trust_remote_code` loading.
"""

import json
import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.utils import SAFE_WEIGHTS_NAME, WEIGHTS_NAME, ModelOutput, cached_file

from .configuration_mmmer import MMMERConfig

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp: keeps a learnable temperature from collapsing
IGNORE_INDEX = -100  # a hard label that takes no part in the loss, as in transformers' models
ARCHITECTURE_KEY = "mmmer_architecture"
"""Safetensors metadata key holding `config.architecture()` as JSON, written by `save_pretrained`."""
# transformers writes `auto_map` only for the class being saved; a checkpoint must load with either
# Auto class, whichever class saved it.
AUTO_MAP = {
    "AutoConfig": "configuration_mmmer.MMMERConfig",
    "AutoModel": "modeling_mmmer.MMMERModel",
    "AutoModelForImageClassification": "modeling_mmmer.MMMERForMicroExpressionClassification",
}


@dataclass
class MMMERModelOutput(ModelOutput):
    """Output of [`MMMERModel`].

    Args:
        pooled_output (`torch.FloatTensor` of shape `(B, M * hidden_size)`): the modality embeddings of
            the `M` configured modalities, concatenated in `config.modalities` order.
        flow_embeds (`torch.FloatTensor` of shape `(B, hidden_size)`, *optional*): motion embedding.
        texture_embeds (`torch.FloatTensor` of shape `(B, hidden_size)`, *optional*): texture embedding.
        patch_importance (`dict[str, torch.FloatTensor]`): keyed `"flow/p<size>"` / `"texture/p<size>"`,
            each `(B, h, w)` with `h = w = image_size // size`, non-negative, summing to 1 per sample.
            Empty for `fusion="cls"` unless `output_patch_importance=True`.
        hidden_states (`dict[str, tuple[torch.FloatTensor]]`, *optional*): per scale, the input of every
            layer and the final output, each `(B, 1 + h * w, hidden_size)`.
        attentions (`dict[str, tuple[torch.FloatTensor]]`, *optional*): per scale, every layer's
            attention probabilities `(B, heads, 1 + h * w, 1 + h * w)`.
    """

    pooled_output: Optional[torch.FloatTensor] = None
    flow_embeds: Optional[torch.FloatTensor] = None
    texture_embeds: Optional[torch.FloatTensor] = None
    patch_importance: Optional[dict] = None
    hidden_states: Optional[dict] = None
    attentions: Optional[dict] = None


@dataclass
class MMMERClassifierOutput(ModelOutput):
    """Output of [`MMMERForMicroExpressionClassification`].

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` are given):
            `classification_loss + config.contrastive_weight * contrastive_loss`.
        logits (`torch.FloatTensor` of shape `(B, num_labels)`): class scores before softmax.
        classification_loss (`torch.FloatTensor` of shape `()`, *optional*): the cross-entropy term.
        contrastive_loss (`torch.FloatTensor` of shape `()`, *optional*): the cross-modal InfoNCE term;
            computed whenever both modalities run and the batch has at least 2 samples.
        flow_embeds, texture_embeds, patch_importance, hidden_states, attentions: as in
            [`MMMERModelOutput`].
    """

    loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    classification_loss: Optional[torch.FloatTensor] = None
    contrastive_loss: Optional[torch.FloatTensor] = None
    flow_embeds: Optional[torch.FloatTensor] = None
    texture_embeds: Optional[torch.FloatTensor] = None
    patch_importance: Optional[dict] = None
    hidden_states: Optional[dict] = None
    attentions: Optional[dict] = None


# ----------------------------------------------------------------------------------------------------
# Functions: attention fusion and the contrastive loss (pure, so tests can check them by hand)
# ----------------------------------------------------------------------------------------------------


def attention_rollout(attentions) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020) of a stack of attention probabilities.

    Each layer's `(B, heads, T, T)` probabilities are averaged over heads, the identity is added (the
    residual path) and rows are renormalised; the layers are multiplied from first to last. Returns the
    `(B, T, T)` rollout matrix; row 0 says how much each token reaches the [CLS] token.
    """
    rollout = None
    for layer_attention in attentions:
        attention = layer_attention.mean(dim=1)
        attention = attention + torch.eye(attention.shape[-1], dtype=attention.dtype, device=attention.device)
        attention = attention / attention.sum(dim=-1, keepdim=True)
        rollout = attention if rollout is None else attention @ rollout
    return rollout


def fuse_patch_importance(attentions, mode: str) -> torch.Tensor:
    """Fuse per-layer attention probabilities into one importance per patch, `(B, N)`, summing to 1.

    `mode`: `"rollout"` (attention rollout, default of the recipe), `"last"` (the last layer's [CLS]
    row, averaged over heads) or `"mean"` (the [CLS] row averaged over heads and layers). `"cls"` uses
    rollout too, for display only: that fusion mode does not weight the tokens.
    """
    if mode in ("rollout", "cls"):
        cls_row = attention_rollout(attentions)[:, 0, 1:]
    elif mode == "last":
        cls_row = attentions[-1].mean(dim=1)[:, 0, 1:]
    elif mode == "mean":
        cls_row = torch.stack([a.mean(dim=1)[:, 0, 1:] for a in attentions]).mean(dim=0)
    else:
        raise ValueError(f"unknown fusion mode {mode!r}; expected rollout, last, mean or cls")
    return cls_row / cls_row.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(cls_row.dtype).tiny)


def cross_modal_contrastive_loss(
    embeds_a: torch.Tensor, embeds_b: torch.Tensor, logit_scale: torch.Tensor, labels: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP style) between two L2-normalised `(B, D)` embeddings of the same samples.

    Sample i's two modalities are the positive pair; every other sample of the batch is a negative.
    With `labels` (supervised variant, after Khosla et al. 2020) all pairs with the same label are
    positives, and each row's loss is the mean negative log-probability over its positives; a row
    labelled `-100` (unknown class) is a positive of itself only, since two unknown labels need not be
    the same class. The two
    directions (a->b and b->a) are averaged, so the loss is symmetric in its arguments.
    """
    logits = logit_scale.exp() * embeds_a @ embeds_b.t()
    if labels is None:
        positives = torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    else:
        positives = (labels[:, None] == labels[None, :]) & (labels != IGNORE_INDEX)[:, None]
        positives |= torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    positives = positives.to(logits.dtype)

    def one_direction(direction_logits):
        log_probs = F.log_softmax(direction_logits, dim=-1)
        return (-(log_probs * positives).sum(-1) / positives.sum(-1)).mean()

    return 0.5 * (one_direction(logits) + one_direction(logits.t()))


# ----------------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------------


def randomly_kept(x, drop_prob: float, mask_shape=None):
    """`x` with each element (or each slice of `mask_shape`, broadcast) zeroed with probability `drop_prob`
    and the rest scaled by `1 / (1 - drop_prob)`: dropout's distribution, for `drop_prob` in [0, 1).

    The mask is `floor(U + keep)` of a uniform draw `U`, which is 1 exactly when `U >= drop_prob`. On CPU
    a mask made this way costs about a third less than `F.dropout`'s Bernoulli draws, and a training step
    draws 28 of them (benchmarks/RESULTS.md).
    """
    keep = 1.0 - drop_prob
    # Drawn in float32 whatever x's dtype: a half-precision U + keep would round the keep probability.
    uniform = torch.rand(x.shape if mask_shape is None else mask_shape, device=x.device)
    return x * uniform.add_(keep).floor_().mul_(1.0 / keep).to(x.dtype)


class MMMERDropout(nn.Module):
    """`nn.Dropout` with the cheaper mask of `randomly_kept`; no parameters, so saved weights are unaffected."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def mask_shape(self, x):
        """The shape of the mask drawn for `x` (`None`: one draw per element)."""
        return None

    def forward(self, x):
        if self.p == 0.0 or not self.training:
            return x
        return randomly_kept(x, self.p, self.mask_shape(x))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MMMERDropPath(MMMERDropout):
    """Stochastic depth: drop a residual branch for whole samples during training (one draw per sample)."""

    def mask_shape(self, x):
        return (x.shape[0],) + (1,) * (x.ndim - 1)


class MMMERPatchEmbeddings(nn.Module):
    """`p x p` stride-`p` convolution to tokens, plus a [CLS] token and learnable position embeddings.

    Input `(B, C, S, S)`; output `(B, 1 + (S/p)^2, hidden_size)`.
    """

    def __init__(self, config: MMMERConfig, modality: str, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.grid_size = config.image_size(modality) // patch_size
        self.projection = nn.Conv2d(config.channels(modality), config.hidden_size, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.position_embeddings = nn.Parameter(torch.zeros(1, 1 + self.grid_size**2, config.hidden_size))
        self.dropout = MMMERDropout(config.hidden_dropout_prob)

    def forward(self, pixel_values):
        # The stride-p convolution as one matrix product over the flattened patches: the same result from the
        # same `projection` weights, faster on CPU at these tiny sizes (see benchmarks/RESULTS.md).
        batch, channels = pixel_values.shape[:2]
        p, grid = self.patch_size, self.grid_size
        patches = pixel_values.reshape(batch, channels, grid, p, grid, p).permute(0, 2, 4, 1, 3, 5)
        patches = patches.reshape(batch, grid * grid, channels * p * p)
        tokens = F.linear(patches, self.projection.weight.flatten(1), self.projection.bias)
        cls = self.cls_token.expand(batch, -1, -1)
        return self.dropout(torch.cat([cls, tokens], dim=1) + self.position_embeddings)


class MMMERSelfAttention(nn.Module):
    """Multi-head self-attention that returns its probabilities only when asked.

    When the probabilities are needed (fusion, or `output_attentions`) they come from the same
    computation that produced the output; otherwise PyTorch's fused `scaled_dot_product_attention`
    runs, which is faster and never materialises them.
    """

    def __init__(self, config: MMMERConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.output = nn.Linear(config.hidden_size, config.hidden_size)
        self.attention_dropout = config.attention_probs_dropout_prob
        self.output_dropout = MMMERDropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, need_weights: bool = False):
        batch, tokens, width = hidden_states.shape
        qkv = self.qkv(hidden_states).reshape(batch, tokens, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        dropout = self.attention_dropout if self.training else 0.0
        if need_weights:
            probs = torch.softmax(query @ key.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)
            context = (randomly_kept(probs, dropout) if dropout > 0 else probs) @ value
        else:
            probs = None
            context = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout)
        context = context.transpose(1, 2).reshape(batch, tokens, width)
        return self.output_dropout(self.output(context)), probs


class MMMERMlp(nn.Module):
    def __init__(self, config: MMMERConfig):
        super().__init__()
        inner = int(config.hidden_size * config.mlp_ratio)
        self.fc1 = nn.Linear(config.hidden_size, inner)
        self.fc2 = nn.Linear(inner, config.hidden_size)
        self.dropout = MMMERDropout(config.hidden_dropout_prob)

    def forward(self, x):
        return self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(x)))))


class MMMERLayer(nn.Module):
    """Pre-norm transformer layer: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x)))."""

    def __init__(self, config: MMMERConfig, drop_path: float):
        super().__init__()
        self.norm_before_attention = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = MMMERSelfAttention(config)
        self.norm_before_mlp = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MMMERMlp(config)
        self.drop_path = MMMERDropPath(drop_path)

    def forward(self, hidden_states, need_weights: bool = False):
        attended, probs = self.attention(self.norm_before_attention(hidden_states), need_weights)
        hidden_states = hidden_states + self.drop_path(attended)
        hidden_states = hidden_states + self.drop_path(self.mlp(self.norm_before_mlp(hidden_states)))
        return hidden_states, probs


class MMMEREncoder(nn.Module):
    """A stack of `num_hidden_layers` layers with stochastic depth rising linearly to `drop_path_rate`."""

    def __init__(self, config: MMMERConfig):
        super().__init__()
        depth = config.num_hidden_layers
        rates = [config.drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.layers = nn.ModuleList(MMMERLayer(config, rate) for rate in rates)
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states, need_weights: bool = False, output_hidden_states: bool = False):
        all_hidden, all_attentions = [], []
        for layer in self.layers:
            if output_hidden_states:
                all_hidden.append(hidden_states)
            hidden_states, probs = layer(hidden_states, need_weights)
            if need_weights:
                all_attentions.append(probs)
        hidden_states = self.final_norm(hidden_states)
        if output_hidden_states:
            all_hidden.append(hidden_states)
        return hidden_states, tuple(all_hidden), tuple(all_attentions)


class MMMERScaleEncoder(nn.Module):
    """One patch scale of one modality: embed, encode, fuse attention into patch weights, pool.

    The feature is `[CLS] ++ sum_i w_i t_i` (`2 * hidden_size`), or `[CLS]` alone with `fusion="cls"`.
    """

    def __init__(self, config: MMMERConfig, modality: str, patch_size: int, encoder: MMMEREncoder):
        super().__init__()
        self.fusion = config.fusion
        self.embeddings = MMMERPatchEmbeddings(config, modality, patch_size)
        self.encoder = encoder

    @property
    def feature_size(self):
        return self.encoder.final_norm.normalized_shape[0] * (1 if self.fusion == "cls" else 2)

    def forward(self, pixel_values, output_attentions=False, output_hidden_states=False, output_importance=False):
        weight_tokens = self.fusion != "cls"
        need_weights = weight_tokens or output_attentions or output_importance
        tokens, hidden_states, attentions = self.encoder(
            self.embeddings(pixel_values), need_weights=need_weights, output_hidden_states=output_hidden_states
        )
        cls_token, patch_tokens = tokens[:, 0], tokens[:, 1:]
        importance = None
        if weight_tokens or output_importance:
            importance = fuse_patch_importance(attentions, self.fusion)
        if weight_tokens:
            feature = torch.cat([cls_token, (importance.unsqueeze(-1) * patch_tokens).sum(dim=1)], dim=-1)
        else:
            feature = cls_token
        grid = self.embeddings.grid_size
        if importance is not None:
            importance = importance.reshape(-1, grid, grid)
        return feature, importance, hidden_states, attentions


class MMMERModalityEncoder(nn.Module):
    """All patch scales of one modality, their features concatenated and projected to `hidden_size`."""

    def __init__(self, config: MMMERConfig, modality: str):
        super().__init__()
        self.modality = modality
        self.patch_sizes = config.patch_sizes(modality)
        shared = MMMEREncoder(config) if config.share_scale_encoders else None
        self.scales = nn.ModuleList(
            MMMERScaleEncoder(config, modality, p, shared if shared is not None else MMMEREncoder(config))
            for p in self.patch_sizes
        )
        features = sum(scale.feature_size for scale in self.scales)
        self.projection = nn.Sequential(
            nn.Linear(features, config.hidden_size), nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        )

    def forward(self, pixel_values, output_attentions=False, output_hidden_states=False, output_importance=False):
        features, importance, hidden_states, attentions = [], {}, {}, {}
        for patch_size, scale in zip(self.patch_sizes, self.scales):
            key = f"{self.modality}/p{patch_size}"
            feature, scale_importance, scale_hidden, scale_attentions = scale(
                pixel_values, output_attentions, output_hidden_states, output_importance
            )
            features.append(feature)
            if scale_importance is not None:
                importance[key] = scale_importance
            if output_hidden_states:
                hidden_states[key] = scale_hidden
            if output_attentions:
                attentions[key] = scale_attentions
        return self.projection(torch.cat(features, dim=-1)), importance, hidden_states, attentions


# ----------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------


class MMMERPreTrainedModel(PreTrainedModel):
    config_class = MMMERConfig
    base_model_prefix = "mmmer"
    main_input_name = "flow_values"
    supports_gradient_checkpointing = False
    _no_split_modules = ["MMMERLayer"]

    @torch.no_grad()
    def _init_weights(self, module):
        """ViT-style initialisation: truncated normal for weights and tokens, zero biases, unit norms."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, MMMERPatchEmbeddings):
            nn.init.trunc_normal_(module.cls_token, std=std)
            nn.init.trunc_normal_(module.position_embeddings, std=std)
        elif isinstance(module, MMMERForMicroExpressionClassification):
            module.logit_scale.fill_(math.log(1.0 / self.config.contrastive_temperature))

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`PreTrainedModel.save_pretrained` (safetensors), with every Auto class in `config.auto_map` and the
        architecture fields recorded in the weights' metadata, so that a later edit of config.json is caught."""
        self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **AUTO_MAP}
        result = super().save_pretrained(save_directory, *args, **kwargs)
        weights = Path(save_directory) / SAFE_WEIGHTS_NAME  # a sharded save is not recorded, and not checked
        if kwargs.get("is_main_process", True) and weights.is_file():
            _add_metadata(weights, {ARCHITECTURE_KEY: json.dumps(self.config.architecture(), sort_keys=True)})
        return result

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, refusing a checkpoint whose config.json no longer describes its
        weights or whose weights file cannot be read, and keeping the loading report for
        [`~MMMERPreTrainedModel.check_ready_for_inference`]. Weights are read from safetensors only, unless
        the caller passes `use_safetensors=False` for a pickled `pytorch_model.bin` it trusts."""
        wants_info = kwargs.pop("output_loading_info", False)
        kwargs.setdefault("use_safetensors", True)  # never unpickle a pytorch_model.bin unless asked to
        source = pretrained_model_name_or_path
        location = {key: kwargs.get(key) for key in ("cache_dir", "revision")}
        location["subfolder"] = kwargs.get("subfolder") or ""
        try:
            model, info = super().from_pretrained(source, *args, output_loading_info=True, **kwargs)
        except OSError as error:
            pickled = cached_file(source, WEIGHTS_NAME, local_files_only=True, **location,
                                  _raise_exceptions_for_missing_entries=False,
                                  _raise_exceptions_for_connection_errors=False)
            if pickled is None or _saved_weights_file(source, location) is not None:
                raise
            raise OSError(
                f"{os.fspath(source)} holds {WEIGHTS_NAME}, a pickle, and no {SAFE_WEIGHTS_NAME}: loading a pickle can "
                "run any code, so it is not loaded unless use_safetensors=False is passed for a file you trust."
            ) from error
        except SafetensorError as error:
            raise ValueError(
                f"{os.fspath(source)}: {SAFE_WEIGHTS_NAME} cannot be read ({error}); the file is damaged or not a "
                "safetensors file."
            ) from error
        except RuntimeError as error:
            if "ignore_mismatched_sizes" not in str(error):
                raise
            # Tensor shapes differ from the config's: name the changed fields when the save recorded them.
            weights = _saved_weights_file(source, location)
            if weights is not None:
                _check_architecture(weights, cls._config_in_use(source, location, kwargs))
            raise ValueError(
                f"{os.fspath(source)}: the config (config.json, or the config or keyword arguments given) does not "
                f"describe the tensors in {SAFE_WEIGHTS_NAME} (their shapes differ); restore the saved values, or "
                "pass ignore_mismatched_sizes=True to start the mismatched layers afresh."
            ) from error
        model.loading_info = info
        model.config.validate_sizes()  # keyword arguments were set on the config after its own checks ran
        weights = _saved_weights_file(source, location)
        if weights is not None and not kwargs.get("ignore_mismatched_sizes"):  # else: fine-tuning, by consent
            _check_architecture(weights, model.config)
        return (model, info) if wants_info else model

    @classmethod
    def _config_in_use(cls, source, location: dict, kwargs: dict):
        """The config a `from_pretrained(source, **kwargs)` call builds: the `config` given, or the one read from
        `config` (a path) or `source`, with the keyword arguments that are config fields applied."""
        config = kwargs.get("config")
        if isinstance(config, PretrainedConfig):  # an Auto class's or pipeline's: its own copy of the config class
            return config
        config = cls.config_class.from_pretrained(config or source, local_files_only=True, **location)
        for key, value in kwargs.items():  # as from_pretrained applies them; loading options are not fields
            if key not in location and hasattr(config, key):
                setattr(config, key, value)
        return config

    def check_ready_for_inference(self):
        """Raise `ValueError` naming the checkpoint when a loaded model lacks tensors (they would be random) or
        holds NaN or inf weights (a damaged file): its predictions would look normal and mean nothing."""
        source = self.name_or_path or "the model"
        missing = sorted((getattr(self, "loading_info", None) or {}).get("missing_keys", []))
        if missing:
            raise ValueError(
                f"{source}: {SAFE_WEIGHTS_NAME} lacks {len(missing)} tensor(s) the model needs "
                f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); they would be randomly initialised. "
                "Use a complete checkpoint."
            )
        tensors = [*self.named_parameters(), *self.named_buffers()]
        broken = [name for name, tensor in tensors if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
        if broken:
            raise ValueError(
                f"{source}: {len(broken)} weight tensor(s) hold NaN or inf values ({', '.join(broken[:3])}); the "
                "checkpoint is damaged or the training diverged."
            )

    def check_inputs(self, flow_values=None, texture_values=None) -> dict:
        """Check that every configured modality is given with its configured shape and finite values; return
        them as tensors of the model's dtype, keyed `"flow"` / `"texture"`.

        Raises `ValueError` naming the tensor and the expected shape, since a silently broadcast or
        mis-sized input would train a wrong model without any error. Float tensors or NumPy arrays are cast
        to the model's dtype; integer ones are refused (pixel values that skipped the image processor).
        """
        inputs = {"flow": flow_values, "texture": texture_values}
        checked, batch_sizes = {}, {}
        for modality in self.config.modalities:
            name, tensor = f"{modality}_values", inputs[modality]
            size, channels = self.config.image_size(modality), self.config.channels(modality)
            expected = f"(batch, {channels}, {size}, {size})"
            if tensor is None:
                raise ValueError(
                    f"{name} is missing: this model's modalities are {self.config.modalities}; expected {expected}"
                )
            if isinstance(tensor, np.ndarray):
                tensor = torch.as_tensor(tensor, device=self.device)
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"{name} is a {type(tensor).__name__}; expected a float tensor {expected}")
            if tensor.ndim != 4 or tuple(tensor.shape[1:]) != (channels, size, size):
                raise ValueError(f"{name} has shape {tuple(tensor.shape)}; expected {expected}")
            if tensor.shape[0] == 0:
                raise ValueError(f"{name} is an empty batch (shape {tuple(tensor.shape)}); pass at least one sample")
            if not tensor.is_floating_point():
                raise ValueError(
                    f"{name} has dtype {tensor.dtype}; expected float values as the image processor makes them "
                    "(MMMERImageProcessor), not raw pixels"
                )
            if not torch.isfinite(tensor).all():
                raise ValueError(f"{name} contains NaN or inf values")
            checked[modality] = tensor.to(self.dtype)
            batch_sizes[name] = tensor.shape[0]
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(f"batch sizes differ between modalities: {batch_sizes}")
        return checked


def _add_metadata(path: Path, extra: dict) -> None:
    """Rewrite a safetensors file with `extra` added to its metadata (atomically: written beside, then renamed)."""
    with safe_open(path, framework="pt") as weights:
        metadata = {**(weights.metadata() or {}), **extra}
        tensors = {key: weights.get_tensor(key) for key in weights.keys()}
    # A name of its own, created exclusively: a file that happens to have it is never written over or deleted.
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    staging.open("x").close()
    try:
        save_file(tensors, staging, metadata=metadata)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def _saved_weights_file(source, location: dict):
    """The local (or already downloaded) safetensors file of `source`, or None (no source, not a single file)."""
    if source is None:
        return None
    return cached_file(source, SAFE_WEIGHTS_NAME, local_files_only=True, _raise_exceptions_for_missing_entries=False,
                       _raise_exceptions_for_connection_errors=False, **location)


def _check_architecture(weights_file: str, config) -> None:
    """Refuse a config whose architecture fields differ from those recorded when the weights were saved.

    Checkpoints saved before the record existed carry none and are not checked.
    """
    with safe_open(weights_file, framework="pt") as weights:
        recorded = (weights.metadata() or {}).get(ARCHITECTURE_KEY)
    if recorded is None:
        return
    saved, current = json.loads(recorded), json.loads(json.dumps(config.architecture()))
    changed = {key: (saved[key], current.get(key)) for key in saved if saved[key] != current.get(key)}
    if changed:
        details = ", ".join(f"{key}: {old!r} when saved, {new!r} now" for key, (old, new) in changed.items())
        raise ValueError(
            f"the config (config.json next to {weights_file}, or the config or keyword arguments given) does not "
            f"describe its weights ({details}); the weights would compute something else. Restore the saved values."
        )


class MMMERModel(MMMERPreTrainedModel):
    """The two-branch multi-scale encoder without a head: modality embeddings and patch importances."""

    def __init__(self, config: MMMERConfig):
        super().__init__(config)
        self.encoders = nn.ModuleDict({m: MMMERModalityEncoder(config, m) for m in config.modalities})
        self.post_init()

    def forward(
        self,
        flow_values: Optional[torch.Tensor] = None,
        texture_values: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        output_patch_importance: bool = False,
        return_dict: Optional[bool] = None,
        **kwargs,
    ):
        """Encode the configured modalities.

        `flow_values` `(B, flow_channels, flow_image_size, flow_image_size)` and/or `texture_values`
        `(B, texture_channels, texture_image_size, texture_image_size)`, as the image processor makes
        them. `output_patch_importance=True` returns importances also when `fusion="cls"`.
        """
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        inputs = self.check_inputs(flow_values, texture_values)
        embeds, importance, hidden_states, attentions = {}, {}, {}, {}
        for modality, encoder in self.encoders.items():
            embed, imp, hidden, attn = encoder(
                inputs[modality], output_attentions, output_hidden_states, output_patch_importance
            )
            embeds[modality] = embed
            importance.update(imp)
            hidden_states.update(hidden)
            attentions.update(attn)
        output = MMMERModelOutput(
            pooled_output=torch.cat([embeds[m] for m in self.config.modalities], dim=-1),
            flow_embeds=embeds.get("flow"),
            texture_embeds=embeds.get("texture"),
            patch_importance=importance,
            hidden_states=hidden_states if output_hidden_states else None,
            attentions=attentions if output_attentions else None,
        )
        return output if return_dict else output.to_tuple()


class MMMERForMicroExpressionClassification(MMMERPreTrainedModel):
    """[`MMMERModel`] with contrastive projection heads and a linear classifier over both embeddings."""

    def __init__(self, config: MMMERConfig):
        super().__init__(config)
        self.mmmer = MMMERModel(config)
        width = config.hidden_size
        self.projections = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, config.projection_dim))
                for m in config.modalities
            }
        )
        self.logit_scale = nn.Parameter(
            torch.tensor(math.log(1.0 / config.contrastive_temperature)), requires_grad=config.learnable_temperature
        )
        features = width * len(config.modalities)
        self.classifier = nn.Sequential(
            nn.LayerNorm(features, eps=config.layer_norm_eps),
            MMMERDropout(config.classifier_dropout),
            nn.Linear(features, config.num_labels),
        )
        self.set_class_weights(config.class_weights)
        self.post_init()

    def set_class_weights(self, weights: Optional[list]) -> None:
        """Weight the cross-entropy per class (`None`: unweighted), without touching the config.

        A trainer derives the weights from each fold's own training labels; setting them on the model
        keeps one shared config for every fold, and the weights stay out of the saved model (they shape
        training only, never a prediction). `config.class_weights` sets them once for every model.
        """
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float)
            if weights.shape != (self.config.num_labels,) or not torch.isfinite(weights).all() or (weights < 0).any():
                raise ValueError(
                    f"class weights must be {self.config.num_labels} finite numbers >= 0 (one per class of "
                    f"id2label), got {weights.tolist()}"
                )
        self.register_buffer("class_weights", weights, persistent=False)

    def check_labels(self, labels, batch_size: int) -> torch.Tensor:
        """`labels` as a tensor after checking its shape and values; a `ValueError` names what is wrong."""
        if not isinstance(labels, torch.Tensor):
            labels = torch.as_tensor(np.asarray(labels), device=self.device)
        num_labels = self.config.num_labels
        if labels.is_floating_point():
            if tuple(labels.shape) != (batch_size, num_labels):
                raise ValueError(
                    f"labels has shape {tuple(labels.shape)}; soft labels need (batch, num_labels) = "
                    f"({batch_size}, {num_labels})"
                )
            sums = labels.sum(-1)
            distributions = torch.isfinite(labels).all() and (labels >= 0).all()
            if not distributions or not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
                raise ValueError(
                    "labels: soft labels must be class probabilities, each row non-negative and summing to 1"
                )
            return labels.to(self.dtype)
        if labels.dtype == torch.bool or tuple(labels.shape) != (batch_size,):
            raise ValueError(
                f"labels has shape {tuple(labels.shape)} and dtype {labels.dtype}; expected ({batch_size},) class "
                f"indices or ({batch_size}, {num_labels}) class probabilities"
            )
        outside = labels[(labels != IGNORE_INDEX) & ((labels < 0) | (labels >= num_labels))]
        if len(outside):
            raise ValueError(
                f"labels hold {sorted(set(outside.tolist()))}; class indices run 0..{num_labels - 1} "
                f"({IGNORE_INDEX} leaves a sample out of the loss)"
            )
        return labels.long()

    def contrastive_loss(self, output: MMMERModelOutput, labels: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """The cross-modal term, or None when it is undefined (one modality, or a batch of one)."""
        if len(self.config.modalities) < 2 or output.pooled_output.shape[0] < 2:
            return None
        flow = F.normalize(self.projections["flow"](output.flow_embeds), dim=-1)
        texture = F.normalize(self.projections["texture"](output.texture_embeds), dim=-1)
        supervised_labels = None
        if self.config.supervised_contrastive and labels is not None:
            supervised_labels = labels.argmax(-1) if labels.is_floating_point() else labels
        return cross_modal_contrastive_loss(flow, texture, self.logit_scale.clamp(max=MAX_LOGIT_SCALE), supervised_labels)

    def forward(
        self,
        flow_values: Optional[torch.Tensor] = None,
        texture_values: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        output_patch_importance: bool = False,
        return_dict: Optional[bool] = None,
        **kwargs,
    ):
        """Classify; with `labels` also return the loss.

        `labels`: `(B,)` class indices (`-100` leaves a sample out of the loss), or `(B, num_labels)` class
        probabilities (soft targets, e.g. from mixup: non-negative rows summing to 1; the supervised contrastive
        variant then takes each row's most probable class). When every label is `-100` the classification
        loss is 0 (nothing to learn from), not the NaN of an empty mean.

        The contrastive term is computed in training mode (it is a training objective; in eval it is
        reported only when `labels` are given), so inference does not pay for the projection heads.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        output = self.mmmer(
            flow_values=flow_values,
            texture_values=texture_values,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            output_patch_importance=output_patch_importance,
            return_dict=True,
        )
        logits = self.classifier(output.pooled_output)
        if labels is not None:
            labels = self.check_labels(labels, logits.shape[0])
        loss = classification_loss = contrastive = None
        if labels is not None or self.training:
            contrastive = self.contrastive_loss(output, labels)
        if labels is not None:
            if labels.is_floating_point() or (labels != IGNORE_INDEX).any():
                classification_loss = F.cross_entropy(
                    logits, labels, weight=self.class_weights, label_smoothing=self.config.label_smoothing
                )
            else:
                classification_loss = logits.sum() * 0.0  # keeps the graph, so a training step still runs
            loss = classification_loss
            if contrastive is not None and self.config.contrastive_weight > 0:
                loss = loss + self.config.contrastive_weight * contrastive
        result = MMMERClassifierOutput(
            loss=loss,
            logits=logits,
            classification_loss=classification_loss,
            contrastive_loss=contrastive,
            flow_embeds=output.flow_embeds,
            texture_embeds=output.texture_embeds,
            patch_importance=output.patch_importance,
            hidden_states=output.hidden_states,
            attentions=output.attentions,
        )
        return result if return_dict else result.to_tuple()


__all__ = [
    "MMMERPreTrainedModel",
    "MMMERModel",
    "MMMERForMicroExpressionClassification",
    "MMMERModelOutput",
    "MMMERClassifierOutput",
    "attention_rollout",
    "fuse_patch_importance",
    "cross_modal_contrastive_loss",
]
