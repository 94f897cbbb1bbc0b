"""Micro-expression datasets as Hugging Face `datasets`, and leave-one-subject-out folds over them.

```python
from hf_mmmer.data import load_me_dataset, loso_folds

ds = load_me_dataset("synthetic", num_subjects=8, samples_per_subject=12, seed=0)
ds = load_me_dataset("casme2", data_dir="path/to/CASME2", config="3class")
for subject, train, test in loso_folds(ds):  # subject: "<source>/<id>", e.g. "casme2/sub01"
    ...
```

Builders: `casme2`, `smic`, `samm` (licensed clip datasets, read from the user's copy), `megc2019`
(the three as the MEGC2019 composite), `megc2019_maps` (the composite's public flow maps, from a
clone of HTNet or a folder in STSTNet's layout), `precomputed` (flow + apex images listed in
`samples.csv`) and `synthetic` (procedural clips). Every dataset has `sample_id`, `subject`,
`source_dataset`, `label` (a `ClassLabel`; 3-class sets use negative, positive, surprise) and either
`onset` + `apex` or `flow` + `apex` images (`apex` None in a flow-only set).
"""

from .checks import AnnotationWarning
from .labels import COMPOSITE_MAPPING, THREE_CLASSES
from .loading import BUILDERS, load_me_dataset
from .loso import fold_key, held_out_split, loso_folds, select_subjects, subject_keys
from .synthetic_clips import SyntheticClip, render_clip

__all__ = [
    "load_me_dataset",
    "held_out_split",
    "loso_folds",
    "fold_key",
    "subject_keys",
    "select_subjects",
    "render_clip",
    "SyntheticClip",
    "AnnotationWarning",
    "BUILDERS",
    "THREE_CLASSES",
    "COMPOSITE_MAPPING",
]
