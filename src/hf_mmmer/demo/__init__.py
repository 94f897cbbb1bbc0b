"""The web demo (`hf-mmmer demo`): a Gradio app around a saved model, and its export as a Hugging Face Space.

Gradio is an optional extra (`pip install 'hf-mmmer[demo]'`), so nothing here imports it at import time:
`app` imports it once `require_gradio` has said it is there.
"""

import importlib.util

GRADIO_MISSING = "the web demo needs Gradio, an optional extra: pip install 'hf-mmmer[demo]'"


def require_gradio():
    """Fail with one line saying how to install Gradio, instead of a bare `No module named 'gradio'` later."""
    if importlib.util.find_spec("gradio") is None:
        raise ModuleNotFoundError(GRADIO_MISSING, name="gradio")
