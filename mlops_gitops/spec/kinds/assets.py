"""Versioned assets: model, environment, data."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mlops_gitops.spec.kinds.common import Asset, BuildContext, ImageRef, InferenceConfig


class Model(Asset):
    path: str = Field(description="Local file or folder (relative to this file), a cloud URI, or the output of a "
                                  "pipeline job of the tree: azureml://jobs/<job>/outputs/<output>[/paths/<sub/path>] "
                                  "(a new version from each run that changes its files).")
    type: Literal["custom_model", "mlflow_model", "triton_model"] = "custom_model"
    flavors: dict[str, Any] | None = None
    stage: str | None = None


class Environment(Asset):
    image: ImageRef | None = None
    build: BuildContext | None = None
    conda_file: str | dict[str, Any] | None = None
    os_type: Literal["linux", "windows"] = "linux"
    inference_config: InferenceConfig | None = None

    @model_validator(mode="after")
    def _image_or_build(self) -> Environment:
        if (self.image is None) == (self.build is None):
            raise ValueError("an environment needs exactly one of 'image' or 'build'")
        if self.conda_file is not None and self.image is None:
            raise ValueError("'conda_file' needs 'image' (with 'build', put the conda file in the context)")
        return self


class Data(Asset):
    type: Literal["uri_file", "uri_folder", "mltable"] = "uri_folder"
    path: str
