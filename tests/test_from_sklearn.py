"""from_sklearn (issue 19, item 1): a training script's fitted preprocessing, imported exactly.

Each supported shape has its own training script here: it fits scikit-learn
preprocessing and a LogisticRegression, exports the model with skl2onnx, imports the
preprocessing with ``from_sklearn``, and churnctl's probabilities must equal the
model's ``predict_proba`` within 1e-5 on every row (of a generated data set
everywhere, and of the public data set when it is present). What a state cannot
express is refused in one line naming the object and the step.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import churnctl
from churnctl.errors import ChurnctlError
from churnctl.features.frame import Frame
from churnctl.features.sklearn import ModelNotImportedWarning, UnsupportedStepError
from churnctl.features.state import load_state, state_from_text
from churnctl.samples.bundled import STATE, bundled
from churnctl.samples.generate import generate_table

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is the train extra")
skl2onnx = pytest.importorskip("skl2onnx", reason="skl2onnx is the train extra")

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import (  # noqa: E402
    FunctionTransformer,
    LabelEncoder,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)

PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "Churn_Modelling.csv"
NUMERIC = ["CreditScore", "Age", "Tenure", "Balance", "NumOfProducts", "EstimatedSalary"]
FLAGS = ["HasCrCard", "IsActiveMember"]
INPUTS = ["CreditScore", "Geography", "Gender", "Age", "Tenure", "Balance", "NumOfProducts"]
INPUTS += ["HasCrCard", "IsActiveMember", "EstimatedSalary"]  # dataset.columns[3:-1]
TOLERANCE = 1e-5


def generated() -> pd.DataFrame:
    """A small data set with the public one's columns, in its order (Exited last)."""
    dataset = generate_table(3000, seed=7).to_pandas()
    assert list(dataset.columns[3:-1]) == INPUTS and dataset.columns[-1] == "Exited"
    return dataset


def public() -> pd.DataFrame:
    if not PUBLIC.is_file():
        pytest.skip(f"the public data set is not at {PUBLIC} (it is never copied here)")
    return pd.read_csv(PUBLIC)


def exported(model: Any, width: int) -> bytes:
    """The model as skl2onnx exports it: float input [N, width], probabilities [N, 2]."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onnx_model = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, width]))],
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )
    return onnx_model.SerializeToString()


def logistic(matrix: np.ndarray, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression(max_iter=2000).fit(matrix.astype(np.float64), y)


# --- the training scripts: each returns (state, ONNX model, predict_proba of every row) ---

Trained = tuple[churnctl.FeatureState, bytes, np.ndarray]


def seed_script(dataset: pd.DataFrame) -> Trained:
    """The issue's training script, as the reference notebook writes it."""
    X = dataset.iloc[:, 3:-1].values  # numpy, no names: CreditScore, Geography, Gender, ...
    y = dataset.iloc[:, -1].values
    le = LabelEncoder()
    X[:, 2] = le.fit_transform(X[:, 2])
    ct = ColumnTransformer([("encoder", OneHotEncoder(), [1])], remainder="passthrough")
    X = np.array(ct.fit_transform(X))
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0)
    sc = StandardScaler()
    X_train = sc.fit_transform(X_train)
    model = logistic(X_train, y_train)
    state = churnctl.from_sklearn([("Gender", le), ct, sc], columns=list(dataset.columns[3:-1]))
    return state, exported(model, X.shape[1]), model.predict_proba(sc.transform(X))[:, 1]


def dataframe_pipeline(dataset: pd.DataFrame) -> Trained:
    """A Pipeline over a DataFrame, ending with its model; remainder="drop"."""
    prep = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["Geography", "Gender"]),
            ("num", StandardScaler(), NUMERIC),
        ],
        remainder="drop",
    )
    pipe = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=2000))])
    pipe.fit(dataset[INPUTS], dataset["Exited"])
    with pytest.warns(ModelNotImportedWarning, match="LogisticRegression"):
        state = churnctl.from_sklearn(pipe)
    model = pipe.named_steps["model"]
    return state, exported(model, len(state.feature_names)), pipe.predict_proba(dataset)[:, 1]


def preprocessing_then_model(
    steps: list[Any], dataset: pd.DataFrame, columns: list[str] | None = None
) -> Trained:
    """Fit ``steps`` in turn on the DataFrame (or its array), then a model on the result."""
    data: Any = dataset[INPUTS] if columns is None else dataset[INPUTS].values
    for step in steps:
        data = step.fit_transform(data)
    model = logistic(np.asarray(data), dataset["Exited"].values)
    state = churnctl.from_sklearn(steps, columns=columns)
    return state, exported(model, np.asarray(data).shape[1]), model.predict_proba(data)[:, 1]


def ordinal(dataset: pd.DataFrame) -> Trained:
    ct = ColumnTransformer(
        [("ord", OrdinalEncoder(), ["Geography", "Gender"])], remainder="passthrough"
    )
    return preprocessing_then_model([ct, StandardScaler()], dataset)


def ordinal_keeping_unknowns(dataset: pd.DataFrame) -> Trained:
    """unknown_value = the number of categories: what a state gives an unseen one."""
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=2)
    ct = ColumnTransformer([("ord", encoder, ["Gender"])], remainder="drop")
    scaled = ColumnTransformer([("s", StandardScaler(), NUMERIC)], remainder="drop")
    both = ColumnTransformer([("g", ct, INPUTS), ("n", scaled, INPUTS)])
    return preprocessing_then_model([both], dataset)


def given_categories(dataset: pd.DataFrame) -> Trained:
    """Categories in the script's own order (not sorted), and an explicit drop."""
    encoder = OneHotEncoder(categories=[["Spain", "France", "Germany"]], drop=["France"])
    order = OrdinalEncoder(categories=[["Male", "Female"]])
    ct = ColumnTransformer(
        [("geo", encoder, ["Geography"]), ("gender", order, ["Gender"])],
        remainder=FunctionTransformer(),  # an identity, as "passthrough"
    )
    return preprocessing_then_model([ct, StandardScaler()], dataset)


def drop_first(dataset: pd.DataFrame) -> Trained:
    """Integer indices on a numpy array, drop="first", then a scaler over everything."""
    ct = ColumnTransformer(
        [("encoder", OneHotEncoder(drop="first"), [1, 2])], remainder="passthrough"
    )
    return preprocessing_then_model([ct, StandardScaler()], dataset, columns=INPUTS)


def if_binary(dataset: pd.DataFrame) -> Trained:
    """drop="if_binary": Gender loses its first category, Geography keeps all three."""
    ct = ColumnTransformer(
        [
            ("encoder", OneHotEncoder(drop="if_binary"), ["Geography", "Gender"]),
            ("scaled", StandardScaler(with_mean=False), NUMERIC),
        ],
        remainder="passthrough",
    )
    return preprocessing_then_model([ct], dataset)


SHAPES: dict[str, Callable[[pd.DataFrame], Trained]] = {
    "seed-script": seed_script,
    "dataframe-pipeline-remainder-drop": dataframe_pipeline,
    "ordinal": ordinal,
    "ordinal-unknown-value": ordinal_keeping_unknowns,
    "given-category-order": given_categories,
    "drop-first-numpy": drop_first,
    "if-binary-with-mean-false": if_binary,
}


def churnctl_probabilities(
    state: churnctl.FeatureState, model: bytes, dataset: pd.DataFrame, folder: Path
) -> np.ndarray:
    """Every row's probability, scored from the state and model saved side by side."""
    pair = churnctl.save_for_serving(state, model, folder)
    scorer = churnctl.Scorer(pair.state, pair.model, keep=())
    assert scorer.check.status.value == "bound"
    table = scorer.score_aligned(dataset)
    assert table.column("raw").null_count == 0, table.column("reject_reason").unique()
    return table.column("raw").to_numpy()


@pytest.mark.parametrize("data", [generated, public], ids=["generated", "public"])
@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
def test_churnctl_scores_as_the_training_script_predicts(
    shape: str, data: Callable[[], pd.DataFrame], tmp_path: Path
) -> None:
    dataset = data()
    state, model, expected = SHAPES[shape](dataset)
    got = churnctl_probabilities(state, model, dataset, tmp_path)
    assert got.shape == expected.shape == (len(dataset),)
    assert np.abs(got - expected).max() < TOLERANCE


def test_an_unknown_category_is_all_zeros_as_in_scikit_learn(tmp_path: Path) -> None:
    dataset = generated()
    encoder = OneHotEncoder(handle_unknown="ignore", drop="first")
    ct = ColumnTransformer([("geo", encoder, ["Geography"])], remainder="drop")
    scaled = ColumnTransformer([("num", StandardScaler(), NUMERIC)], remainder="drop")
    both = ColumnTransformer([("g", ct, INPUTS), ("n", scaled, INPUTS)])
    model = logistic(both.fit_transform(dataset[INPUTS]), dataset["Exited"].values)
    state = churnctl.from_sklearn([both])
    unseen = dataset.assign(Geography=np.where(dataset.index % 3 == 0, "Atlantis", "Spain"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of the unknown category
        matrix = both.transform(unseen[INPUTS])
    assert (matrix[::3, :2] == 0).all()  # all zeros, as the rows of France (dropped) are
    got = churnctl_probabilities(state, exported(model, matrix.shape[1]), unseen, tmp_path)
    assert np.abs(got - model.predict_proba(matrix)[:, 1]).max() < TOLERANCE


def test_the_state_holds_the_scalers_own_numbers() -> None:
    """scale_ is 1 where the variance is 0: taken as it is, never derived from the data."""
    dataset = generated().assign(Tenure=5)  # a constant column
    sc = StandardScaler().fit(dataset[NUMERIC])
    state = churnctl.from_sklearn([sc])
    fitted = state.to_dict()["stages"][-1]["fitted"]
    assert fitted == {"mean": sc.mean_.tolist(), "std": sc.scale_.tolist()}
    assert fitted["std"][NUMERIC.index("Tenure")] == 1.0
    shifted = dataset.assign(Tenure=7)  # scikit-learn gives (7 - 5) / 1, not 0
    features = churnctl.extract_features(state, shifted)
    np.testing.assert_allclose(features.matrix, sc.transform(shifted[NUMERIC]), rtol=1e-6)


def test_a_pipeline_ending_with_a_model_names_it_in_the_provenance() -> None:
    state, _, _ = dataframe_pipeline(generated())
    provenance = state.provenance
    assert provenance["model_not_imported"].startswith("LogisticRegression: export it")
    assert provenance["imported_from"] == f"scikit-learn {sklearn.__version__}"
    assert provenance["steps"] == "Pipeline"
    loaded = state_from_text(state.dumps())  # the schema takes an imported provenance
    assert loaded.fingerprint == state.fingerprint


def test_categories_in_the_scripts_order_are_given_labels_never_refitted() -> None:
    state, _, _ = given_categories(generated())
    indexers = [s for s in state.to_dict()["stages"] if s["type"] == "StringIndexer"]
    assert [(s["params"]["string_order_type"], s["fitted"]["labels"]) for s in indexers] == [
        ("given", [["Spain", "France", "Germany"]]),
        ("given", [["Male", "Female"]]),
    ]
    assert state.feature_names[:2] == ["Geography=Spain", "Geography=Germany"]
    with pytest.raises(ChurnctlError, match="'given' keeps the labels of an imported encoder"):
        state.pipeline.stages[0].fit(Frame.from_columns({"Geography": pa.array(["Spain"])}))


def test_existing_states_keep_their_json_with_the_new_parameter() -> None:
    """drop_index, unused, is left out: the bundled state writes back byte for byte."""
    text = bundled(STATE).read_text(encoding="utf-8")
    assert load_state(bundled(STATE)).dumps() == text
    assert "drop_index" not in text


def test_importing_churnctl_never_imports_scikit_learn() -> None:
    code = (
        "import sys, churnctl; churnctl.from_sklearn; churnctl.save_for_serving; "
        "assert 'sklearn' not in sys.modules, 'sklearn imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- refusals: one line naming the object and the step ---------------------------------


def fitted_geography_scaler() -> tuple[list[Any], list[str]]:
    data = generated()[INPUTS].values
    ct = ColumnTransformer([("encoder", OneHotEncoder(), [1])], remainder="passthrough")
    encoded = ct.fit_transform(data)
    part = ColumnTransformer([("s", StandardScaler(), [0])], remainder="passthrough")
    part.fit(encoded)
    return [ct, part], INPUTS


def on_frame(*objects: Any) -> Callable[[], tuple[list[Any], list[str] | None]]:
    """``objects`` fitted one after the other on the generated DataFrame's inputs."""

    def build() -> tuple[list[Any], list[str] | None]:
        data: Any = generated()[INPUTS]
        for obj in objects:
            data = obj.fit_transform(data)
        return list(objects), None

    return build


def one_hot(**settings: Any) -> ColumnTransformer:
    return ColumnTransformer([("enc", OneHotEncoder(**settings), ["Geography"])])


def fitted_label_encoded_twice() -> tuple[list[Any], list[str]]:
    data = generated()[INPUTS].values
    le = LabelEncoder()
    data[:, 2] = le.fit_transform(data[:, 2])
    ct = ColumnTransformer([("encoder", OneHotEncoder(), [2])], remainder="passthrough")
    ct.fit(data)
    return [("Gender", le), ct], INPUTS


REFUSALS: list[tuple[str, Callable[[], tuple[list[Any], list[str] | None]], list[str]]] = [
    ("min-frequency", on_frame(one_hot(min_frequency=100)), ["steps[0]", "min_frequency"]),
    ("max-categories", on_frame(one_hot(max_categories=2)), ["OneHotEncoder", "max_categories"]),
    (
        "empty-category",
        on_frame(one_hot(categories=[["", "France", "Germany", "Spain"]])),
        ["'enc'", "OneHotEncoder", "empty or repeated category"],
    ),
    (
        "numeric-categories",
        on_frame(ColumnTransformer([("enc", OneHotEncoder(), ["NumOfProducts"])])),
        ["OneHotEncoder", "non-text categories"],
    ),
    (
        "unknown-value-minus-one",
        on_frame(
            ColumnTransformer(
                [
                    (
                        "ord",
                        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                        ["Gender"],
                    )
                ]
            )
        ),
        ["OrdinalEncoder", "unknown_value=-1"],
    ),
    (
        "imputer",
        on_frame(ColumnTransformer([("imp", SimpleImputer(), NUMERIC)])),
        ["steps[0] (ColumnTransformer) > 'imp'", "SimpleImputer has no churnctl equivalent"],
    ),
    (
        "function-transformer",
        on_frame(ColumnTransformer([("log", FunctionTransformer(np.log1p), NUMERIC)])),
        ["'log'", "FunctionTransformer"],
    ),
    (
        "pair-not-label-encoder",
        lambda: ([("Age", StandardScaler().fit(generated()[["Age"]].values))], INPUTS),
        ["steps[0] (StandardScaler)", "only a LabelEncoder"],
    ),
    ("unfitted", lambda: ([StandardScaler()], NUMERIC), ["StandardScaler is not fitted"]),
    (
        "wrong-width",
        lambda: ([StandardScaler().fit(generated()[NUMERIC].values)], INPUTS),
        ["StandardScaler was fitted on 6 columns", "10"],
    ),
    ("part-of-a-one-hot-block", fitted_geography_scaler, ["steps[1]", "reads part of"]),
    ("encoded-twice", fitted_label_encoded_twice, ["steps[1]", "already transformed"]),
]


@pytest.mark.parametrize(("case", "build", "words"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_what_a_state_cannot_express_is_refused_in_one_line(
    case: str, build: Callable[[], tuple[list[Any], list[str] | None]], words: list[str]
) -> None:
    steps, columns = build()
    with pytest.raises(UnsupportedStepError) as info:
        churnctl.from_sklearn(steps, columns=columns)
    message = str(info.value)
    assert "\n" not in message and message.startswith("from_sklearn: "), message
    assert all(word in message for word in words), message


@pytest.mark.parametrize(
    ("steps", "columns", "words"),
    [
        ([], None, ["steps must be a list"]),
        (StandardScaler(), None, ["steps must be a list", "got StandardScaler"]),
        ([StandardScaler().fit(np.ones((3, 2)))], None, ["give columns"]),
        ([StandardScaler().fit(np.ones((3, 2)))], "ab", ["columns must be a list"]),
        ([StandardScaler().fit(np.ones((3, 2)))], ["a", "a"], ["names a column twice"]),
    ],
)
def test_wrong_arguments_are_one_line(steps: Any, columns: Any, words: list[str]) -> None:
    with pytest.raises(ChurnctlError) as info:
        churnctl.from_sklearn(steps, columns=columns)
    assert all(word in str(info.value) for word in words), str(info.value)


def test_save_for_serving_refuses_a_model_of_another_width(tmp_path: Path) -> None:
    state, _, _ = seed_script(generated())
    narrow = exported(LogisticRegression().fit(np.eye(4), [0, 1, 0, 1]), 4)
    with pytest.raises(ChurnctlError, match="expects 4 features"):
        churnctl.save_for_serving(state, narrow, tmp_path / "serving")
    assert not (tmp_path / "serving").exists()


def test_the_saved_state_is_the_imported_one(tmp_path: Path) -> None:
    state, model, _ = seed_script(generated())
    pair = churnctl.save_for_serving(state, model, tmp_path)
    assert load_state(pair.state).fingerprint == state.fingerprint
    assert json.loads(pair.state.read_text())["provenance"]["steps"] == (
        "LabelEncoder, ColumnTransformer, StandardScaler"
    )


def test_the_training_page_shows_the_script_it_runs() -> None:
    root = Path(__file__).resolve().parents[1]
    script = (root / "docs" / "examples" / "train_sklearn.py").read_text(encoding="utf-8")
    page = (root / "docs" / "training.md").read_text(encoding="utf-8")
    assert f"```python\n{script}```\n" in page
