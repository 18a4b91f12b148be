"""A training notebook's script, then what takes its model to production with churnctl.

Usage: python train_sklearn.py DATA FOLDER   (DATA: a Churn_Modelling-shaped CSV)
"""

import sys

import numpy as np
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler

import churnctl

data, folder = sys.argv[1], sys.argv[2]

# 1. The training script, as notebooks write it: numpy, no column names.
dataset = pd.read_csv(data)
X = dataset.iloc[:, 3:-1].values  # CreditScore, Geography, Gender, Age, ...
y = dataset.iloc[:, -1].values  # Exited
le = LabelEncoder()
X[:, 2] = le.fit_transform(X[:, 2])
ct = ColumnTransformer([("encoder", OneHotEncoder(), [1])], remainder="passthrough")
X = np.array(ct.fit_transform(X))
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
sc = StandardScaler()
X_train = sc.fit_transform(X_train)
model = LogisticRegression(max_iter=1000).fit(X_train, y_train)

# 2. The model, exported with skl2onnx: float32 input [N, 12], probabilities [N, 2].
onnx_model = convert_sklearn(
    model,
    initial_types=[("input", FloatTensorType([None, X_train.shape[1]]))],
    options={id(model): {"zipmap": False}},
)

# 3. The fitted preprocessing, imported: the same vocabularies, order, mean_ and scale_.
state = churnctl.from_sklearn([("Gender", le), ct, sc], columns=list(dataset.columns[3:-1]))
print(state.feature_names)

# 4. The state beside the model, the model bound to it: FOLDER/state.json, FOLDER/model.onnx.
pair = churnctl.save_for_serving(state, onnx_model, folder)

# churnctl scores every row as the notebook's model does.
scored = churnctl.Scorer(pair.state, pair.model, keep=[]).score_aligned(dataset)
expected = model.predict_proba(sc.transform(X))[:, 1]
assert np.abs(scored.column("raw").to_numpy() - expected).max() < 1e-5
print(f"{len(dataset):,} rows: churnctl's probabilities equal predict_proba within 1e-5")
