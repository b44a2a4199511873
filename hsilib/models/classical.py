"""The paper's classical baselines (Table 3: RF, MLR, SVM).

Section 3.1: the spectra are reduced by PCA to 40 components, then "classic
statistical machine learning models such as Random Forest, Support Vector
Machines" are fitted; Table 3 adds multinomial logistic regression (MLR).
They follow Paoletti et al. (2019), the paper's reference [68], whose code
(``mhaut/hyperspectral_deeplearning_review``, ``algorithms/{rf,svm,mlr}.py``)
fixes per-dataset hyperparameters (RF: 200 trees, 10 or 40 features per split;
SVM: RBF, C 100 or 1000; MLR: lbfgs, multinomial, C 1 or 10). Here each model
instead has a small grid selected on the validation split by
:func:`hsilib.train.fit_estimator`, which also sets ``random_state``.

Inputs are the standardized PCA features of single pixels. Every builder
returns an unfitted estimator whose class scores (for top-5 accuracy) come from
``predict_proba`` (RF, MLR) or, for the SVM, from ``decision_function`` with
one-vs-rest shape ``(N, n_classes)``: the SVM has no Platt-scaled
probabilities (``SVC(probability=True)`` is deprecated since scikit-learn 1.9
and would add an internal cross-validation), and ``break_ties=True`` makes its
``predict`` the argmax of those scores, so top-1 and top-5 agree. The whole grid of each model fits in seconds on ~5,500
samples x 40 features.
"""

from __future__ import annotations

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from .registry import ModelSpec, register


def build_rf(channels: int, n_classes: int, patch_size: int) -> RandomForestClassifier:
    """Random forest of 100 trees (the grid picks features per split)."""
    return RandomForestClassifier(n_estimators=100)


def build_mlr(channels: int, n_classes: int, patch_size: int) -> LogisticRegression:
    """Multinomial logistic regression (lbfgs, L2), run to convergence."""
    return LogisticRegression(solver="lbfgs", max_iter=5000)


def build_svm(channels: int, n_classes: int, patch_size: int) -> SVC:
    """RBF support vector machine, one-vs-rest decision values as scores."""
    return SVC(kernel="rbf", gamma="scale", decision_function_shape="ovr", break_ties=True)


register(ModelSpec("rf", "RF", "sklearn", "spectrum", components=40, patch_size=1,
                   build=build_rf,
                   grid={"n_estimators": [100], "max_features": ["sqrt", 0.25]}))
register(ModelSpec("mlr", "MLR", "sklearn", "spectrum", components=40, patch_size=1,
                   build=build_mlr, grid={"C": [0.1, 1.0, 10.0]}))
register(ModelSpec("svm", "SVM", "sklearn", "spectrum", components=40, patch_size=1,
                   build=build_svm, grid={"C": [1.0, 10.0, 100.0]}))
