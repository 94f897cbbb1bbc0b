"""Placeholder while the model is written (issue 2)."""
from transformers import PreTrainedModel
from .configuration_mmmer import MMMERConfig
class MMMERPreTrainedModel(PreTrainedModel):
    config_class = MMMERConfig
MMMERModel = MMMERForMicroExpressionClassification = MMMERModelOutput = MMMERClassifierOutput = MMMERPreTrainedModel
