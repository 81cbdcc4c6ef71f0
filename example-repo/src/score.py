"""Azure-ML-style scoring script for the scikit-learn model (green deployment)."""

import json
import os

import joblib
import numpy as np

model = None


def init():
    global model
    model_dir = os.environ["AZUREML_MODEL_DIR"]
    model = joblib.load(os.path.join(model_dir, "model.joblib"))


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"], dtype=np.float32)
    return model.predict(data).tolist()
