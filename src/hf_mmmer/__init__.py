"""hf-mmmer: multi-modal multi-scale transformer for micro-expression recognition.

The four Hugging Face modules (configuration, modeling, image processing, pipeline) are registered
for the Auto classes here, so that ``save_pretrained`` writes ``auto_map`` and copies their code next
to the weights: a saved directory then loads with ``trust_remote_code=True`` in a process that never
imported ``hf_mmmer``.
"""

from transformers import AutoModelForImageClassification
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_mmmer import MMMERConfig
from .image_processing_mmmer import MMMERImageProcessor
from .modeling_mmmer import (
    MMMERClassifierOutput,
    MMMERForMicroExpressionClassification,
    MMMERModel,
    MMMERModelOutput,
    MMMERPreTrainedModel,
)
from .pipeline_mmmer import TASK, MicroExpressionClassificationPipeline

MMMERConfig.register_for_auto_class()
MMMERModel.register_for_auto_class("AutoModel")
MMMERForMicroExpressionClassification.register_for_auto_class("AutoModelForImageClassification")
MMMERImageProcessor.register_for_auto_class("AutoImageProcessor")
# Saving a pipeline object of this class writes `custom_pipelines` into config.json.
PIPELINE_REGISTRY.register_pipeline(
    TASK, pipeline_class=MicroExpressionClassificationPipeline, pt_model=AutoModelForImageClassification, type="image"
)

__all__ = [
    "MMMERConfig",
    "MMMERModel",
    "MMMERPreTrainedModel",
    "MMMERForMicroExpressionClassification",
    "MMMERModelOutput",
    "MMMERClassifierOutput",
    "MMMERImageProcessor",
    "MicroExpressionClassificationPipeline",
]
__version__ = "0.1.0"
