"""Project metrics for the evaluation task (like MLOps Stacks' validation/validation.py)."""

from sklearn.metrics import recall_score


def setosa_recall(y_true, y_pred, y_proba):
    """Recall of class 0 (setosa): a setosa must never be missed."""
    return float(recall_score(y_true == 0, y_pred == 0))
