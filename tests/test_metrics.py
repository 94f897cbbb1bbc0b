import pandas as pd
import pytest

from hf_mmmer.training.metrics import classification_scores, pooled_confusion_matrix, summarize_predictions

# By hand: class 0: P=1, R=2/3, F1=0.8; class 1: P=R=F1=0.5; class 2: P=0.5, R=1, F1=2/3.
LABELS = [0, 0, 0, 1, 1, 2]
PREDICTIONS = [0, 0, 1, 1, 2, 2]
UF1 = (0.8 + 0.5 + 2 / 3) / 3
UAR = (2 / 3 + 0.5 + 1.0) / 3


def test_uf1_uar_accuracy_match_hand_computation():
    scores = classification_scores(LABELS, PREDICTIONS, 3)
    assert scores["uf1"] == pytest.approx(UF1)
    assert scores["uar"] == pytest.approx(UAR)
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["n"] == 6


def test_summary_pools_over_folds_and_splits_per_dataset():
    table = pd.DataFrame({
        "label": LABELS, "prediction": PREDICTIONS,
        "dataset": ["casme2", "casme2", "smic", "smic", "smic", "casme2"],
        "fold": ["casme2/sub01", "casme2/sub02", "smic/s1", "smic/s1", "smic/s2", "casme2/sub02"],
    })
    summary = summarize_predictions(table, 3)
    assert summary["uf1"] == pytest.approx(UF1)  # pooled, not the mean of per-fold scores
    # casme2 pool: labels [0, 0, 2], predictions [0, 0, 2]: perfect on the classes present.
    assert summary["per_dataset"]["casme2"]["accuracy"] == 1.0
    assert summary["per_dataset"]["casme2"]["uar"] == pytest.approx(2 / 3)  # class 1 absent scores 0
    assert summary["per_dataset"]["smic"]["n"] == 3
    assert set(summary["per_fold"]) == {"casme2/sub01", "casme2/sub02", "smic/s1", "smic/s2"}
    assert pooled_confusion_matrix(table, 3).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_empty_pool_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        classification_scores([], [], 3)
