"""Placeholder: replaced by the image-processor work (issue 3)."""
from transformers.image_processing_utils import BaseImageProcessor


class MMMERImageProcessor(BaseImageProcessor):
    model_input_names = ["flow_values", "texture_values"]
