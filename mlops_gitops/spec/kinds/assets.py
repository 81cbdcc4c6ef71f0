"""Versioned assets: model, environment, data."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import WithJsonSchema, model_validator

from mlops_gitops.spec.kinds.common import Asset, BuildContext, ImageRef, InferenceConfig

PATH_HELP = ("Local file or folder (relative to this file), a cloud URI, or the output of a pipeline job of the tree: "
             "azureml://jobs/<job>/outputs/<output>[/paths/<sub/path>] (a new version from each run that changes its "
             "files). Left out only by a conversion (x-gitops.convert), whose files the conversion makes.")


class Model(Asset):
    # published as a string (a user never writes null): left out only by a conversion (x-gitops.convert)
    path: Annotated[str | None, WithJsonSchema({"type": "string", "description": PATH_HELP})] = None
    type: Literal["custom_model", "mlflow_model", "triton_model"] = "custom_model"
    flavors: dict[str, Any] | None = None
    stage: str | None = None
    converts: ClassVar[bool] = True

    @model_validator(mode="after")
    def _path_or_conversion(self) -> Model:
        converted = self.x_gitops is not None and self.x_gitops.convert is not None
        if self.path is None and not converted:
            raise ValueError("a model needs a 'path' (or x-gitops.convert, to be the conversion of another model)")
        if self.path is not None and converted:
            raise ValueError("a converted model (x-gitops.convert) gets its files from the conversion: remove 'path'")
        if converted and self.type != "custom_model":
            raise ValueError("a conversion to ONNX is a custom_model (type: custom_model, or no type)")
        return self


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
