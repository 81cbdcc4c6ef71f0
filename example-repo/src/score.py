"""Azure-ML-style scoring script for the scikit-learn model (green deployment)."""

import json
import os

import joblib
import numpy as np

model = None


def init():
    global model
    # as on Azure: a model registered from a folder (path: ./cancer-sklearn) keeps the folder's name
    model_dir = os.environ["AZUREML_MODEL_DIR"]
    model = joblib.load(os.path.join(model_dir, "cancer-sklearn", "model.joblib"))


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"], dtype=np.float32)
    return model.predict(data).tolist()
