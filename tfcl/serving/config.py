"""TF Serving's configuration files: ``--model_config_file``, ``--batching_parameters_file`` and the model layout.

Both files are text-format protos, as ``tensorflow_model_server`` reads them. The model layout is
``<base_path>/<version>/saved_model.pb`` (plus ``variables/``), ``<version>`` a number.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig
VersionPolicy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


def parse_model_config(text: str, source: str = "model config") -> ModelServerConfig:
    """A text-format ``ModelServerConfig`` with a ``model_config_list`` of TensorFlow models."""
    try:
        config = text_format.Parse(text, ModelServerConfig())
    except text_format.ParseError as error:
        raise ValueError(f"{source}: {error}") from None
    if not config.HasField("model_config_list"):
        raise ValueError(f"{source}: only a model_config_list is supported")
    check_model_config(config, source)
    return config


def check_model_config(config: ModelServerConfig, source: str = "model config") -> None:
    """Refuse what the server cannot serve: another platform, a repeated name, a label naming an unserved version."""
    names = set()
    for model in config.model_config_list.config:
        if model.model_platform not in ("", "tensorflow"):
            raise ValueError(f"{source}: model {model.name!r} has platform {model.model_platform!r}, not 'tensorflow'")
        if not model.name or not model.base_path:
            raise ValueError(f"{source}: every model needs a name and a base_path")
        if model.name in names:
            raise ValueError(f"{source}: model {model.name!r} is configured twice")
        names.add(model.name)


def read_model_config(path: str | os.PathLike) -> ModelServerConfig:
    """Parse a TF Serving ``--model_config_file``."""
    return parse_model_config(Path(path).read_text(), str(path))


def single_model_config(name: str, base_path: str | os.PathLike) -> ModelServerConfig:
    """The config ``tensorflow_model_server --model_name=NAME --model_base_path=DIR`` serves."""
    config = ModelServerConfig()
    config.model_config_list.config.add(name=name, base_path=str(base_path), model_platform="tensorflow")
    return config


def _batching_parameters_class():
    """``tensorflow.serving.BatchingParameters`` (session_bundle_config.proto), which the pip package lacks.

    Built from its field list, so that a ``--batching_parameters_file`` written for ``tensorflow_model_server``
    (``max_batch_size { value: 32 }``) parses here unchanged.
    """
    file = descriptor_pb2.FileDescriptorProto(
        name="tfcl/serving/batching_parameters.proto",
        package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"],
        syntax="proto3",
    )
    message = file.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    wrapped = {
        "max_batch_size": ".google.protobuf.Int64Value",
        "batch_timeout_micros": ".google.protobuf.Int64Value",
        "max_enqueued_batches": ".google.protobuf.Int64Value",
        "num_batch_threads": ".google.protobuf.Int64Value",
        "thread_pool_name": ".google.protobuf.StringValue",
        "enable_large_batch_splitting": ".google.protobuf.BoolValue",
        "max_execution_batch_size": ".google.protobuf.Int64Value",
    }
    for number, (name, type_name) in enumerate(wrapped.items(), start=1):
        message.field.add(
            name=name, number=number, type=field.TYPE_MESSAGE, type_name=type_name, label=field.LABEL_OPTIONAL
        )
    message.field.add(name="allowed_batch_sizes", number=8, type=field.TYPE_INT64, label=field.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=9, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file)
    return message_factory.MessageFactory(pool).GetPrototype(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


BatchingParameters = _batching_parameters_class()


@dataclass(frozen=True)
class BatchingOptions:
    """How requests are merged: TF Serving's ``BatchingParameters``, with its defaults for unset fields.

    ``max_batch_size``: rows per batch at most; ``batch_timeout_micros``: how long a batch that is not full waits
    for more requests; ``num_batch_threads``: batches run at once; ``max_enqueued_batches``: batches waiting per
    queue (one queue per model version, signature and input shape) before requests are refused as UNAVAILABLE.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = os.cpu_count() or 1
    max_enqueued_batches: int = 10

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"batching parameter {name} must be at least 1, not {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"batching parameter batch_timeout_micros must be >= 0, not {self.batch_timeout_micros}")

    @classmethod
    def parse(cls, text: str, source: str = "batching parameters") -> BatchingOptions:
        """From the text of a ``--batching_parameters_file``; fields this server does not implement are refused."""
        try:
            proto = text_format.Parse(text, BatchingParameters())
        except text_format.ParseError as error:
            raise ValueError(f"{source}: {error}") from None
        unsupported = [
            field.name
            for field, _ in proto.ListFields()
            if field.name not in ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches")
        ]
        if unsupported:
            raise ValueError(f"{source}: {', '.join(unsupported)} not supported by the embedded server")
        values = {field.name: value.value for field, value in proto.ListFields()}
        try:
            return cls(**values)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    @classmethod
    def read(cls, path: str | os.PathLike) -> BatchingOptions:
        return cls.parse(Path(path).read_text(), str(path))


def complete_versions(base_path: str | os.PathLike) -> dict[int, Path]:
    """``{version: directory}`` of the versions under ``base_path`` that are ready to load.

    A version is a directory with a numeric name holding ``saved_model.pb`` and ``variables/``. Anything else is
    skipped: a temporary directory a pusher writes before renaming it into place, or a version directory that
    ``tf.saved_model.save`` is still filling (it writes ``saved_model.pb`` last).
    """
    base = Path(base_path)
    if not base.is_dir():
        return {}
    return {
        int(path.name): path
        for path in base.iterdir()
        if path.name.isascii()
        and path.name.isdigit()
        and (path / "saved_model.pb").is_file()
        and (path / "variables").is_dir()
    }


def layout_error(name: str, base_path: str | os.PathLike) -> str | None:
    """Why ``base_path`` can never be served as it is laid out (a SavedModel not inside a version folder), or None."""
    base = Path(base_path)
    if (base / "saved_model.pb").is_file() and not complete_versions(base):
        return (
            f"model {name}: {base} holds a SavedModel itself, but a model base path holds numbered version folders: "
            f"move it into {base / '1'} (<base_path>/<version>/saved_model.pb), or serve its parent folder laid out "
            "that way"
        )
    return None


def select_versions(policy: VersionPolicy, versions: Iterable[int]) -> set[int]:
    """The versions among ``versions`` that a ``model_version_policy`` serves (unset: the latest one)."""
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return set(versions)
    if choice == "specific":
        return set(versions) & set(policy.specific.versions)
    return set(sorted(versions)[-(policy.latest.num_versions or 1) :])
