"""The Models service: lists and describes the catalog's language, embedding and image models.

Video models exist in the catalog but, as at xAI, the Models service has no RPC for them.
"""

from __future__ import annotations

import hashlib

import grpc
import grpc.aio
from google.protobuf import empty_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from xai_mcp._pb.v1 import models_pb2 as pb
from xai_mcp._pb.v1 import models_pb2_grpc as pb_grpc
from xai_mcp.emulator import catalog
from xai_mcp.emulator.catalog import Kind, Model
from xai_mcp.emulator.env import Env, Rejected

# Image models carry no context length in the catalog; a prompt limit is still reported.
_IMAGE_PROMPT_LIMIT = 1024


def fingerprint(model: Model) -> str:
    """A stable system fingerprint per model and version."""
    digest = hashlib.sha256(f"{model.name}@{model.version}".encode()).hexdigest()
    return f"fp_{digest[:10]}"


def resolve(name: str, kind: Kind) -> Model:
    """The model called `name` (or aliased so), or NOT_FOUND in xAI's words."""
    model = catalog.find(name, kind)
    if model is None:
        raise Rejected(
            grpc.StatusCode.NOT_FOUND,
            f"The model {name} does not exist or your team does not have access to it.",
        )
    return model


def _created(model: Model) -> Timestamp:
    return Timestamp(seconds=model.created)


def _inputs(model: Model) -> list[pb.Modality.ValueType]:
    return [pb.TEXT, pb.IMAGE] if model.image_input else [pb.TEXT]


def language_model(model: Model) -> pb.LanguageModel:
    return pb.LanguageModel(
        name=model.name,
        version=model.version,
        input_modalities=_inputs(model),
        output_modalities=[pb.TEXT],
        prompt_text_token_price=model.prompt_price,
        prompt_image_token_price=model.image_input_price,
        completion_text_token_price=model.completion_price,
        created=_created(model),
        max_prompt_length=model.context_length,
        system_fingerprint=fingerprint(model),
        aliases=list(model.aliases),
        cached_prompt_token_price=model.cached_prompt_price,
        search_price=model.search_price,
    )


def embedding_model(model: Model) -> pb.EmbeddingModel:
    return pb.EmbeddingModel(
        name=model.name,
        version=model.version,
        # The Embedder accepts image inputs too, so both modalities are advertised.
        input_modalities=[pb.TEXT, pb.IMAGE],
        output_modalities=[pb.EMBEDDING],
        prompt_text_token_price=model.prompt_price,
        prompt_image_token_price=model.image_input_price,
        created=_created(model),
        system_fingerprint=fingerprint(model),
        aliases=list(model.aliases),
    )


def image_model(model: Model) -> pb.ImageGenerationModel:
    return pb.ImageGenerationModel(
        name=model.name,
        version=model.version,
        input_modalities=_inputs(model),
        output_modalities=[pb.IMAGE],
        created=_created(model),
        max_prompt_length=model.context_length or _IMAGE_PROMPT_LIMIT,
        system_fingerprint=fingerprint(model),
        aliases=list(model.aliases),
        image_price=model.image_price,
    )


class ModelsService(pb_grpc.ModelsServicer):
    async def ListLanguageModels(
        self,
        request: empty_pb2.Empty,
        context: grpc.aio.ServicerContext[empty_pb2.Empty, pb.ListLanguageModelsResponse],
    ) -> pb.ListLanguageModelsResponse:
        return pb.ListLanguageModelsResponse(models=[language_model(m) for m in catalog.of_kind("language")])

    async def ListEmbeddingModels(
        self,
        request: empty_pb2.Empty,
        context: grpc.aio.ServicerContext[empty_pb2.Empty, pb.ListEmbeddingModelsResponse],
    ) -> pb.ListEmbeddingModelsResponse:
        return pb.ListEmbeddingModelsResponse(models=[embedding_model(m) for m in catalog.of_kind("embedding")])

    async def ListImageGenerationModels(
        self,
        request: empty_pb2.Empty,
        context: grpc.aio.ServicerContext[empty_pb2.Empty, pb.ListImageGenerationModelsResponse],
    ) -> pb.ListImageGenerationModelsResponse:
        return pb.ListImageGenerationModelsResponse(models=[image_model(m) for m in catalog.of_kind("image")])

    async def GetLanguageModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext[pb.GetModelRequest, pb.LanguageModel]
    ) -> pb.LanguageModel:
        return language_model(resolve(request.name, "language"))

    async def GetEmbeddingModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext[pb.GetModelRequest, pb.EmbeddingModel]
    ) -> pb.EmbeddingModel:
        return embedding_model(resolve(request.name, "embedding"))

    async def GetImageGenerationModel(
        self,
        request: pb.GetModelRequest,
        context: grpc.aio.ServicerContext[pb.GetModelRequest, pb.ImageGenerationModel],
    ) -> pb.ImageGenerationModel:
        return image_model(resolve(request.name, "image"))


def add(server: grpc.aio.Server, env: Env) -> None:
    pb_grpc.add_ModelsServicer_to_server(ModelsService(), server)
