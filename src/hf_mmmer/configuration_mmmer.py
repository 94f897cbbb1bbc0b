"""Configuration of the MMMER model: every size of the network is a named field.

The defaults are the package's recipe (see ``benchmarks/RESULTS.md`` for how they were chosen); an
invalid combination fails on construction with a ``ValueError`` that names the field, because a bad
size found only at the first forward pass costs a user a data-loading round trip.
"""

import dataclasses
import inspect
import math

from transformers import PretrainedConfig

MODALITIES = ("flow", "texture")
FUSION_MODES = ("rollout", "last", "mean", "cls")
DEFAULT_LABELS = ("negative", "positive", "surprise")
ARCHITECTURE_FIELDS = (
    "modalities", "flow_image_size", "flow_channels", "flow_patch_sizes", "texture_image_size", "texture_channels",
    "texture_patch_sizes", "hidden_size", "num_hidden_layers", "num_attention_heads", "mlp_ratio", "layer_norm_eps",
    "share_scale_encoders", "fusion", "projection_dim", "num_labels",
)
"""Fields that change what the weights compute, some without changing any tensor's shape (`num_attention_heads`)."""
# Keys transformers itself accepts or writes in a config.json besides the dataclass fields of `PretrainedConfig`.
_TRANSFORMERS_KEYS = {
    "auto_map", "custom_pipelines", "model_type", "num_labels", "output_attentions", "torch_dtype", "name_or_path",
    "_name_or_path", "_commit_hash", "attn_implementation", "_attn_implementation",
}


class MMMERConfig(PretrainedConfig):
    r"""Configuration for [`MMMERModel`] and [`MMMERForMicroExpressionClassification`].

    Args:
        modalities (`list[str]`, defaults to `["flow"]`):
            Which branches run: `"flow"` (onset-to-apex optical flow u, v and strain) and/or
            `"texture"` (the apex face). One modality gives a single-branch model without the
            contrastive term. Flow only is the default because the raw apex texture lowered honest LOSO
            UF1 on MEGC2019 (see benchmarks/RESULTS.md); `["flow", "texture"]` is the paper's full network.
        flow_image_size (`int`, defaults to 28): side of the square flow map.
        flow_channels (`int`, defaults to 3): channels of the flow map (u, v, strain).
        flow_patch_sizes (`list[int]`, defaults to `[7, 14, 28]`): one patch scale (and encoder) per
            entry; each must divide `flow_image_size`. The last default scale is the whole 28x28 map as one
            token, a holistic view beside the local ones, which raised honest LOSO UF1 (see
            benchmarks/RESULTS.md).
        texture_image_size (`int`, defaults to 56): side of the square apex face.
        texture_channels (`int`, defaults to 1): 1 for gray, 3 for RGB.
        texture_patch_sizes (`list[int]`, defaults to `[14, 28]`): patch scales of the texture branch.
        hidden_size (`int`, defaults to 64): token width of every encoder and of the modality embeddings.
        num_hidden_layers (`int`, defaults to 2): transformer layers per (modality, scale) encoder.
        num_attention_heads (`int`, defaults to 4): must divide `hidden_size`.
        mlp_ratio (`float`, defaults to 2.0): MLP width as a multiple of `hidden_size`.
        hidden_dropout_prob (`float`): dropout on embeddings, attention output and MLP.
        attention_probs_dropout_prob (`float`): dropout on attention probabilities.
        drop_path_rate (`float`): stochastic depth, linearly increasing over the layers.
        classifier_dropout (`float`): dropout before the classification head.
        layer_norm_eps (`float`): epsilon of every LayerNorm.
        share_scale_encoders (`bool`): one transformer encoder shared by all scales of a modality (patch
            embeddings stay per scale).
        fusion (`str`, defaults to `"rollout"`): how attention weights become patch importances that
            weight the patch tokens: `"rollout"` (attention rollout over layers), `"last"` (last layer's
            [CLS] attention), `"mean"` (mean over layers of the [CLS] attention) or `"cls"` (no
            weighting: the plain [CLS] token, an ablation).
        projection_dim (`int`): width of the contrastive projection heads.
        contrastive_weight (`float`): weight of the cross-modal contrastive loss in the total loss.
        contrastive_temperature (`float`): initial temperature of the (learnable) InfoNCE logits.
        learnable_temperature (`bool`): whether the temperature is trained.
        supervised_contrastive (`bool`): treat samples with the same label as positives too.
        label_smoothing (`float`): label smoothing of the cross-entropy.
        class_weights (`list[float]`, *optional*): per-class cross-entropy weights (imbalanced data).
        initializer_range (`float`): std of the truncated-normal weight initialisation.
    """

    model_type = "mmmer"

    def __init__(
        self,
        modalities=("flow",),
        flow_image_size=28,
        flow_channels=3,
        flow_patch_sizes=(7, 14, 28),
        texture_image_size=56,
        texture_channels=1,
        texture_patch_sizes=(14, 28),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        mlp_ratio=2.0,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.0,
        drop_path_rate=0.1,
        classifier_dropout=0.1,
        layer_norm_eps=1e-6,
        share_scale_encoders=False,
        fusion="rollout",
        projection_dim=64,
        contrastive_weight=0.1,
        contrastive_temperature=0.07,
        learnable_temperature=True,
        supervised_contrastive=False,
        label_smoothing=0.0,
        class_weights=None,
        initializer_range=0.02,
        **kwargs,
    ):
        self._refuse_unknown(kwargs)
        if "id2label" not in kwargs and "num_labels" not in kwargs:
            kwargs["id2label"] = dict(enumerate(DEFAULT_LABELS))
        super().__init__(**kwargs)
        self.modalities = _as_list("modalities", modalities)
        self.flow_image_size = flow_image_size
        self.flow_channels = flow_channels
        self.flow_patch_sizes = _as_list("flow_patch_sizes", flow_patch_sizes)
        self.texture_image_size = texture_image_size
        self.texture_channels = texture_channels
        self.texture_patch_sizes = _as_list("texture_patch_sizes", texture_patch_sizes)
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.mlp_ratio = mlp_ratio
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.drop_path_rate = drop_path_rate
        self.classifier_dropout = classifier_dropout
        self.layer_norm_eps = layer_norm_eps
        self.share_scale_encoders = share_scale_encoders
        self.fusion = fusion
        self.projection_dim = projection_dim
        self.contrastive_weight = contrastive_weight
        self.contrastive_temperature = contrastive_temperature
        self.learnable_temperature = learnable_temperature
        self.supervised_contrastive = supervised_contrastive
        self.label_smoothing = label_smoothing
        self.class_weights = _as_list("class_weights", class_weights) if class_weights is not None else None
        self.initializer_range = initializer_range
        self.validate_sizes()

    @classmethod
    def own_fields(cls) -> list:
        """This model's own fields, in their order in `__init__` (what `--config_overrides` may set)."""
        return [name for name in inspect.signature(cls.__init__).parameters if name not in ("self", "kwargs")]

    @classmethod
    def known_keys(cls) -> list:
        """Every key a config.json of this model may hold: this class's fields and what transformers writes."""
        own = set(cls.own_fields())
        return sorted(own | {f.name for f in dataclasses.fields(PretrainedConfig)} | _TRANSFORMERS_KEYS)

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        """`PretrainedConfig.from_dict`, refusing a config.json that holds no JSON object (`[1, 2]`, a number)
        with that reason instead of Python's "argument after ** must be a mapping"."""
        if not isinstance(config_dict, dict):
            raise ValueError("config.json must hold a JSON object of config fields, got a "
                             f"{type(config_dict).__name__}")
        return super().from_dict(config_dict, **kwargs)

    @classmethod
    def _refuse_unknown(cls, kwargs: dict):
        """A misspelt field (`hiden_size`) would otherwise be stored and silently ignored by the network."""
        known = cls.known_keys()
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise ValueError(
                f"MMMERConfig has no field(s) {unknown} (a key of config.json or an override); known fields: {known}"
            )

    def image_size(self, modality: str) -> int:
        """Side of the square input of `modality` (`"flow"` or `"texture"`)."""
        return getattr(self, f"{modality}_image_size")

    def channels(self, modality: str) -> int:
        return getattr(self, f"{modality}_channels")

    def patch_sizes(self, modality: str) -> list:
        return getattr(self, f"{modality}_patch_sizes")

    def validate_sizes(self):
        """Raise `ValueError` naming the first field whose value or type cannot build a network."""
        if not self.modalities:
            raise ValueError("modalities must name at least one of ['flow', 'texture'], got an empty list")
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities must be distinct entries of {list(MODALITIES)}, got {self.modalities}")
        positive_ints = ["hidden_size", "num_hidden_layers", "num_attention_heads", "projection_dim"]
        for modality in MODALITIES:
            positive_ints += [f"{modality}_image_size", f"{modality}_channels"]
        for name in positive_ints:
            if not _is_int(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("mlp_ratio", "contrastive_temperature", "layer_norm_eps", "initializer_range"):
            if not _is_number(getattr(self, name)) or not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive finite number, got {getattr(self, name)!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate",
                     "classifier_dropout", "label_smoothing"):
            if not _is_number(getattr(self, name)) or not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be a number in [0, 1), got {getattr(self, name)!r}")
        if not _is_number(self.contrastive_weight) or self.contrastive_weight < 0:
            raise ValueError(f"contrastive_weight must be a finite number >= 0, got {self.contrastive_weight!r}")
        for name in ("share_scale_encoders", "learnable_temperature", "supervised_contrastive"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if int(self.hidden_size * self.mlp_ratio) < 1:
            raise ValueError(
                f"mlp_ratio={self.mlp_ratio} makes the MLP width int(hidden_size * mlp_ratio) = 0; it must be >= 1"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must divide hidden_size ({self.hidden_size})"
            )
        if self.fusion not in FUSION_MODES:
            raise ValueError(f"fusion must be one of {list(FUSION_MODES)}, got {self.fusion!r}")
        for modality in MODALITIES:
            name, size = f"{modality}_patch_sizes", self.image_size(modality)
            sizes = self.patch_sizes(modality)
            if not sizes:
                raise ValueError(f"{name} must list at least one patch size")
            for p in sizes:
                if not _is_int(p) or p <= 0 or size % p:
                    raise ValueError(f"{name} entry {p!r} must be a positive integer dividing {modality}_image_size={size}")
        if self.num_labels < 2:
            raise ValueError(f"id2label must name at least 2 classes, got {self.id2label!r}")
        self.validate_labels()
        if self.class_weights is not None:
            if len(self.class_weights) != self.num_labels:
                raise ValueError(
                    f"class_weights has {len(self.class_weights)} entries but id2label names {self.num_labels} classes"
                )
            if not all(_is_number(w) and w >= 0 for w in self.class_weights):
                raise ValueError(f"class_weights must be finite numbers >= 0, got {self.class_weights}")

    def validate_labels(self):
        """Refuse a label map that would name predictions wrongly: indices other than 0..num_labels-1 (a
        prediction's name would be missing), labels that are not non-empty strings or that repeat (two
        classes reported as one), or a label2id that does not invert id2label."""
        indices = sorted(self.id2label)
        if indices != list(range(self.num_labels)):
            raise ValueError(f"id2label must map the class indices 0..{self.num_labels - 1}, got the keys {indices}")
        labels = list(self.id2label.values())
        unnamed = [label for label in labels if not isinstance(label, str) or not label.strip()]
        if unnamed:
            raise ValueError(f"id2label labels must be non-empty strings, got {unnamed!r}")
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"id2label names two classes alike: {repeated}")
        if self.label2id is not None and self.label2id != {label: index for index, label in self.id2label.items()}:
            raise ValueError(f"label2id {self.label2id!r} is not the inverse of id2label {self.id2label!r}")

    def architecture(self) -> dict:
        """The fields that decide what the saved weights compute, for checking a checkpoint against its config."""
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _as_list(name: str, value) -> list:
    """A list field given as a list or tuple; a bare value (`flow_patch_sizes=7`) is refused by name."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list, got {value!r}")
    return list(value)


__all__ = ["MMMERConfig"]
